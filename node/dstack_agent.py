"""Client for the dstack guest agent (dstack 0.5.x), plain HTTP over its Unix socket.

Endpoints and JSON (https://github.com/Dstack-TEE/dstack/blob/master/sdk/curl/api.md), all
``POST`` with a JSON body:

- ``/GetQuote {"report_data": hex ≤ 64 bytes}`` → ``{quote: hex, event_log: JSON string,
  report_data: hex, vm_config: JSON string}``
- ``/Info`` → ``{app_id, instance_id, app_cert, tcb_info: JSON string, app_name, device_id,
  mr_aggregated, os_image_hash, key_provider_info, compose_hash, vm_config, …}``
- ``/GetKey {"path", "purpose"}`` → ``{key: hex (32-byte secp256k1 secret), signature_chain}``;
  the key is derived from the app's key in the TEE, so it is stable per app and path.
- ``/EmitEvent {"event": name, "payload": hex}`` → ``{}``: the agent extends RTMR3 with
  ``SHA-384(le32(0x08000001) ‖ ":" ‖ name ‖ ":" ‖ payload)`` (replayed by
  ``teelog.attestation.eventlog``) and appends the event to the runtime
  event log that later ``GetQuote`` answers carry (dstack ``guest-agent`` ``emit_event``).

Errors are ``{"error": "…"}`` with HTTP 400/500. The socket is ``/var/run/dstack.sock`` in a
CVM; an ``http(s)://`` endpoint is accepted too (as the dstack SDK does, for a simulator).
"""

from __future__ import annotations

import json
from typing import Any

import httpx

DEFAULT_SOCKET = "/var/run/dstack.sock"


class DstackError(RuntimeError):
    """The guest agent could not be reached or refused a call."""


class DstackAgent:
    """Async client of one guest agent. The HTTP client is created on first use, in the
    event loop that uses it, and closed by :meth:`aclose`."""

    def __init__(self, endpoint: str = DEFAULT_SOCKET, *, timeout: float = 10.0) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            if self.endpoint.startswith(("http://", "https://")):
                self._client = httpx.AsyncClient(base_url=self.endpoint, timeout=self.timeout)
            else:
                self._client = httpx.AsyncClient(
                    base_url="http://dstack",
                    transport=httpx.AsyncHTTPTransport(uds=self.endpoint),
                    timeout=self.timeout,
                )
        return self._client

    async def call(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` to ``/<method>``; return the decoded JSON object or raise DstackError."""
        try:
            resp = await self._http().post(f"/{method}", json=body)
        except httpx.HTTPError as exc:
            raise DstackError(
                f"dstack guest agent at {self.endpoint} unreachable ({method}): {exc!r}"
            ) from exc
        try:
            data = resp.json()
        except ValueError:
            data = None
        if resp.status_code != 200:
            detail = data.get("error") if isinstance(data, dict) else resp.text[:300]
            raise DstackError(f"dstack {method} failed with HTTP {resp.status_code}: {detail}")
        if not isinstance(data, dict):
            raise DstackError(f"dstack {method} returned a non-object: {resp.text[:300]!r}")
        return data

    async def get_quote(self, report_data: bytes) -> tuple[bytes, list[dict[str, Any]]]:
        """A TDX quote over ``report_data`` (≤ 64 bytes) and the event log, parsed."""
        if not 1 <= len(report_data) <= 64:
            raise ValueError(f"report_data must be 1..64 bytes, got {len(report_data)}")
        data = await self.call("GetQuote", {"report_data": report_data.hex()})
        try:
            quote = bytes.fromhex(data["quote"])
            raw_log = data.get("event_log") or "[]"
            event_log = json.loads(raw_log) if isinstance(raw_log, str) else raw_log
        except (KeyError, ValueError, TypeError) as exc:
            raise DstackError(f"dstack GetQuote returned an unreadable answer: {exc!r}") from exc
        if not isinstance(event_log, list):
            raise DstackError("dstack GetQuote event_log is not a list")
        return quote, event_log

    async def info(self) -> dict[str, Any]:
        """``/Info`` with ``tcb_info`` parsed into an object, as vllm-proxy publishes it
        (``DstackClient().info().model_dump()``); ``tcb_info.app_compose`` stays the exact
        string whose SHA-256 is the compose hash."""
        data = await self.call("Info", {})
        tcb_info = data.get("tcb_info")
        if isinstance(tcb_info, str) and tcb_info:
            try:
                data["tcb_info"] = json.loads(tcb_info)
            except ValueError as exc:
                raise DstackError(f"dstack Info tcb_info is not JSON: {exc}") from exc
        return data

    async def get_key(self, path: str, purpose: str = "signing") -> bytes:
        """The 32-byte secret the agent derives for ``path`` (stable per app and path)."""
        data = await self.call("GetKey", {"path": path, "purpose": purpose})
        try:
            key = bytes.fromhex(data["key"])
        except (KeyError, ValueError, TypeError) as exc:
            raise DstackError(f"dstack GetKey returned an unreadable key: {exc!r}") from exc
        if len(key) != 32:
            raise DstackError(f"dstack GetKey returned a {len(key)}-byte key, expected 32")
        return key

    async def emit_event(self, event: str, payload: bytes) -> None:
        """Extend RTMR3 with a runtime event ``event`` carrying ``payload`` (``EmitEvent``)."""
        if not event:
            raise ValueError("a runtime event needs a name")
        await self.call("EmitEvent", {"event": event, "payload": payload.hex()})

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

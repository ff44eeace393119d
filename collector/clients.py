"""HTTP clients for the nodes the collector polls: each report format's request and shape, and
the receipts feed.

Nodes are untrusted. Every request has a deadline (connect, each read, and the whole exchange),
bodies are streamed and abandoned at the configured size limit, redirects are not followed, and
whatever goes wrong becomes a :class:`NodeError` with a ``kind`` the node's health records:

``timeout`` · ``connect`` · ``tls`` · ``http`` (status ≥ 300) · ``too_large`` · ``garbage``
(not JSON, or not the expected shape) · ``no_feed`` (the node has no receipts feed).

Report formats (docs/collector.md "Report formats", docs/attestation.md "Report formats"):

- ``vllm-proxy``: ``GET /v1/attestation/report?nonce=&signing_algo=`` → one report
  (``signing_address``, ``intel_quote``, ``nvidia_payload``, ``event_log``, ``info``,
  ``all_attestations``).
- ``near-gateway``: ``GET /v1/attestation/report?model=&nonce=&signing_algo=`` →
  ``{gateway_attestation, model_attestations: [...]}`` (NEAR AI cloud-api).
- ``redpill-chutes``: ``GET /v1/attestation/report?model=&nonce=`` →
  ``{attestation_type: "chutes", nonce, all_attestations: [...]}`` (Redpill, chutes backend).
- ``auto``: sends every parameter and recognises the format from the shape of the answer
  (``teelog.attestation.inputs.detect_report_format``, the one detection shared with the
  verifier: a bare dstack ``GetQuote`` answer ``{quote, event_log}`` is ``vllm-proxy``).
"""

from __future__ import annotations

import itertools
import ssl
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import httpx
from teelog.attestation.inputs import UntrustedJSONError, detect_report_format, parse_json

from .config import NodeConfig

USER_AGENT = "teelog-collector/1"
REPORT_PATH = "/v1/attestation/report"
RECEIPTS_PATH = "/v1/receipts"
_RECEIPT_FIELDS = (
    "seq", "chat_id", "model", "text", "request_sha256", "response_sha256", "signed_at",
    "ecdsa", "ed25519",
)

# Longest string accepted in a receipt (ids, hashes, signatures are far shorter): keeps every
# receipt entry well under the 65,535-byte entry limit.
_MAX_FIELD = 512
# seq and next are stored as BIGINT: a node's number beyond 64 bits is garbage, not a crash.
_MAX_SEQ = (1 << 63) - 1


class NodeError(Exception):
    """A poll failed; ``kind`` classifies it for the node's health (see module docstring)."""

    kind = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NodeTimeout(NodeError):
    kind = "timeout"


class NodeUnreachable(NodeError):
    kind = "connect"


class NodeTLSError(NodeError):
    kind = "tls"


class NodeHTTPError(NodeError):
    kind = "http"

    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


class ResponseTooLarge(NodeError):
    kind = "too_large"


class NodeGarbage(NodeError):
    kind = "garbage"


class NoReceiptsFeed(NodeError):
    kind = "no_feed"


@dataclass(frozen=True, slots=True)
class Fetched:
    """A response body as received (exact bytes) and its JSON value."""

    url: str
    raw: bytes
    doc: Any


@dataclass(frozen=True, slots=True)
class Report:
    """One attestation report: exact bytes, parsed JSON, and its recognised format."""

    url: str
    raw: bytes
    doc: Any
    format: str


@dataclass(frozen=True, slots=True)
class ReceiptPage:
    """One page of ``GET /v1/receipts``: items in ``seq`` order, already shape-checked."""

    node_instance: str
    items: list[dict[str, Any]]
    next: int
    has_more: bool


def _is_tls_error(exc: BaseException) -> bool:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, ssl.SSLError):
            return True
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    text = str(exc)
    return "SSL" in text or "CERTIFICATE" in text.upper()


def _short(data: bytes, limit: int = 120) -> str:
    text = data[:limit].decode("utf-8", "replace")
    return repr(text) + ("…" if len(data) > limit else "")


class NodeHTTP:
    """A bounded HTTP client for one node: deadline, size limit, no redirects, typed errors."""

    def __init__(
        self,
        node: NodeConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        cpu_gate: AbstractContextManager[Any] | None = None,
    ) -> None:
        self.node = node
        # Held while parsing JSON (CPU-bound), see Recorder.cpu_gate.
        self.cpu_gate = cpu_gate if cpu_gate is not None else nullcontext()
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        token = node.token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.Client(
            base_url=node.url,
            headers=headers,
            timeout=httpx.Timeout(node.timeout),
            follow_redirects=False,
            transport=transport,
            trust_env=False,
        )

    def close(self) -> None:
        self._client.close()

    def get_json(self, path: str, params: dict[str, Any]) -> Fetched:
        """GET ``path`` and parse the JSON body, within the node's deadline and size limit."""
        limit = self.node.max_response_bytes
        deadline = time.monotonic() + self.node.timeout
        request = self._client.build_request("GET", path, params=params)
        url = str(request.url)
        try:
            response = self._client.send(request, stream=True)
            try:
                if response.status_code >= 300:
                    body = self._read(response, min(limit, 4096), deadline, truncate=True)
                    if response.status_code == 404 and path == RECEIPTS_PATH:
                        raise NoReceiptsFeed(f"GET {path}: 404, the node has no receipts feed")
                    raise NodeHTTPError(
                        f"GET {path}: HTTP {response.status_code}"
                        + (" (redirects are not followed)" if response.is_redirect else "")
                        + (f": {_short(body)}" if body else ""),
                        response.status_code,
                    )
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > limit:
                    raise ResponseTooLarge(
                        f"GET {path}: body of {declared} bytes exceeds the limit of {limit}"
                    )
                raw = self._read(response, limit, deadline)
            finally:
                response.close()
        except httpx.TimeoutException as exc:
            raise NodeTimeout(f"GET {path}: timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            if _is_tls_error(exc):
                raise NodeTLSError(f"GET {path}: TLS error: {exc}") from exc
            raise NodeUnreachable(f"GET {path}: {type(exc).__name__}: {exc}") from exc
        try:
            with self.cpu_gate:
                doc = parse_json(raw)
        except UntrustedJSONError as exc:
            raise NodeGarbage(f"GET {path}: not JSON ({exc}); starts {_short(raw)}") from exc
        return Fetched(url=url, raw=raw, doc=doc)

    def _read(
        self, response: httpx.Response, limit: int, deadline: float, *, truncate: bool = False
    ) -> bytes:
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > limit:
                if truncate:
                    chunks.append(chunk)
                    break
                raise ResponseTooLarge(f"body exceeds the limit of {limit} bytes")
            chunks.append(chunk)
            # A node dripping bytes keeps each read under the timeout; bound the whole exchange.
            if time.monotonic() > deadline:
                raise NodeTimeout(f"body not complete within {self.node.timeout:g}s")
        return b"".join(chunks)[:limit] if truncate else b"".join(chunks)


# -- report formats --------------------------------------------------------------------------


def _report_params(node: NodeConfig, fmt: str, nonce: str) -> dict[str, str]:
    params: dict[str, str] = {"nonce": nonce}
    if fmt != "redpill-chutes":
        params["signing_algo"] = node.signing_algo
    if node.model:
        # A plain vllm-proxy serves one model and ignores it; gateways and load balancers use it.
        params["model"] = node.model
    return params


class ReportClient:
    """Fetches attestation reports of one node in its configured format."""

    def __init__(self, node: NodeConfig, http: NodeHTTP) -> None:
        self.node = node
        self.http = http

    def fetch_report(self, nonce: str) -> Report:
        """GET the report for ``nonce`` (64 hex) and check it has the expected format's shape."""
        params = _report_params(self.node, self.node.format, nonce)
        fetched = self.http.get_json(REPORT_PATH, params)
        found = detect_report_format(fetched.doc)
        expected = self.node.format
        if found is None:
            what = type(fetched.doc).__name__
            keys = sorted(fetched.doc)[:8] if isinstance(fetched.doc, dict) else []
            raise NodeGarbage(
                f"not an attestation report (a JSON {what}"
                + (f" with keys {keys}" if keys else "")
                + ")"
            )
        if expected != "auto" and found != expected:
            raise NodeGarbage(f"expected a {expected} report, got one shaped like {found}")
        return Report(url=fetched.url, raw=fetched.raw, doc=fetched.doc, format=found)


# -- receipts feed ---------------------------------------------------------------------------


def _check_receipt_item(item: Any, i: int) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise NodeGarbage(f"receipts: data[{i}] is not an object")
    for name in _RECEIPT_FIELDS:
        if name not in item:
            raise NodeGarbage(f"receipts: data[{i}] lacks {name!r}")
    seq = item["seq"]
    if not isinstance(seq, int) or isinstance(seq, bool) or not 1 <= seq <= _MAX_SEQ:
        raise NodeGarbage(f"receipts: data[{i}].seq is not a positive 64-bit integer: {seq!r}")
    for name in ("chat_id", "text", "request_sha256", "response_sha256", "signed_at"):
        if not isinstance(item[name], str) or len(item[name]) > _MAX_FIELD:
            raise NodeGarbage(f"receipts: data[{i}].{name} is not a string of ≤ {_MAX_FIELD}")
    model = item["model"]
    if model is not None and (not isinstance(model, str) or len(model) > _MAX_FIELD):
        raise NodeGarbage(f"receipts: data[{i}].model is not a string of ≤ {_MAX_FIELD}")
    for algo in ("ecdsa", "ed25519"):
        sig = item[algo]
        if sig is None:
            continue
        if not (
            isinstance(sig, dict)
            and isinstance(sig.get("signing_address"), str)
            and isinstance(sig.get("signature"), str)
            and len(sig["signing_address"]) <= _MAX_FIELD
            and len(sig["signature"]) <= _MAX_FIELD
        ):
            raise NodeGarbage(f"receipts: data[{i}].{algo} is not {{signing_address, signature}}")
    return item


class ReceiptsClient:
    """Reads a node's ``GET /v1/receipts?after=&limit=`` feed (docs/node.md)."""

    def __init__(self, node: NodeConfig, http: NodeHTTP) -> None:
        self.node = node
        self.http = http

    def fetch(self, after: int, limit: int) -> ReceiptPage:
        """One page of receipts with ``seq > after``, shape- and order-checked."""
        doc = self.http.get_json(RECEIPTS_PATH, {"after": after, "limit": limit}).doc
        if not isinstance(doc, dict) or doc.get("object") != "list":
            raise NodeGarbage('receipts: expected {"object": "list", ...}')
        instance = doc.get("node_instance")
        if not isinstance(instance, str) or not instance or len(instance) > 128:
            raise NodeGarbage(f"receipts: node_instance is not an id: {instance!r}")
        data = doc.get("data")
        if not isinstance(data, list):
            raise NodeGarbage("receipts: data is not a list")
        if len(data) > limit:
            raise NodeGarbage(f"receipts: asked for at most {limit}, got {len(data)}")
        items = [_check_receipt_item(item, i) for i, item in enumerate(data)]
        for prev, item in itertools.pairwise(items):
            if item["seq"] <= prev["seq"]:
                raise NodeGarbage("receipts: seq does not increase")
        nxt = doc.get("next", items[-1]["seq"] if items else after)
        if not isinstance(nxt, int) or isinstance(nxt, bool) or not 0 <= nxt <= _MAX_SEQ:
            raise NodeGarbage(f"receipts: next is not a 64-bit cursor: {str(nxt)[:40]}")
        has_more = doc.get("has_more", False)
        if not isinstance(has_more, bool):
            raise NodeGarbage("receipts: has_more is not a boolean")
        return ReceiptPage(node_instance=instance, items=items, next=nxt, has_more=has_more)

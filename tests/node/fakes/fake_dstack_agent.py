"""A stand-in for the dstack 0.5.x guest agent: HTTP over a Unix socket, answering from
recorded data (test-only).

It behaves like the dstack simulator (``Dstack-TEE/dstack`` tag v0.5.3, ``sdk/simulator``;
``guest-agent/src/rpc_service.rs::simulate_quote``): ``GetQuote`` returns a recorded real quote
with its report_data field overwritten by the caller's 64 bytes (so the quote's signature no
longer verifies), plus the recorded event log; ``Info`` returns a recorded real ``Info`` answer
with ``tcb_info`` as a JSON string, as the agent sends it; ``GetKey`` derives a stable 32-byte
key from the path (the simulator derives from a fixed key too); ``EmitEvent`` records the
event in :attr:`events` (the simulator's is a no-op; the real agent extends RTMR3). Errors
are ``{"error": …}`` with HTTP 400/500, like the agent.
"""

from __future__ import annotations

import hashlib
import json
import socketserver
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[2] / "data" / "reports"


def report_data_offset(quote: bytes) -> int:
    """Offset of TD report_data in a TDX quote: 568 for v4, 574 for v5 (6-byte body
    descriptor), per Intel's TDX DCAP quote format (the TD quote body follows the 48-byte
    header; v5 adds a 6-byte body descriptor before it)."""
    version = int.from_bytes(quote[0:2], "little")
    return {4: 568, 5: 574}[version]


def vllmproxy_sample() -> tuple[bytes, str, dict[str, Any]]:
    """The real dstack GetQuote/Info pair of ``vllmproxy_sample_dstack_*`` (same CVM):
    quote bytes, event_log JSON string, Info answer with tcb_info as a JSON string."""
    getquote = json.loads((DATA / "vllmproxy_sample_dstack_getquote.json").read_text())
    info = json.loads((DATA / "vllmproxy_sample_dstack_info.json").read_text())
    info = dict(info)
    info["tcb_info"] = json.dumps(info["tcb_info"])
    return bytes.fromhex(getquote["quote"]), getquote["event_log"], info


def simulator_v053() -> tuple[bytes, str]:
    """The dstack v0.5.3 simulator's canned quote and event log."""
    sim = DATA / "dstack_simulator_v0.5.3"
    quote = bytes.fromhex((sim / "quote.hex").read_text().strip())
    return quote, (sim / "eventlog.json").read_text()


class FakeDstackAgent:
    """Serve the agent API on ``socket_path`` from a thread; use as a context manager."""

    def __init__(
        self,
        socket_path: Path,
        *,
        quote: bytes | None = None,
        event_log: str | None = None,
        info: dict[str, Any] | None = None,
        key_seed: bytes = b"fake-dstack-app-key",
    ) -> None:
        sample_quote, sample_log, sample_info = vllmproxy_sample()
        self.socket_path = Path(socket_path)
        self.quote = sample_quote if quote is None else quote
        self.event_log = sample_log if event_log is None else event_log
        self.info = sample_info if info is None else info
        self.key_seed = key_seed
        self.fail: str | None = None  # set to make every call answer HTTP 500 with this error
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.events: list[tuple[str, bytes]] = []  # EmitEvent calls: (event name, payload)
        self._server: socketserver.UnixStreamServer | None = None
        self._thread: threading.Thread | None = None

    def derived_key(self, path: str) -> bytes:
        return hashlib.sha256(self.key_seed + b"\0" + path.encode()).digest()

    def handle(self, method: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.calls.append((method, body))
        if self.fail is not None:
            return 500, {"error": self.fail}
        if method == "GetQuote":
            try:
                rd = bytes.fromhex(body.get("report_data", ""))
            except ValueError:
                return 400, {"error": "Invalid report_data: not hex"}
            if len(rd) > 64:
                return 400, {"error": "Report data is too long"}
            rd = rd.ljust(64, b"\0")
            off = report_data_offset(self.quote)
            quote = self.quote[:off] + rd + self.quote[off + 64 :]
            return 200, {
                "quote": quote.hex(),
                "event_log": self.event_log,
                "report_data": rd.hex(),
                "vm_config": "",
            }
        if method == "Info":
            return 200, dict(self.info)
        if method == "GetKey":
            path = body.get("path", "")
            return 200, {"key": self.derived_key(path).hex(), "signature_chain": []}
        if method == "EmitEvent":
            event, payload = body.get("event"), body.get("payload", "")
            if not isinstance(event, str) or not event:
                return 400, {"error": "event name is required"}
            try:
                self.events.append((event, bytes.fromhex(payload)))
            except (TypeError, ValueError):
                return 400, {"error": "Invalid payload: not hex"}
            return 200, {}
        return 404, {"error": f"unknown method {method}"}

    def __enter__(self) -> FakeDstackAgent:
        agent = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def address_string(self) -> str:  # Unix sockets have no peer address
                return "unix"

            def log_message(self, format: str, *args: object) -> None:
                return None

            def _answer(self, body: dict[str, Any]) -> None:
                status, payload = agent.handle(self.path.lstrip("/").split("?")[0], body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b"{}"
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {}
                self._answer(body if isinstance(body, dict) else {})

            def do_GET(self) -> None:
                self._answer({})

        class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

        self._server = Server(str(self.socket_path), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self.socket_path.unlink(missing_ok=True)

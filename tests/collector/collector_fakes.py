"""Shared fixtures for the collector's tests: local fake providers serving recorded real
bundles, a pinned clock, the log, and a webhook receiver."""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from asgi_server import serve

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"
NEAR_BUNDLE = DATA / "gpu" / "nearai-cloud-gpt-oss-120b-2026-04" / "attestation_report.json"
# tests/data/tdx/README.md: the model quote verifies UpToDate with dcapqvl_tdx_v5 collateral
# as of 1773200000 (2026-03-11T03:33:20Z); the gateway's quote with nearmpc_2026 at 1787894484.
NEAR_MODEL_AT = datetime.fromtimestamp(1773200000, UTC)
NEAR_GATEWAY_AT = datetime.fromtimestamp(1787894484, UTC)
COLLATERAL_FILES = (
    DATA / "tdx" / "dcapqvl_tdx_v5.collateral.json",
    DATA / "tdx" / "nearmpc_2026_tdx_v4.collateral.json",
)
VLLM_SAMPLE_QUOTE = DATA / "reports" / "vllmproxy_sample_dstack_getquote.json"
VLLM_SAMPLE_INFO = DATA / "reports" / "vllmproxy_sample_dstack_info.json"


def near_bundle_bytes() -> bytes:
    return NEAR_BUNDLE.read_bytes()


def vllm_proxy_report_from_near() -> bytes:
    """The NEAR bundle's model attestation as a vllm-proxy node serves it: the same object
    plus ``all_attestations`` (nearai/vllm-proxy ``/v1/attestation/report``, node-api.md §a)."""
    model = json.loads(NEAR_BUNDLE.read_bytes())["model_attestations"][0]
    return json.dumps({**model, "all_attestations": [model]}).encode()


def vllm_proxy_report_from_sample() -> bytes:
    """A vllm-proxy report assembled from the recorded dstack GetQuote + Info of another CVM
    (reports/vllmproxy_sample_*): different compose hash, OS image, registers; no GPU."""
    quote = json.loads(VLLM_SAMPLE_QUOTE.read_bytes())
    info = json.loads(VLLM_SAMPLE_INFO.read_bytes())
    report = {
        "model_name": "openai/gpt-oss-120b",  # served under the same model as the NEAR one
        "signing_address": "0x" + "01" * 20,
        "signing_algo": "ecdsa",
        "request_nonce": "01" * 32,
        "intel_quote": quote["quote"],
        "event_log": json.loads(quote["event_log"]),
        "info": info,
    }
    return json.dumps({**report, "all_attestations": [report]}).encode()


def chutes_report_from_near() -> bytes:
    """Redpill's chutes shape (docs/attestation.md "Report formats"): base64 quote, GPU evidence
    list, ``e2e_pubkey``, built from the NEAR model attestation's real quote and evidence."""
    model = json.loads(NEAR_BUNDLE.read_bytes())["model_attestations"][0]
    payload = json.loads(model["nvidia_payload"])
    nonce = model["request_nonce"]
    item = {
        "instance_id": "instance-0",
        "nonce": nonce,
        "e2e_pubkey": base64.b64encode(b"\x02" * 33).decode(),
        "intel_quote": base64.b64encode(bytes.fromhex(model["intel_quote"])).decode(),
        "gpu_evidence": payload["evidence_list"],
    }
    return json.dumps({"attestation_type": "chutes", "nonce": nonce,
                       "all_attestations": [item]}).encode()


# (path, query, headers, body) -> (status, headers, body); status -1 hangs up without answering
Handler = Callable[[str, dict[str, str], dict[str, str], bytes], tuple[int, dict[str, str], bytes]]


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that hang up early (size limits, timeouts) are what the tests do


@dataclass
class FakeNode:
    """A local HTTP server answering like a provider; ``routes`` maps a path to a handler
    ``(path, query) -> (status, headers, body)``. Records every request it gets."""

    routes: dict[str, Handler] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str], dict[str, str]]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def serve(self, path: str, body: bytes | Handler, status: int = 200) -> None:
        if callable(body):
            self.routes[path] = body
        else:
            headers = {"Content-Type": "application/json"}
            self.routes[path] = lambda *_a, b=body: (status, headers, b)

    def start(self) -> FakeNode:
        node = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers_in = dict(self.headers.items())
                node.requests.append((parts.path, query, headers_in))
                handler = node.routes.get(parts.path)
                if handler is None:
                    status, headers = 404, {"Content-Type": "application/json"}
                    out = b'{"error":{"message":"Not Found"}}'
                else:
                    status, headers, out = handler(parts.path, query, headers_in, body)
                if status == -1:  # hang up without answering
                    self.close_connection = True
                    return
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                streamed = not isinstance(out, bytes)
                if streamed:  # an iterable of chunks: no length, the end is the close
                    self.send_header("Connection", "close")
                    self.close_connection = True
                elif "Content-Length" not in headers:
                    self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    for chunk in out if streamed else (out,):
                        self.wfile.write(chunk)
                        self.wfile.flush()

            do_GET = _handle
            do_POST = _handle

        self.server = _QuietServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def report_requests(self) -> list[dict[str, str]]:
        return [q for p, q, _ in self.requests if p == "/v1/attestation/report"]


@pytest.fixture
def fake_node() -> Iterator[Callable[[], FakeNode]]:
    """Factory of started fake nodes, all stopped at the end of the test."""
    nodes: list[FakeNode] = []

    def make() -> FakeNode:
        node = FakeNode().start()
        nodes.append(node)
        return node

    yield make
    for node in nodes:
        node.stop()


class PinnedClock:
    """A clock that starts at a pinned time and advances with real time (or by ``advance``)."""

    def __init__(self, start: datetime) -> None:
        self.start = start
        self.t0 = time.monotonic()
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return self.start + timedelta(seconds=time.monotonic() - self.t0) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A fresh log (``teelog log init`` equivalent) in a temporary data directory."""
    from teelog.log import Log

    data = tmp_path / "data"
    Log.create(data, origin="test.example/teelog")
    return data


@pytest.fixture
def log(data_dir: Path) -> Any:
    from teelog.log import Log

    return Log.open(data_dir)


@pytest.fixture
def collateral() -> Any:
    from teelog.attestation.collateral import Collateral

    return Collateral.from_files(COLLATERAL_FILES)


def write_config(path: Path, data: Path, nodes: list[dict[str, Any]], extra: str = "") -> Path:
    """Write a collector TOML config with the fixed minimal form plus optional keys."""
    lines = ["[log]", f'data = "{data}"', ""]
    for node in nodes:
        lines.append("[[nodes]]")
        for key, value in node.items():
            lines.append(f"{key} = {json.dumps(value)}")
        lines.append("")
    path.write_text("\n".join(lines) + extra)
    return path


@dataclass
class Receiver:
    """A webhook receiver: records (headers, body) of every POST; answers ``status``."""

    node: FakeNode
    status: int = 200
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.node.url + "/hook"


@pytest.fixture
def receiver(fake_node: Callable[[], FakeNode]) -> Receiver:
    node = fake_node()
    rec = Receiver(node)

    def handle(_path, _query, headers, body):
        if rec.status < 300:
            rec.received.append((headers, body))
        return rec.status, {"Content-Type": "text/plain"}, b"ok"

    node.routes["/hook"] = handle
    return rec


@dataclass
class TeelogNode:
    """teelog's own node (``--quote-provider none``, no GPU) in front of the demo upstream."""

    journal_path: Path
    upstream: str
    url: str = ""
    _ctx: Any = None
    journal: Any = None

    def start(self) -> TeelogNode:
        from teelog.node.app import create_app
        from teelog.node.gpu import NoGpuEvidenceProvider
        from teelog.node.journal import Journal
        from teelog.node.keys import SigningKeys
        from teelog.node.quote import NoQuoteProvider
        from teelog.node.settings import NodeSettings

        self.journal = Journal(self.journal_path)
        app = create_app(
            NodeSettings(upstream=self.upstream), keys=SigningKeys.random(),
            journal=self.journal, quotes=NoQuoteProvider(), gpus=NoGpuEvidenceProvider(),
        )
        self._ctx = serve(app)
        self.url = self._ctx.__enter__()
        return self

    def stop(self) -> None:
        if self._ctx is not None:
            self._ctx.__exit__(None, None, None)
            self.journal.close()
            self._ctx = None

    def chat(self, text: str) -> str:
        """One chat completion through the node; returns its chat id."""
        import httpx

        body = {"model": "teelog-demo-echo", "messages": [{"role": "user", "content": text}]}
        response = httpx.post(self.url + "/v1/chat/completions", json=body, timeout=10)
        response.raise_for_status()
        return response.json()["id"]


@pytest.fixture(scope="session")
def demo_upstream() -> Iterator[str]:
    from teelog.node.demo_upstream import create_demo_upstream

    with serve(create_demo_upstream()) as url:
        yield url


@pytest.fixture
def teelog_node(tmp_path: Path, demo_upstream: str) -> Iterator[Callable[..., TeelogNode]]:
    """Factory of teelog nodes (journal in tmp_path unless given); all stopped at the end."""
    nodes: list[TeelogNode] = []

    def start(journal: Path | None = None) -> TeelogNode:
        node = TeelogNode(journal or tmp_path / "journal.sqlite", demo_upstream).start()
        nodes.append(node)
        return node

    yield start
    for node in nodes:
        node.stop()


def entries_of(log: Any, type_: str | None = None) -> list[tuple[int, dict[str, Any]]]:
    """Every entry of the log (index, parsed JSON), optionally of one type."""
    size = log.checkpoint().size
    out = [(i, json.loads(log.entry(i))) for i in range(size)]
    return [(i, e) for i, e in out if type_ is None or e["type"] == type_]


def collector_config(data: Path, nodes: list[dict[str, Any]], **extra: Any) -> Any:
    """A parsed collector config for ``data`` with test collateral."""
    from teelog.collector.config import parse_config

    doc: dict[str, Any] = {
        "log": {"data": str(data)},
        "nodes": nodes,
        "collateral": {"files": [str(p) for p in COLLATERAL_FILES]},
    }
    doc.update(extra)
    return parse_config(doc)

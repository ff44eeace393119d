"""``teelog demo``: the whole system on one machine, on the embedded default (SQLite + files).

It wires the parts together exactly as a deployment would, in one process:

1. a log in a data directory (a new temporary one unless ``--data`` names one);
2. real attestations shipped in ``teelog/demo_data/`` (origins in its README) imported as the
   collector would, each verified as of a time inside its archived Intel collateral's
   validity window, with the nonce its capturer sent: the NEAR AI bundle (gateway + model;
   the gateway's platform has collateral archived only for Aug-Sep 2026, so its verdict honestly
   says so) and, as nodes of their own, the model's report from that bundle (verified) and
   the gateway's (``warning``: as of the time its platform's collateral was archived, Intel
   rates its TCB out of date);
3. a development node (``teelog node --quote-provider none``) in front of a built-in demo
   upstream labelled as such: it has no TEE, so its attestations show as unverifiable;
4. a collector polling that node (attestations and receipts) on a short schedule;
5. a little demo traffic through the node so that signed receipts appear in the log;
6. the explorer, whose URL it prints.

This module is the composition root: it is the one place that imports every package.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.resources
import logging
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from teelog.attestation.times import duration_option, duration_or_zero_option, rfc3339

logger = logging.getLogger("teelog.demo")

DEMO_ORIGIN = "demo.teelog.local/log"
DEMO_NODE = "demo-node"
NEAR_NODE = "near-ai-gpt-oss-120b"
NEAR_URL = "https://cloud-api.near.ai/v1/attestation/report?model=openai/gpt-oss-120b"
# The nonce the capturer of the NEAR AI bundle sent (tests/data/gpu/README.md).
NEAR_NONCE = "deadbeef" + "0" * 55 + "1"
# A time inside the validity window of the archived collateral for the model's platform
# (FMSPC 90C06F000000, issued 2026-02-18) and after its PCK certificate was issued
# (tests/data/tdx/README.md: "1773200000 → UpToDate").
NEAR_VERIFIED_AT = datetime.fromtimestamp(1773200000, tz=UTC)
NEAR_BUNDLE = "nearai_gpt-oss-120b_attestation_report.json"
# All the Intel collateral archived for the two platforms. Every report is verified against all
# of it: the verifier picks what covers the quote's platform at the verification time, and where
# nothing does it says which windows were archived (the bundle's gateway as of March 2026).
NEAR_COLLATERAL = ("collateral_fmspc_90c06f000000.json", "collateral_fmspc_b0c06f000000.json")
# The bundle's two attestations, each byte for byte as it sits in the bundle: the model node's
# and the gateway's own vllm-proxy reports, imported as nodes of their own.
NEAR_MODEL_NODE = "near-ai-gpt-oss-120b-model"
NEAR_MODEL_REPORT = "nearai_gpt-oss-120b_model_report.json"
NEAR_GATEWAY_NODE = "near-ai-gateway"
NEAR_GATEWAY_REPORT = "nearai_gateway_report.json"
NEAR_GATEWAY_URL = "https://cloud-api.near.ai/"
# Inside the validity window of the only archived collateral for the gateway's platform
# (FMSPC B0C06F000000, Aug-Sep 2026; tests/data/tdx/README.md "1787894484 -> OutOfDate").
NEAR_GATEWAY_VERIFIED_AT = datetime.fromtimestamp(1787894484, tz=UTC)


@dataclass(frozen=True, slots=True)
class RealReport:
    """A real report shipped in ``demo_data/`` (origins in its README), imported as node
    ``node`` and verified as of ``at``, a time inside the validity window of the archived
    collateral among ``collateral``, with the nonce its capturer sent."""

    node: str
    file: str
    url: str | None
    at: datetime
    collateral: tuple[str, ...]
    nonce: str | None = NEAR_NONCE


REAL_REPORTS = (
    RealReport(NEAR_NODE, NEAR_BUNDLE, NEAR_URL, NEAR_VERIFIED_AT, NEAR_COLLATERAL),
    RealReport(NEAR_MODEL_NODE, NEAR_MODEL_REPORT, None, NEAR_VERIFIED_AT, NEAR_COLLATERAL),
    RealReport(NEAR_GATEWAY_NODE, NEAR_GATEWAY_REPORT, NEAR_GATEWAY_URL,
               NEAR_GATEWAY_VERIFIED_AT, NEAR_COLLATERAL),
)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``teelog demo``."""
    p = sub.add_parser(
        "demo",
        help="run everything locally: log, real imported reports, dev node, collector, explorer",
        description="Run the log, a development node with a demo upstream, a collector and "
        "the explorer in one process, with real NEAR AI reports imported. Prints the URL.",
    )
    p.add_argument("--data", type=Path, metavar="DIR",
                   help="data directory (default: a new temporary directory, removed at exit)")
    p.add_argument("--host", default="127.0.0.1", help="explorer address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="explorer port (default 8080; 0 picks)")
    p.add_argument("--interval", type=duration_option, default=10.0, metavar="DURATION",
                   help="time between two polls of the demo node (30s, 5m, 1h or seconds; "
                        "default 10s)")
    p.add_argument("--traffic", type=duration_or_zero_option, default=5.0, metavar="DURATION",
                   help="time between two demo chat requests (default 5s; 0 sends none)")
    p.add_argument("--duration", type=duration_or_zero_option, default=0.0, metavar="DURATION",
                   help="stop after this long (default 0: run until interrupted)")
    p.set_defaults(func=run_demo)


@dataclass(slots=True)
class _Server:
    """A uvicorn server on a background thread."""

    server: Any
    thread: threading.Thread
    url: str

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _start_asgi(app: Any, name: str) -> _Server:
    """Serve an ASGI app on an ephemeral loopback port; return once it accepts connections."""
    import uvicorn

    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the demo's {name} did not start")
        time.sleep(0.02)
    return _Server(server, thread, f"http://127.0.0.1:{port}")


@contextlib.contextmanager
def _demo_data() -> Iterator[Path]:
    with importlib.resources.as_file(importlib.resources.files("teelog") / "demo_data") as path:
        yield Path(path)


def open_or_create_log(data: Path) -> Any:
    """The log in ``data``, created with the demo origin if there is none yet."""
    from teelog.log import Log

    if (data / "log.json").exists():
        return Log.open(data)
    data.mkdir(parents=True, exist_ok=True)
    return Log.create(data, origin=DEMO_ORIGIN)


def import_real_reports(log: Any, demo_data: Path) -> list[tuple[RealReport, int, str]]:
    """Import the shipped real reports (each once, by its content) and return, per report,
    its entry index and status."""
    from teelog.attestation.collateral import Collateral
    from teelog.collector.importer import import_reports
    from teelog.collector.models import create_tables
    from teelog.collector.poll import Recorder
    from teelog.collector.verification import report_verifier
    from teelog.collector.webhooks import WebhookOutbox

    create_tables(log.engine)
    outbox = WebhookOutbox(log.engine, (), clock=lambda: datetime.now(UTC))
    out = []
    for real in REAL_REPORTS:
        collateral = Collateral.from_files([demo_data / name for name in real.collateral])
        recorder = Recorder(log, report_verifier(collateral), outbox)
        [imported] = import_reports(
            recorder, [demo_data / real.file], observed_at=real.at, at=real.at,
            node=real.node, url=real.url, nonce=real.nonce,
        )
        out.append((real, imported.recorded.index, imported.recorded.status))
    return out


def start_dev_node(journal_path: Path) -> tuple[_Server, _Server, Any]:
    """The demo upstream and a development node (no TEE, random keys) in front of it."""
    from teelog.node.app import create_app as create_node_app
    from teelog.node.demo_upstream import create_demo_upstream
    from teelog.node.gpu import choose_gpu_evidence
    from teelog.node.journal import Journal
    from teelog.node.keys import SigningKeys
    from teelog.node.quote import choose_quote_provider
    from teelog.node.settings import NodeSettings

    upstream = _start_asgi(create_demo_upstream(), "demo upstream")
    journal = Journal(str(journal_path))
    node_app = create_node_app(
        NodeSettings(upstream=upstream.url),
        keys=SigningKeys.random(),
        journal=journal,
        quotes=choose_quote_provider("none"),
        gpus=choose_gpu_evidence("none"),
    )
    node = _start_asgi(node_app, "dev node")
    return upstream, node, journal


def start_collector(log: Any, data: Path, node_url: str, interval: float) -> Any:
    """A collector polling the dev node's attestations and receipts every ``interval`` s."""
    from teelog.collector.config import parse_config
    from teelog.collector.scheduler import Collector

    config = parse_config({
        "log": {"data": str(data)},
        "nodes": [{
            "name": DEMO_NODE, "url": node_url, "format": "vllm-proxy",
            "interval": f"{interval:g}s", "receipts_interval": f"{max(1.0, interval / 2):g}s",
        }],
    })
    collector = Collector(config, log=log)
    collector.run_once()
    collector.start()
    return collector


def send_demo_traffic(node_url: str, period: float, stop: threading.Event) -> None:
    """Send a short chat request to the dev node every ``period`` seconds until ``stop``."""
    import httpx

    prompts = ("What does a transparency log prove?", "Why sign every response?",
               "What is in a TDX quote?", "What is RTMR3?")
    with httpx.Client(base_url=node_url, timeout=10) as client:
        n = 0
        while not stop.is_set():
            body = {"model": "teelog-demo-echo", "stream": n % 2 == 1,
                    "messages": [{"role": "user", "content": prompts[n % len(prompts)]}]}
            try:
                client.post("/v1/chat/completions", json=body).raise_for_status()
            except httpx.HTTPError as exc:
                logger.warning("demo traffic: %s", exc)
            n += 1
            stop.wait(period)


def run_demo(args: argparse.Namespace) -> int:
    """Handler of ``teelog demo``."""
    from werkzeug.serving import make_server

    from teelog.explorer.app import create_app as create_explorer

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    temporary = args.data is None
    data = Path(tempfile.mkdtemp(prefix="teelog-demo-")) if temporary else args.data
    stop = threading.Event()
    servers: list[_Server] = []
    collector = journal = None
    try:
        log = open_or_create_log(data)
        with _demo_data() as demo_data:
            imported = import_real_reports(log, demo_data)
        for real, index, status in imported:
            print(f"imported real report {real.file} as entry {index} of node {real.node}: "
                  f"{status} (checked as of {rfc3339(real.at)} with archived collateral)")
        upstream, node, journal = start_dev_node(data / "demo-node-journal.sqlite")
        servers += [upstream, node]
        print(f"development node (no TEE, demo upstream): {node.url}")
        collector = start_collector(log, data, node.url, args.interval)
        if args.traffic > 0:
            threading.Thread(target=send_demo_traffic, args=(node.url, args.traffic, stop),
                             name="demo traffic", daemon=True).start()
        app = create_explorer(data, log=log)
        app.extensions["teelog"].indexer.catch_up()
        server = make_server(args.host, args.port, app, threaded=True)
        host, port = server.server_address[:2]
        threading.Thread(target=server.serve_forever, name="explorer", daemon=True).start()
        print(f"teelog explorer: http://{host}:{port}/  (data in {data}; Ctrl-C stops)",
              flush=True)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        stop.wait(args.duration or None)
        server.shutdown()
        return 0
    finally:
        stop.set()
        if collector is not None:
            collector.stop()
        for srv in reversed(servers):
            srv.stop()
        if journal is not None:
            journal.close()
        if temporary:
            shutil.rmtree(data, ignore_errors=True)

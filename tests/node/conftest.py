"""Shared fixtures of the node tests: real servers on 127.0.0.1 ephemeral ports.

Every server (demo upstream, misbehaving upstreams, the node itself) runs in uvicorn in a
background thread with its own event loop, so tests talk to them over real TCP exactly as a
client would. The fakes of hardware interfaces live in ``fakes/`` (test-only).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "fakes"))

from asgi_server import serve
from node_servers import TOKEN
from teelog.node.app import create_app
from teelog.node.demo_upstream import create_demo_upstream
from teelog.node.gpu import NoGpuEvidenceProvider
from teelog.node.journal import Journal
from teelog.node.keys import SigningKeys
from teelog.node.quote import NoQuoteProvider
from teelog.node.settings import NodeSettings


@pytest.fixture(scope="session")
def demo_upstream() -> Iterator[str]:
    with serve(create_demo_upstream()) as url:
        yield url


@dataclass
class RunningNode:
    url: str
    keys: SigningKeys
    journal: Journal
    token: str | None
    _server: object = None
    stopped: bool = False

    def stop(self) -> None:
        """Shut the node down and close its journal (as a process exit would)."""
        if not self.stopped:
            self._server.__exit__(None, None, None)
            self.journal.close()
            self.stopped = True

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


@pytest.fixture
def start_node(tmp_path: Path) -> Iterator[Callable[..., RunningNode]]:
    """Factory: ``start_node(upstream_url, **options)`` runs a node until the test ends."""
    nodes: list[RunningNode] = []

    def start(
        upstream: str,
        *,
        token: str | None = TOKEN,
        keys: SigningKeys | None = None,
        quotes: object | None = None,
        gpus: object | None = None,
        journal_path: Path | None = None,
        retention_days: float | None = None,
        **settings: object,
    ) -> RunningNode:
        keys = keys or SigningKeys.random()
        journal = Journal(journal_path or tmp_path / "journal.sqlite",
                          retention_days=retention_days)
        app = create_app(
            NodeSettings(upstream=upstream, token=token, **settings),  # type: ignore[arg-type]
            keys=keys, journal=journal,
            quotes=quotes or NoQuoteProvider(), gpus=gpus or NoGpuEvidenceProvider(),
        )
        server = serve(app)
        url = server.__enter__()
        node = RunningNode(url=url, keys=keys, journal=journal, token=token, _server=server)
        nodes.append(node)
        return node

    yield start
    for node in reversed(nodes):
        node.stop()

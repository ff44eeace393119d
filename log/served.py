"""Reading a served log over HTTP: the C2SP tlog-tiles read API plus teelog's blob store.

Tiles and bundles are decoded by ``teelog.log.tiles.TileReader``; this module only fetches.
Everything read here is untrusted: its readers (``teelog log verify``, the monitor) check the
checkpoint signature, recompute the tree from the entries, and hash every blob against the name
it was fetched by. Redirects are never followed: one could send the audit to another log that
is consistent with itself, and the audit would then vouch for the wrong URL.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import httpx

from .audit import tree_entries
from .tiles import TileError, TileReader

MAX_CHECKPOINT_BYTES = 1 << 20


class SourceError(OSError):
    """The log could not be read (network, HTTP status, or a malformed resource).

    An ``OSError``, as reading a local log's files would raise: the audit core
    (``teelog.log.audit.diagnose``) treats either as "could not be read"."""


class HttpLog:
    """The read API of a log served at ``url``: ``checkpoint``, ``tile/…`` and ``blob/<sha256>``
    under one prefix (the explorer serves it at ``/log/``)."""

    def __init__(self, url: str, *, timeout: float = 30.0, client: httpx.Client | None = None):
        self.url = url.rstrip("/") + "/"
        self.client = client or httpx.Client(timeout=timeout, follow_redirects=False)

    def close(self) -> None:
        self.client.close()

    def get(self, path: str, *, limit: int | None = None) -> bytes:
        """GET ``path`` under the prefix; ``FileNotFoundError`` for a 404 (so the tile reader can
        fall back from a deleted partial tile to the full one), :class:`SourceError` otherwise."""
        try:
            response = self.client.get(self.url + path)
        except httpx.HTTPError as exc:
            raise SourceError(f"GET {self.url}{path}: {exc}") from exc
        if response.status_code == 404:
            raise FileNotFoundError(path)
        if response.is_redirect:  # never followed: it could lead away from the audited log
            where = response.headers.get("location", "")[:200]
            raise SourceError(
                f"GET {self.url}{path}: HTTP {response.status_code} redirect to {where!r} "
                "not followed (the audited log is the one at the URL given)"
            )
        if response.status_code != 200:
            raise SourceError(f"GET {self.url}{path}: HTTP {response.status_code}")
        if limit is not None and len(response.content) > limit:
            raise SourceError(f"GET {self.url}{path}: more than {limit} bytes")
        return response.content

    def _must_get(self, path: str, **kwargs: int) -> bytes:
        try:
            return self.get(path, **kwargs)
        except FileNotFoundError:
            raise SourceError(f"GET {self.url}{path}: HTTP 404") from None

    def checkpoint(self) -> str:
        """The current checkpoint note text (unverified)."""
        data = self._must_get("checkpoint", limit=MAX_CHECKPOINT_BYTES)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SourceError("the checkpoint is not UTF-8") from exc

    def reader(self, size: int) -> TileReader:
        """The tiles and bundles of the tree of ``size`` entries."""
        return TileReader(self.get, size)

    def entries(self, start: int, size: int) -> Iterator[tuple[int, bytes, bytes]]:
        """Entries ``start`` .. ``size - 1`` of tree ``size`` in order, bundle by bundle, each
        with its level-0 tile cell (``teelog.log.audit.tree_entries``)."""
        entries = tree_entries(self.reader(size), start)
        while True:
            try:
                item = next(entries)
            except StopIteration:
                return
            except TileError as exc:
                raise SourceError(f"entry bundle or tile: {exc}") from exc
            yield item

    def blob(self, digest: str) -> bytes:
        """The blob named ``digest`` (SHA-256 hex), checked against its name."""
        data = self._must_get(f"blob/{digest}")
        if hashlib.sha256(data).hexdigest() != digest:
            raise SourceError(f"blob {digest} does not hash to its name")
        return data

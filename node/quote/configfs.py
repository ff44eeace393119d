"""TDX quotes from the Linux configfs-tsm report interface (Linux ≥ 6.7, TDX guest).

Protocol (kernel ``Documentation/ABI/testing/configfs-tsm-report``; Dstack-TEE/dstack
``dstack/tdx-attest/src/linux.rs``):

1. ``mkdir <base>/<entry>``: the kernel populates the entry with its attributes.
2. ``provider`` must name the TDX guest driver (``tdx_guest``).
3. Read ``generation`` (g1), write the 64 report_data bytes to ``inblob``.
4. ``generation`` must become g1 + 1; more means another writer used the entry in between.
5. Read ``outblob`` (the DCAP quote), then ``generation`` again: a change means another
   writer raced us and the quote may be over someone else's report_data.
6. ``rmdir`` the entry.

Each request uses its own entry, and requests from this process are serialised (the TDX guest
driver handles one quote at a time). A race detected at step 4 or 5 is retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import threading
import time
from pathlib import Path
from typing import Any

from .base import QuoteError, TdxEvidence

DEFAULT_BASE = "/sys/kernel/config/tsm/report"
# Kernel limits (include/linux/tsm.h): inblob is at most 64 bytes, outblob at most 32 KiB.
_INBLOB_SIZE = 64
_OUTBLOB_MAX = 32 * 1024
_QUOTE_MIN = 1020  # header + TD report + signature data; anything shorter is not a quote
_ATTEMPTS = 3


class ConfigfsTsmQuoteProvider:
    """Quote provider over ``<base>`` (``/sys/kernel/config/tsm/report``).

    ``poll_interval`` and ``timeout`` bound the wait for ``provider`` to appear and for
    ``generation`` to advance (the kernel does both synchronously; the wait is a safeguard).
    """

    name = "configfs-tsm"
    tee = "tdx"

    def __init__(
        self, base: str | Path = DEFAULT_BASE, *, timeout: float = 5.0, poll_interval: float = 0.001
    ) -> None:
        self.base = Path(base)
        self.timeout = timeout
        self.poll_interval = poll_interval
        self._lock = threading.Lock()
        self._counter = itertools.count()

    @staticmethod
    def available(base: str | Path = DEFAULT_BASE) -> bool:
        """Whether configfs-tsm is mounted here (the directory exists)."""
        return Path(base).is_dir()

    async def quote(self, report_data: bytes) -> TdxEvidence:
        quote = await asyncio.to_thread(self.quote_blocking, report_data)
        # configfs-tsm yields only the quote; RTMR event logs are the firmware's (CCEL), which
        # this node does not publish.
        return TdxEvidence(quote=quote, event_log=None)

    async def info(self) -> dict[str, Any]:
        return {"tee": "tdx", "quote_provider": self.name}

    async def aclose(self) -> None:
        return None

    def quote_blocking(self, report_data: bytes) -> bytes:
        """One quote over ``report_data`` (exactly 64 bytes); raises QuoteError."""
        if len(report_data) != _INBLOB_SIZE:
            raise ValueError(f"report_data must be {_INBLOB_SIZE} bytes, got {len(report_data)}")
        with self._lock:
            last: QuoteError | None = None
            for _ in range(_ATTEMPTS):
                try:
                    return self._attempt(report_data)
                except _RaceError as exc:
                    last = QuoteError(f"configfs-tsm: {exc} (retried {_ATTEMPTS} times)")
            assert last is not None
            raise last

    def _attempt(self, report_data: bytes) -> bytes:
        entry = self.base / f"teelog-{os.getpid()}-{next(self._counter)}"
        try:
            entry.mkdir()
        except OSError as exc:
            raise QuoteError(f"configfs-tsm: cannot create {entry}: {exc}") from exc
        try:
            provider = self._wait_for_file(entry / "provider").decode(errors="replace").strip()
            if not provider.startswith("tdx_guest"):
                raise QuoteError(f"configfs-tsm: provider is {provider!r}, not tdx_guest")
            g1 = self._generation(entry)
            try:
                (entry / "inblob").write_bytes(report_data)
            except OSError as exc:
                raise QuoteError(f"configfs-tsm: writing inblob failed: {exc}") from exc
            g2 = self._wait_for_generation_change(entry, g1)
            if g2 != g1 + 1:
                raise _RaceError(f"generation went {g1} -> {g2}: another writer used the entry")
            try:
                quote = (entry / "outblob").read_bytes()
            except OSError as exc:
                raise QuoteError(f"configfs-tsm: reading outblob failed: {exc}") from exc
            g3 = self._generation(entry)
            if g3 != g2:
                raise _RaceError(f"generation changed {g2} -> {g3} while reading outblob")
            if not _QUOTE_MIN < len(quote) <= _OUTBLOB_MAX:
                raise QuoteError(f"configfs-tsm: outblob of {len(quote)} bytes is not a quote")
            return quote
        finally:
            # The entry is ours alone; a leftover is harmless and named for its pid.
            with contextlib.suppress(OSError):
                entry.rmdir()

    def _wait_for_file(self, path: Path) -> bytes:
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                return path.read_bytes()
            except FileNotFoundError:
                if time.monotonic() > deadline:
                    raise QuoteError(f"configfs-tsm: {path} did not appear") from None
                time.sleep(self.poll_interval)
            except OSError as exc:
                raise QuoteError(f"configfs-tsm: reading {path} failed: {exc}") from exc

    def _generation(self, entry: Path) -> int:
        raw = self._wait_for_file(entry / "generation")
        try:
            return int(raw.strip())
        except ValueError:
            raise QuoteError(f"configfs-tsm: generation is not a number: {raw[:40]!r}") from None

    def _wait_for_generation_change(self, entry: Path, before: int) -> int:
        deadline = time.monotonic() + self.timeout
        while True:
            now = self._generation(entry)
            if now != before:
                return now
            if time.monotonic() > deadline:
                raise QuoteError("configfs-tsm: generation did not advance after writing inblob")
            time.sleep(self.poll_interval)


class _RaceError(Exception):
    """Another writer used the report entry concurrently (retryable)."""

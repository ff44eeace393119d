"""A stand-in for the kernel behind ``/sys/kernel/config/tsm/report`` on a temp dir (test-only).

Behaviour copied from the kernel's configfs-tsm (``drivers/virt/coco/tsm.c``,
``Documentation/ABI/testing/configfs-tsm-report``): ``mkdir <entry>`` makes the kernel populate
the entry with its attributes (``provider``, ``generation`` = 0, ``inblob``, ``outblob``, …);
each write to ``inblob`` increments ``generation``; ``outblob`` then holds the quote over the
written report_data. A watcher thread plays the kernel: it polls the directory every
millisecond and reacts as above. The quote is a recorded real one with report_data overwritten,
like the dstack simulator does, so its signature does not verify.

``interfere`` simulates another process writing the same entry: for that many writes the
watcher bumps ``generation`` twice. (A temp dir cannot emulate configfs ``rmdir`` of a
populated entry; the provider's ``rmdir`` fails harmlessly and :attr:`entries` records every
entry made.)
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from fake_dstack_agent import report_data_offset


class FakeTsmKernel:
    """Play the kernel side of configfs-tsm on ``root`` from a thread (context manager)."""

    def __init__(self, root: Path, quote: bytes, *, provider: str = "tdx_guest") -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.quote = quote
        self.provider = provider
        self.interfere = 0
        self.entries: list[str] = []
        self.report_data: list[bytes] = []
        self._state: dict[str, int] = {}  # entry -> generation
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _attribute(entry: Path, name: str, value: bytes) -> None:
        # Kernel attributes never appear half-written: write aside, then rename into place.
        tmp = entry / f".{name}.tmp"
        tmp.write_bytes(value)
        tmp.replace(entry / name)

    def _populate(self, entry: Path) -> None:
        self._attribute(entry, "inblob", b"")
        self._attribute(entry, "outblob", b"")
        self._attribute(entry, "generation", b"0\n")
        self._attribute(entry, "provider", self.provider.encode() + b"\n")
        self._state[entry.name] = 0
        self.entries.append(entry.name)

    def _on_inblob(self, entry: Path, data: bytes) -> None:
        off = report_data_offset(self.quote)
        quote = self.quote[:off] + data + self.quote[off + 64 :]
        bump = 1
        if self.interfere > 0:
            self.interfere -= 1
            bump = 2
        self._attribute(entry, "outblob", quote)
        generation = self._state[entry.name] + bump
        self._state[entry.name] = generation
        self._attribute(entry, "generation", f"{generation}\n".encode())
        self.report_data.append(data)

    def _run(self) -> None:
        handled: set[str] = set()
        while not self._stop.is_set():
            for entry in list(self.root.iterdir()):
                if not entry.is_dir():
                    continue
                if entry.name not in self._state:
                    self._populate(entry)
                    continue
                if entry.name in handled:
                    continue
                try:
                    data = (entry / "inblob").read_bytes()
                except FileNotFoundError:
                    continue
                if len(data) == 64:
                    handled.add(entry.name)
                    self._on_inblob(entry, data)
            time.sleep(0.001)

    def __enter__(self) -> FakeTsmKernel:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

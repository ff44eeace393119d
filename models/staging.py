"""A set of output files that appear all together or not at all.

``teelog model encrypt`` and ``decrypt`` write every file under a temporary name in the
directory where it belongs (so the final rename stays on one file system and is atomic),
rename them all into place only after the last one succeeded, and delete the temporary files
(and the directories they created) on any failure or interruption. A failed decryption thus
never leaves a partial plaintext file, nor a partial model, behind.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from .errors import ModelInputError

_PARTIAL = ".teelog-partial-"


class Staging:
    """Output files under ``root``, named by relative POSIX paths checked by the caller."""

    def __init__(self, root: Path, mode: int) -> None:
        self._mode = mode
        self._created_dirs: list[Path] = []
        self._pending: list[tuple[Path, Path]] = []  # (temporary, final)
        self._committed: list[Path] = []  # finals renamed by a commit that has not finished
        self._finals: set[Path] = set()
        if root.exists() and not root.is_dir():
            raise ModelInputError(f"{root} exists and is not a directory")
        self._make_dirs(root)
        self.root = root
        self._real_root = os.path.realpath(root)

    def _make_dirs(self, directory: Path) -> None:
        missing = []
        d = directory
        while not d.exists():
            missing.append(d)
            d = d.parent
        for d in reversed(missing):
            try:
                d.mkdir()
            except OSError as e:
                raise ModelInputError(f"cannot create directory {d}: {e.strerror}") from None
            self._created_dirs.append(d)

    def open(self, relative: str) -> BinaryIO:
        """Create the temporary file for ``relative``; the caller writes and closes it."""
        final = self.root.joinpath(*relative.split("/"))
        if final in self._finals:
            raise ModelInputError(f"{relative} is written twice")
        if os.path.lexists(final):
            raise ModelInputError(f"{final} already exists; refusing to overwrite it")
        # A directory of OUT_DIR that is a symlink could point anywhere: stay inside the root,
        # and check before creating anything (the path has no '..', so the part that does not
        # exist yet resolves as written).
        real_parent = os.path.realpath(final.parent)
        if os.path.commonpath([real_parent, self._real_root]) != self._real_root:
            raise ModelInputError(f"{final.parent} leads outside {self.root} (a symlink)")
        self._make_dirs(final.parent)
        temporary = final.parent / f"{_PARTIAL}{secrets.token_hex(8)}"
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, self._mode)
        except OSError as e:
            raise ModelInputError(f"cannot create a file in {final.parent}: {e.strerror}") from None
        self._pending.append((temporary, final))
        self._finals.add(final)
        return os.fdopen(fd, "wb", buffering=0)

    def commit(self) -> None:
        """Rename every temporary file to its final name."""
        for _temporary, final in self._pending:
            if os.path.lexists(final):
                raise ModelInputError(f"{final} appeared meanwhile; refusing to overwrite it")
        while self._pending:
            temporary, final = self._pending[0]
            os.rename(temporary, final)
            self._committed.append(final)
            self._pending.pop(0)
        self._committed.clear()
        self._created_dirs.clear()

    def abort(self) -> None:
        """Delete every temporary file (and any final name a failed commit had already
        renamed), then the directories this staging created."""
        for path in [t for t, _final in self._pending] + self._committed:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        self._pending.clear()
        self._committed.clear()
        for d in reversed(self._created_dirs):
            with contextlib.suppress(OSError):  # not empty: someone else put a file there
                d.rmdir()
        self._created_dirs.clear()

    def __enter__(self) -> Staging:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None or self._pending or self._committed:
            self.abort()

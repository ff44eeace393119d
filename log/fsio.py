"""Durable file writes: write to a temporary file, fsync, rename, then fsync the directory.

A reader sees either the old file or the complete new one, and once :func:`fsync_dirs` has
returned the new name survives a crash or power loss (POSIX rename + directory fsync).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from pathlib import Path


def write_durable(
    path: Path, data: bytes, *, sync_dir: bool = True, mode: int = 0o644, sync: bool = True
) -> set[Path]:
    """Atomically replace ``path`` with ``data`` and fsync it.

    Returns the directories whose entries changed (the parent, and the parents of directories
    created on the way); they are fsynced here unless ``sync_dir`` is false, in which case the
    caller must pass them to :func:`fsync_dirs` (to fsync each directory once per batch).
    ``sync=False`` keeps only the atomic replacement (for files rebuilt from elsewhere after a
    crash).
    """
    dirs = {path.parent, *make_dirs_durable(path.parent)}
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}.{threading.get_ident()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if sync and sync_dir:
        fsync_dirs(dirs)
    return dirs


def write_synced(path: Path, data: bytes, mode: int = 0o644) -> set[Path]:
    """Write ``path`` in place (truncating any previous file) and fsync it; no rename.

    For tiles and bundles only: their paths are referenced by no checkpoint until the batch
    that writes them commits, after this fsync, so a torn file can only ever exist at a path
    nobody may read yet (and the next batch rewrites it).  Returns the directories to fsync.
    """
    dirs = {path.parent, *make_dirs_durable(path.parent)}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    return dirs


def fsync_dirs(dirs: Iterable[Path]) -> None:
    """fsync each directory so that renames and new entries in it are durable."""
    for d in dirs:
        fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def make_dirs_durable(path: Path) -> list[Path]:
    """Create ``path`` and its missing parents; return the directories whose entries changed."""
    changed: list[Path] = []
    missing: list[Path] = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        d.mkdir(exist_ok=True)
        changed.append(d.parent)
    return changed

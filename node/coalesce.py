"""Relaying a byte stream without delaying it, merging only what has already arrived.

The node passes each upstream chunk on as soon as it has it; it never waits for more. But when
several chunks are already there (read from one socket buffer, or queued while the node was
busy), writing them one by one costs a system call and a trip through the ASGI server each.
:func:`coalesce` reads the source in its own task and hands over everything that has
accumulated since the last hand-over as one piece: one chunk when they trickle, many when they
come in a burst. The bytes and their order are unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class _Failure:
    error: Exception


_END = object()


async def coalesce(
    source: AsyncIterator[bytes], *, max_pending: int = 1024
) -> AsyncIterator[bytes]:
    """Yield ``source``'s bytes as they arrive, merging pieces that arrived together.

    At most ``max_pending`` pieces wait in between (backpressure on the source beyond that).
    An exception raised by ``source`` is raised here after the bytes that preceded it.
    Closing this generator cancels the reading task.
    """
    queue: asyncio.Queue[object] = asyncio.Queue(max_pending)

    async def pump() -> None:
        try:
            async for piece in source:
                if piece:
                    await queue.put(piece)
        except Exception as exc:  # handed to the consumer, in order
            await queue.put(_Failure(exc))
        else:
            await queue.put(_END)

    task = asyncio.get_running_loop().create_task(pump())
    try:
        while True:
            item = await queue.get()
            pieces: list[bytes] = []
            while isinstance(item, bytes):
                pieces.append(item)
                if queue.empty():
                    break
                item = queue.get_nowait()
            if pieces:
                yield pieces[0] if len(pieces) == 1 else b"".join(pieces)
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.error
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

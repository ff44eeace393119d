"""coalesce(): same bytes in the same order, merged only when already there; errors and
cancellation reach the right side."""

from __future__ import annotations

import asyncio

import pytest
from teelog.node.coalesce import coalesce


async def _collect(source) -> list[bytes]:
    return [piece async for piece in coalesce(source)]


def test_pieces_that_arrive_together_are_merged_and_order_is_kept():
    async def burst():
        for i in range(50):
            yield f"{i},".encode()  # no suspension in between: all there at once

    out = asyncio.run(_collect(burst()))
    assert b"".join(out) == b"".join(f"{i},".encode() for i in range(50))
    assert len(out) == 1  # one write instead of fifty


def test_pieces_that_trickle_are_passed_on_one_by_one_without_waiting():
    async def scenario():
        release = asyncio.Event()
        seen: list[bytes] = []

        async def trickle():
            yield b"first"
            await release.wait()  # the second piece comes only after the first was consumed
            yield b"second"

        async for piece in coalesce(trickle()):
            seen.append(piece)
            release.set()
        return seen

    assert asyncio.run(scenario()) == [b"first", b"second"]


def test_empty_pieces_are_dropped():
    async def source():
        yield b""
        yield b"x"
        yield b""

    assert b"".join(asyncio.run(_collect(source()))) == b"x"


def test_error_of_the_source_is_raised_after_the_bytes_before_it():
    async def failing():
        yield b"ok"
        raise ConnectionResetError("upstream went away")

    async def scenario():
        got = []
        with pytest.raises(ConnectionResetError, match="went away"):
            async for piece in coalesce(failing()):
                got.append(piece)
        return got

    assert asyncio.run(scenario()) == [b"ok"]


def test_closing_the_consumer_stops_reading_the_source():
    async def scenario():
        closed = asyncio.Event()

        async def endless():
            try:
                while True:
                    yield b"."
                    await asyncio.sleep(0.001)
            finally:
                closed.set()

        relay = coalesce(endless())
        assert await relay.__anext__()
        await relay.aclose()
        await asyncio.wait_for(closed.wait(), 2)

    asyncio.run(scenario())

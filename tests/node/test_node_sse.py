"""SseTap: hashing, first-event id and ``[DONE]`` detection on arbitrary chunk boundaries."""

from __future__ import annotations

import hashlib
import itertools
import json

from hypothesis import given
from hypothesis import strategies as st
from teelog.node.sse import SseTap


def _event(obj: object) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


TRICK = "\ndata: [DONE]"
STREAM = (
    b": keep-alive comment\n\n"
    + _event({"error": "transient"})  # an object without id is not the first chunk
    # A model may well write "\ndata: [DONE]": inside JSON the newline is escaped.
    + _event({"id": "chatcmpl-1", "model": "m", "choices": [{"delta": {"content": TRICK}}]})
    + _event({"id": "chatcmpl-1", "model": "m", "choices": [{"delta": {"content": "more"}}]})
    + b"data: [DONE]\n\n"
)


def _feed(chunks: list[bytes]) -> SseTap:
    tap = SseTap()
    for c in chunks:
        tap.feed(c)
    return tap


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


@given(st.lists(st.integers(min_value=0, max_value=10_000), max_size=12))
def test_result_is_the_same_for_any_chunking(cuts):
    tap = _feed(_split(STREAM, cuts))
    assert tap.done
    assert (tap.id, tap.model) == ("chatcmpl-1", "m")
    assert tap.hexdigest() == hashlib.sha256(STREAM).hexdigest()
    assert tap.nbytes == len(STREAM)


def test_done_inside_a_json_string_does_not_end_the_stream():
    head = STREAM[: STREAM.index(b"data: [DONE]\n\n")]
    tap = _feed([head])
    assert tap.id == "chatcmpl-1"
    assert not tap.done


def test_done_without_space_and_crlf_lines_are_recognised():
    tap = _feed([_event({"id": "x"}).replace(b"\n", b"\r\n"), b"data:[DONE]\r\n\r\n"])
    assert tap.done and tap.id == "x"


def test_done_as_the_very_first_line_is_recognised():
    assert _feed([b"data: [DONE]\n\n"]).done


def test_stream_without_id_leaves_id_unset():
    tap = _feed([_event({"choices": []}), b"data: [DONE]\n\n"])
    assert tap.done and tap.id is None

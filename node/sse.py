"""Watching a server-sent-event stream as it passes through, without holding it back.

:class:`SseTap` sees every chunk the node sends, in order, and keeps three facts: the SHA-256
of all bytes so far (the signed response hash covers the SSE bytes exactly as sent), the
``id``/``model`` of the first JSON event (OpenAI streams repeat the completion id in every
chunk; vllm-proxy takes the first), and whether the terminating ``data: [DONE]`` line has been
seen (WHATWG HTML "Server-sent events" §9.2.6 line format; OpenAI's stream terminator).
"""

from __future__ import annotations

import hashlib
import json

# A [DONE] line starts after a line break; JSON payloads escape newlines, so a literal LF
# followed by these bytes can only be an event line. ``data:`` may omit the space (SSE §9.2.6).
_DONE_MARKERS = (b"\ndata: [DONE]", b"\ndata:[DONE]")
_TAIL = max(len(m) for m in _DONE_MARKERS) - 1
# The first event is looked for in at most this many bytes; later chunks are never buffered.
_MAX_HEAD = 1 << 20


class SseTap:
    """Incremental observer of one SSE response body."""

    __slots__ = ("_hash", "_head", "_tail", "done", "id", "model", "nbytes")

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self._head: bytearray | None = bytearray()  # None once the first event was parsed
        self._tail = b"\n"  # the stream start counts as a line start
        self.done = False
        self.id: str | None = None
        self.model: str | None = None
        self.nbytes = 0

    def feed(self, chunk: bytes) -> None:
        """Account for ``chunk``, the next bytes sent to the client."""
        self._hash.update(chunk)
        self.nbytes += len(chunk)
        if self._head is not None:
            self._head += chunk
            self._parse_head()
        if not self.done:
            window = self._tail + chunk
            self.done = any(m in window for m in _DONE_MARKERS)
            self._tail = window[-_TAIL:]

    def hexdigest(self) -> str:
        """SHA-256 (lowercase hex) of every byte fed so far."""
        return self._hash.hexdigest()

    def _parse_head(self) -> None:
        head = self._head
        assert head is not None
        start = 0
        while True:
            end = head.find(b"\n", start)
            if end < 0:
                break
            line = bytes(head[start:end]).rstrip(b"\r")
            start = end + 1
            if not line.startswith(b"data:"):
                continue
            payload = line[5:].strip()
            if payload == b"[DONE]":
                continue
            try:
                event = json.loads(payload)
            except ValueError:
                continue
            if isinstance(event, dict) and isinstance(event.get("id"), str) and event["id"]:
                self.id = event["id"]
                model = event.get("model")
                self.model = model if isinstance(model, str) else None
                self._head = None
                return
        del head[:start]
        if len(head) > _MAX_HEAD:
            self._head = None  # no id within the first MiB: the stream will not be signed

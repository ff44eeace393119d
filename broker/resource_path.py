"""Resource paths ``<repository>/<type>/<tag>`` of ``GET /kbs/v0/resource/…``.

Trustee's path segments are free strings; teelog, like KServe's confidential serving
(``[A-Za-z0-9_.-]``, research/key-release.md §1.1), accepts exactly three segments of letters,
digits, ``_``, ``.`` and ``-``, none of them ``.`` or ``..``. The check runs on the *raw* request
path, before any percent-decoding, so an encoded ``/`` (``%2F``), an encoded dot, a
backslash, an empty segment or extra segments are refused, never normalised into another
resource (research/key-release.md §8.3 case 7). A query string is refused too.
"""

from __future__ import annotations

import re

from .errors import KbsError

PREFIX = "/kbs/v0/resource/"
_SEGMENT = re.compile(r"\A[A-Za-z0-9_.-]{1,128}\Z")


def parse_resource_path(path: str) -> tuple[str, str, str]:
    """``(repository, type, tag)`` of ``repo/type/tag``; ``InvalidRequestPath`` otherwise."""
    parts = path.split("/")
    if len(parts) != 3:
        raise KbsError("InvalidRequestPath",
                       f"resource path must be <repository>/<type>/<tag>, got {_shown(path)}")
    for part in parts:
        if not _SEGMENT.match(part) or part in (".", ".."):
            raise KbsError("InvalidRequestPath",
                           f"resource path segment {_shown(part)} is not [A-Za-z0-9_.-]+ "
                           "(and not . or ..)")
    return parts[0], parts[1], parts[2]


def resource_of_request(raw_path: bytes, query: bytes) -> str:
    """The resource path of a raw request target (``scope["raw_path"]``), checked."""
    if query:
        raise KbsError("InvalidRequestPath", "a resource request takes no query string")
    try:
        text = raw_path.decode("ascii")
    except UnicodeDecodeError:
        raise KbsError("InvalidRequestPath", "resource path is not ASCII") from None
    if not text.startswith(PREFIX):
        raise KbsError("InvalidRequestPath", f"not a resource path: {_shown(text)}")
    rest = text[len(PREFIX):]
    parse_resource_path(rest)
    return rest


def _shown(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:79] + "…")

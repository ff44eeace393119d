"""KBS protocol errors: the body ``{"type", "detail"}`` and Trustee's status codes.

Trustee (kbs/src/error.rs) answers an RFC 7807-style body whose ``type`` is
``https://github.com/confidential-containers/kbs/errors/<Name>``, with **404** only for
``InvalidRequestPath`` and ``PluginNotFound`` and **401** for everything else, policy denials
included; the client redoes the handshake on 401 and gives up on 404 (research/key-release.md
§1.6). ``LogUnavailable`` (503) is ours: the log could not take the decision, so nothing is
released.
"""

from __future__ import annotations

from typing import Any

ERROR_TYPE_PREFIX = "https://github.com/confidential-containers/kbs/errors/"
_NOT_FOUND = frozenset({"InvalidRequestPath", "PluginNotFound"})
_STATUS = {"LogUnavailable": 503}


class KbsError(Exception):
    """A refusal with a Trustee error name and a detail for the client (never a secret)."""

    def __init__(self, name: str, detail: str) -> None:
        super().__init__(f"{name}: {detail}")
        self.name = name
        self.detail = detail

    @property
    def status_code(self) -> int:
        if self.name in _NOT_FOUND:
            return 404
        return _STATUS.get(self.name, 401)

    def body(self) -> dict[str, Any]:
        return {"type": ERROR_TYPE_PREFIX + self.name, "detail": self.detail}

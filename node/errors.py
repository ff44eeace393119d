"""Errors in the OpenAI shape, as vllm-proxy and vLLM return them.

``{"error": {"message", "type", "param", "code"}}`` with the HTTP status; the ``type`` values
follow vllm-proxy where it has one (``invalid_signing_algo``, ``not_found``) and OpenAI's
(``invalid_request_error``, ``authentication_error``) elsewhere.
"""

from __future__ import annotations

import json

from starlette.responses import Response


class NodeError(Exception):
    """An error the node reports to its client; carries the HTTP status and OpenAI error type."""

    def __init__(
        self,
        status: int,
        message: str,
        type_: str = "invalid_request_error",
        *,
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.param = param
        self.code = code

    def to_json(self) -> dict[str, dict[str, str | None]]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json()).encode()

    def response(self) -> Response:
        headers = {"www-authenticate": "Bearer"} if self.status == 401 else None
        return Response(
            self.to_bytes(), status_code=self.status, media_type="application/json",
            headers=headers,
        )

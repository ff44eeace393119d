"""TDX quotes from the dstack guest agent (``GetQuote`` and ``Info``, dstack 0.5.x).

The agent returns the quote together with the event log that replays to RTMR0-3, and ``Info``
carries the app compose file whose SHA-256 is in ``mr_config_id`` (docs/node.md "The compose hash a
verifier sees").
``Info`` does not change while the CVM runs, so it is fetched once and kept.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from ..dstack_agent import DEFAULT_SOCKET, DstackAgent, DstackError
from .base import QuoteError, TdxEvidence


class DstackQuoteProvider:
    """Quote provider backed by a :class:`~teelog.node.dstack_agent.DstackAgent`."""

    name = "dstack"
    tee = "tdx"

    def __init__(self, agent: DstackAgent) -> None:
        self.agent = agent
        self._info: dict[str, Any] | None = None

    @staticmethod
    def available(socket: str = DEFAULT_SOCKET) -> bool:
        """Whether a guest-agent socket is present at ``socket``."""
        return Path(socket).is_socket()

    async def quote(self, report_data: bytes) -> TdxEvidence:
        try:
            quote, event_log = await self.agent.get_quote(report_data)
        except DstackError as exc:
            raise QuoteError(str(exc)) from exc
        return TdxEvidence(quote=quote, event_log=event_log)

    async def info(self) -> dict[str, Any]:
        if self._info is None:
            try:
                self._info = await self.agent.info()
            except DstackError as exc:
                raise QuoteError(str(exc)) from exc
        return copy.deepcopy(self._info)

    async def aclose(self) -> None:
        await self.agent.aclose()

"""The ``none`` quote provider: a development node without a TEE.

It never returns a quote, borrowed, canned or otherwise; the report says ``"tee": "none"`` and
``intel_quote: null``, so no verifier can mistake the node for an attested one.
"""

from __future__ import annotations

from typing import Any

from .base import TdxEvidence


class NoQuoteProvider:
    """No TEE: no quote, no event log."""

    name = "none"
    tee = "none"

    async def quote(self, report_data: bytes) -> TdxEvidence | None:
        return None

    async def info(self) -> dict[str, Any]:
        return {
            "tee": "none",
            "warning": "development node without a TEE: nothing in this report is attested",
        }

    async def aclose(self) -> None:
        return None

"""What every quote provider gives the node: TDX evidence bound to 64 bytes of report_data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class QuoteError(RuntimeError):
    """The provider could not produce a quote (device missing, busy, agent down, …)."""


@dataclass(frozen=True, slots=True)
class TdxEvidence:
    """A TDX DCAP quote (Intel TDX DCAP Quote Generation Library and Quote Verification
    Library API, quote v4/v5) and, when the provider has one, the event log behind RTMR0-3
    (dstack JSON entries ``{imr, event_type, digest, event, event_payload}``)."""

    quote: bytes
    event_log: list[dict[str, Any]] | None


class QuoteProvider(Protocol):
    """A source of TDX quotes.

    ``name`` identifies the provider in reports and logs (``configfs-tsm``, ``dstack``,
    ``none``); ``tee`` is ``"tdx"`` or ``"none"``. :meth:`quote` returns None only for the
    ``none`` provider, which has no TEE and never returns a quote of any kind.
    """

    name: str
    tee: str

    async def quote(self, report_data: bytes) -> TdxEvidence | None: ...

    async def info(self) -> dict[str, Any]: ...

    async def aclose(self) -> None: ...

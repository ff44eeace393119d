"""Quote providers: where the node's TDX evidence comes from (one module per source).

- :mod:`.configfs`: the Linux configfs-tsm report interface.
- :mod:`.dstack`: the dstack guest agent over ``/var/run/dstack.sock``.
- :mod:`.none`: no TEE (development); never any quote.

:func:`choose_quote_provider` turns ``--quote-provider auto|configfs|dstack|none`` into one.
"""

from __future__ import annotations

import logging

from ..dstack_agent import DEFAULT_SOCKET, DstackAgent
from .base import QuoteError, QuoteProvider, TdxEvidence
from .configfs import DEFAULT_BASE, ConfigfsTsmQuoteProvider
from .dstack import DstackQuoteProvider
from .none import NoQuoteProvider

__all__ = [
    "ConfigfsTsmQuoteProvider",
    "DstackQuoteProvider",
    "NoQuoteProvider",
    "QuoteError",
    "QuoteProvider",
    "TdxEvidence",
    "choose_quote_provider",
]

log = logging.getLogger("teelog.node.quote")

QUOTE_PROVIDER_CHOICES = ("auto", "configfs", "dstack", "none")


def choose_quote_provider(
    kind: str, *, dstack_socket: str = DEFAULT_SOCKET, configfs_base: str = DEFAULT_BASE
) -> QuoteProvider:
    """The provider for ``kind``; ``auto`` prefers the dstack agent (it also has the event log
    and app compose), then configfs-tsm, then none, and logs what it picked."""
    if kind == "auto":
        if DstackQuoteProvider.available(dstack_socket):
            kind = "dstack"
        elif ConfigfsTsmQuoteProvider.available(configfs_base):
            kind = "configfs"
        else:
            kind = "none"
        log.info("quote provider auto-selected: %s", kind)
    if kind == "dstack":
        return DstackQuoteProvider(DstackAgent(dstack_socket))
    if kind == "configfs":
        return ConfigfsTsmQuoteProvider(configfs_base)
    if kind == "none":
        log.warning("quote provider 'none': this node has no TEE and its reports say so")
        return NoQuoteProvider()
    raise ValueError(f"unknown quote provider {kind!r}; choose one of {QUOTE_PROVIDER_CHOICES}")

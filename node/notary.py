"""The notary: signs each delivered exchange with both node keys and journals the receipt.

Order matters and is the contract the proxy relies on: sign, commit to the journal, then make
the receipt visible (in-memory cache for ``/v1/signature``); only after :meth:`Notary.record`
returns does the proxy send the response's final bytes.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from teelog.attestation.receipt import text_of_hashes
from teelog.attestation.times import rfc3339

from .journal import Journal
from .keys import SigningKeys
from .receipt import Receipt, Signature


class Notary:
    """Signs receipts with ``keys`` and keeps them in ``journal``; recent ones also in memory."""

    def __init__(self, keys: SigningKeys, journal: Journal, *, cache_size: int = 4096) -> None:
        self.keys = keys
        self.journal = journal
        self._cache: OrderedDict[str, Receipt] = OrderedDict()
        self._cache_size = cache_size

    def record(
        self, *, chat_id: str, model: str | None, request_sha256: str, response_sha256: str
    ) -> Receipt:
        """Sign ``request_sha256:response_sha256`` with both keys, journal it, return it."""
        text = text_of_hashes(request_sha256, response_sha256)
        unsigned = Receipt(
            seq=0,
            chat_id=chat_id,
            model=model,
            request_sha256=request_sha256,
            response_sha256=response_sha256,
            signed_at=rfc3339(time.time()),
            ecdsa=Signature(self.keys.ecdsa.address, self.keys.ecdsa.sign(text)),
            ed25519=Signature(self.keys.ed25519.address, self.keys.ed25519.sign(text)),
        )
        receipt = self.journal.append(unsigned)
        self._cache[chat_id] = receipt
        self._cache.move_to_end(chat_id)
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return receipt

    def lookup(self, chat_id: str) -> Receipt | None:
        """The newest receipt for ``chat_id`` (memory first, then the journal), or None."""
        receipt = self._cache.get(chat_id)
        return receipt if receipt is not None else self.journal.by_chat_id(chat_id)

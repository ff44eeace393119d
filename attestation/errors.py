"""Typed errors for unusable input.

A verification *result* (a check that fails) is never an exception; these are raised only when
the input cannot be read at all (not a quote, not JSON, not a known report format). Every one
is a :class:`ValueError`, so callers that only care about "bad input" can catch that.
"""

from __future__ import annotations


class AttestationInputError(ValueError):
    """The input could not be read as attestation evidence; the message says what was wrong."""


class QuoteFormatError(AttestationInputError):
    """Bytes that are not a well-formed SGX/TDX DCAP quote (Intel TDX DCAP quote layout)."""


class CollateralError(AttestationInputError):
    """Collateral that cannot be read, or could not be fetched from a PCCS/PCS."""


class EventLogError(AttestationInputError):
    """An event log that is not a list of well-formed dstack/TDX events."""


class ReportFormatError(AttestationInputError):
    """A document that is not a known attestation report or bundle format."""

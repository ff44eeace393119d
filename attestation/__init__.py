"""Verification of confidential-inference attestations: TDX quote, collateral, event log,
report_data binding, NVIDIA GPU evidence and signed receipts.

Public API (docs/architecture.md, "teelog.attestation public API"; docs/attestation.md)::

    verify_report(doc, *, nonce=None, at, collateral, rim_dir=None, jwks=None, nras=None) -> Result
    verify_quote(raw, *, at, collateral=None) -> Result
    verify_receipt(...) -> Verdict
"""

from .collateral import Collateral, CollateralDoc, Freshness, load_collateral
from .errors import (
    AttestationInputError,
    CollateralError,
    EventLogError,
    QuoteFormatError,
    ReportFormatError,
)
from .eventlog import EventLog, parse_event_log
from .measurements import Change, GpuMeasurement, Measurements, diff_measurements
from .quote import Quote, decode_quote_bytes, parse_quote
from .receipt import verify_receipt
from .report import FORMATS, detect_format, report_attestations, verify_quote, verify_report
from .verdict import Check, Result, Verdict, status_of, worst_status

__all__ = [
    "FORMATS",
    "AttestationInputError",
    "Change",
    "Check",
    "Collateral",
    "CollateralDoc",
    "CollateralError",
    "EventLog",
    "EventLogError",
    "Freshness",
    "GpuMeasurement",
    "Measurements",
    "Quote",
    "QuoteFormatError",
    "ReportFormatError",
    "Result",
    "Verdict",
    "decode_quote_bytes",
    "detect_format",
    "diff_measurements",
    "load_collateral",
    "parse_event_log",
    "parse_quote",
    "report_attestations",
    "status_of",
    "verify_quote",
    "verify_receipt",
    "verify_report",
    "worst_status",
]

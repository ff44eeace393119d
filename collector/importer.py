"""``teelog import``: append recorded reports (captured with curl, archived bundles) to the log
as the collector would, with ``source: "import"``.

The observation time is when the report was captured (``--observed-at``, default now); the
verification time ``--at`` defaults to it, so an archived bundle is judged against collateral
valid when it was captured. An import without the nonce the capturer sent (``--nonce``) has
``nonce: null``: freshness cannot be checked, and the verdict says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from teelog.attestation.errors import AttestationInputError
from teelog.attestation.inputs import detect_input_kind

from .poll import Recorded, Recorder


class ReportFileError(ValueError):
    """A file that cannot be imported (unreadable, not JSON, not an attestation report)."""


@dataclass(frozen=True, slots=True)
class ImportedReport:
    """One imported file and the entry it became."""

    path: Path
    node: str
    format: str
    recorded: Recorded


def read_report(path: Path) -> tuple[bytes, object, str]:
    """The exact bytes, parsed JSON and detected format of a recorded report file."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ReportFileError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        found = detect_input_kind(raw)
    except AttestationInputError as exc:
        raise ReportFileError(f"{path}: not an attestation report: {exc}") from exc
    if found.kind not in ("report", "bundle") or found.report_format is None:
        raise ReportFileError(
            f"{path}: a {found.kind}, not an attestation report (expected a vllm-proxy, "
            "near-gateway or redpill-chutes /v1/attestation/report answer; teelog verify "
            "checks the other kinds)"
        )
    return raw, found.doc, found.report_format


def import_reports(
    recorder: Recorder,
    paths: Sequence[Path],
    *,
    observed_at: datetime,
    at: datetime | None = None,
    node: str | None = None,
    url: str | None = None,
    nonce: str | None = None,
) -> list[ImportedReport]:
    """Verify and append each file in order. Every file is read and checked before anything
    is appended, so a bad file in the list leaves the log untouched."""
    loaded = [(Path(p), *read_report(Path(p))) for p in paths]
    verified_at = at or observed_at
    out: list[ImportedReport] = []
    for path, raw, doc, fmt in loaded:
        name = node or path.stem
        recorded = recorder.record(
            node=name,
            url=url,
            raw=raw,
            doc=doc,
            format=fmt,
            source="import",
            observed_at=observed_at,
            verified_at=verified_at,
            nonce=nonce.lower() if nonce else None,
        )
        out.append(ImportedReport(path=path, node=name, format=fmt, recorded=recorded))
    return out

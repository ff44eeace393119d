"""The collector's use of ``teelog.attestation``: reports and receipt signatures → check JSON.

A report that cannot be read at all (not a known format, malformed quote) is still logged:
its entry carries one attestation with role ``report`` and a failed ``report.format`` check
saying why, so the log shows what the node sent and what was wrong with it. A crash of the
verifier itself (a bug on our side, not the node's) gives a ``skip`` check: ``unverifiable``.
"""

from __future__ import annotations

import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from typing import Any

from teelog.attestation.collateral import Collateral
from teelog.attestation.errors import AttestationInputError

from .config import CollateralConfig
from .poll import Verification, Verify

logger = logging.getLogger("teelog.collector")


def collateral_from_config(config: CollateralConfig) -> Collateral:
    """The collateral source configured in ``[collateral]`` (files, PCCS URL, cache dir)."""
    return Collateral.from_files(
        config.files, pccs_url=config.pccs_url, cache_dir=config.cache_dir
    )


def _problem(name: str, status: str, detail: str) -> dict[str, Any]:
    return {
        "role": "report",
        "model": None,
        "signing_address": None,
        "signing_algo": None,
        "status": "failed" if status == "fail" else "unverifiable",
        "checks": [{"name": name, "status": status, "detail": detail}],
        "measurements": None,
    }


def verify_report_bytes(
    collateral: Collateral, raw: Any, nonce: str | None, at: datetime
) -> Verification:
    """``attestation.verify_report`` of one report (its exact bytes, or parsed JSON), as
    check JSON. Never raises: unreadable input and verifier crashes become checks."""
    from teelog.attestation import verify_report

    try:
        result = verify_report(raw, nonce=nonce, at=at, collateral=collateral)
    except AttestationInputError as exc:
        return Verification([_problem("report.format", "fail", str(exc)[:2000])], {}, str(exc))
    except Exception as exc:  # a verifier bug must not stop the collector
        logger.exception("verifier crashed")
        detail = f"verification crashed: {type(exc).__name__}: {exc}"[:2000]
        return Verification([_problem("report.verifier", "skip", detail)], {}, detail)
    return Verification(
        attestations=[v.to_json() for v in result.attestations],
        collateral_used=result.collateral_documents(),  # used and cited: what reproduces it
    )


def report_verifier(collateral: Collateral) -> Verify:
    """A :data:`Verify` function running in the calling thread."""

    def verify(raw: Any, nonce: str | None, at: datetime) -> Verification:
        return verify_report_bytes(collateral, raw, nonce, at)

    return verify


# -- verification in worker processes -------------------------------------------------------

_worker_collateral: Collateral | None = None


def _init_worker(config: CollateralConfig) -> None:
    global _worker_collateral
    _worker_collateral = collateral_from_config(config)


def _verify_in_worker(raw: bytes, nonce: str | None, at: datetime) -> Verification:
    assert _worker_collateral is not None, "worker not initialised"
    return verify_report_bytes(_worker_collateral, raw, nonce, at)


class ProcessVerifier:
    """A :data:`Verify` function that runs verification in ``processes`` worker processes.

    Verification is CPU-bound Python and holds the GIL; in worker processes it uses every
    core while the collector's threads do I/O and bookkeeping. Each worker loads the
    configured collateral once (and fetches from the PCCS into the shared cache directory).
    Only bytes go to a worker and JSON-ready results come back.
    """

    runs_elsewhere = True  # the Recorder need not hold its CPU gate while waiting

    def __init__(self, config: CollateralConfig, processes: int) -> None:
        context = multiprocessing.get_context("spawn")  # no fork of a threaded process
        self.pool = ProcessPoolExecutor(
            max_workers=processes, mp_context=context, initializer=_init_worker,
            initargs=(config,),
        )

    def __call__(self, raw: bytes, nonce: str | None, at: datetime) -> Verification:
        return self.pool.submit(_verify_in_worker, raw, nonce, at).result()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def receipt_signature_checks(item: dict[str, Any]) -> list[dict[str, Any]]:
    """Checks of one feed item before its signer is looked up:

    ``receipt.text``               ``text`` ends in ``request_sha256:response_sha256``;
    ``receipt.signature.<algo>``   each signature over ``text`` (``attestation.verify_receipt``;
                                   its own ``receipt.signer`` is replaced by the collector's,
                                   which knows which log entry vouched for the key).
    """
    from teelog.attestation.receipt import parse_signed_text, verify_receipt

    checks: list[dict[str, Any]] = []
    text = item["text"]
    try:
        _, req, resp = parse_signed_text(text)
    except ValueError as exc:
        checks.append({"name": "receipt.text", "status": "fail", "detail": str(exc)})
    else:
        claimed = (item["request_sha256"].lower(), item["response_sha256"].lower())
        if (req, resp) == claimed:
            checks.append(
                {"name": "receipt.text", "status": "pass",
                 "detail": "text signs the published request and response hashes"}
            )
        else:
            checks.append(
                {"name": "receipt.text", "status": "fail",
                 "detail": f"text signs {req}:{resp}, feed says {claimed[0]}:{claimed[1]}"}
            )
    signed = 0
    for algo in ("ecdsa", "ed25519"):
        sig = item.get(algo)
        if not isinstance(sig, dict):
            continue
        signed += 1
        verdict = verify_receipt(
            {
                "text": text,
                "signature": sig["signature"],
                "signing_address": sig["signing_address"],
                "signing_algo": algo,
            }
        )
        check = verdict.check("receipt.signature")
        assert check is not None  # verify_receipt always runs it
        checks.append(
            {"name": f"receipt.signature.{algo}", "status": check.status, "detail": check.detail}
        )
    if not signed:
        checks.append({"name": "receipt.signature", "status": "fail", "detail": "no signature"})
    return checks

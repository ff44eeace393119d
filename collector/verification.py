"""How the collector runs verification: the configured collateral, in this thread or in workers.

What a verification logs (the verdict JSON, a report that cannot be read, a crash) is the
entry format's: ``teelog.entries.verdict``.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from typing import Any

from teelog.attestation.collateral import Collateral
from teelog.attestation.collateral_config import CollateralConfig
from teelog.entries.verdict import Verification, verify_report_bytes

from .poll import Verify


def collateral_from_config(config: CollateralConfig) -> Collateral:
    """The collateral source configured in ``[collateral]`` (files, PCCS URL, cache dir)."""
    return Collateral.from_files(
        config.files, pccs_url=config.pccs_url, cache_dir=config.cache_dir
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



"""The collector: one APScheduler job per node (attestations), one per receipts feed, one for
webhook delivery; and :meth:`Collector.run_once` for tests, ``teelog demo`` and one-shot runs.

Isolation: every job runs in its own thread of a pool large enough for all jobs, with
``max_instances=1`` (a node's next poll never starts while its previous one still runs) and
``coalesce`` (a late node does not get a burst of catch-up polls). Each request is bounded by
the node's timeout and size limit, so a slow, dead or hostile node holds one thread for at most
its timeout and never delays the others. Failures back off per node (``collector_node``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from .clients import NodeHTTP, ReceiptsClient, ReportClient
from .config import CollectorConfig
from .models import StateDB, create_tables
from .poll import AttestationPoller, Clock, LogLike, PollOutcome, Recorder, Verify, system_clock
from .receipts import ReceiptsOutcome, ReceiptsPoller, SignatureChecks
from .webhooks import WebhookOutbox

logger = logging.getLogger("teelog.collector")

MAX_THREADS = 64
WEBHOOK_PERIOD = 2.0


@dataclass(slots=True)
class RunSummary:
    """What :meth:`Collector.run_once` did."""

    attestations: list[PollOutcome] = field(default_factory=list)
    receipts: list[ReceiptsOutcome] = field(default_factory=list)
    webhooks_delivered: int = 0

    @property
    def errors(self) -> list[str]:
        out = [f"{o.node}: {o.error.kind}: {o.error.message}" for o in self.attestations if o.error]
        out += [
            f"{o.node} receipts: {o.error.kind}: {o.error.message}"
            for o in self.receipts
            if o.error
        ]
        return out


def open_log(data: Path, database_url: str | None = None) -> LogLike:
    """Open the log in ``data`` (created by ``teelog log init``), its records in
    ``database_url`` (default: the log's own choice, see :mod:`teelog.log.location`)."""
    from teelog.log import Log

    return Log.open(data, database_url=database_url)


class Collector:
    """Polls the configured nodes into the log.

    ``log`` defaults to the log in ``config.data``; ``clock`` to the system clock (tests pin
    it to a fixture's verification time); ``verify`` and ``verify_signatures`` to
    ``teelog.attestation`` with the configured collateral. ``transport`` (an httpx transport)
    and ``webhook_backoff`` exist for tests.
    """

    def __init__(
        self,
        config: CollectorConfig,
        *,
        log: LogLike | None = None,
        clock: Clock | None = None,
        verify: Verify | None = None,
        verify_signatures: SignatureChecks | None = None,
        webhook_backoff: float = 5.0,
        webhook_transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.config = config
        self._owns_log = log is None
        self.log = log if log is not None else open_log(config.data, config.database)
        create_tables(self.log.engine)
        self.clock: Clock = clock or system_clock
        self._closers: list[Callable[[], None]] = []
        if verify is None:
            from .verification import ProcessVerifier, collateral_from_config, report_verifier

            if config.verify_processes > 0:
                processes = ProcessVerifier(config.collateral, config.verify_processes)
                self._closers.append(processes.close)
                verify = processes
            else:
                verify = report_verifier(collateral_from_config(config.collateral))
        if verify_signatures is None:
            from teelog.entries.verdict import receipt_signature_checks

            verify_signatures = receipt_signature_checks
        self.db = StateDB(self.log.engine)
        self.outbox = WebhookOutbox(
            self.log.engine,
            config.webhooks,
            clock=self.clock,
            backoff_base=webhook_backoff,
            transport=webhook_transport,
            db=self.db,
        )
        self.recorder = Recorder(self.log, verify, self.outbox, self.db)
        self._http: dict[str, NodeHTTP] = {}
        self.attestation_pollers: dict[str, AttestationPoller] = {}
        self.receipt_pollers: dict[str, ReceiptsPoller] = {}
        for node in config.nodes:
            http = NodeHTTP(node, cpu_gate=self.recorder.cpu_gate)
            self._http[node.name] = http
            self.attestation_pollers[node.name] = AttestationPoller(
                node, ReportClient(node, http), self.recorder, self.clock
            )
            if node.receipts:
                self.receipt_pollers[node.name] = ReceiptsPoller(
                    node,
                    ReceiptsClient(node, http),
                    self.log,
                    verify_signatures,
                    self.clock,
                    self.recorder.appender,
                    self.db,
                )
        self._scheduler: Any = None
        self._lock = threading.Lock()

    # -- one-shot -------------------------------------------------------------------------

    def _pool_size(self) -> int:
        if self.config.workers:
            return self.config.workers
        jobs = len(self.attestation_pollers) + len(self.receipt_pollers) + 1
        return max(2, min(MAX_THREADS, jobs))

    def run_once(self, *, force: bool = True) -> RunSummary:
        """Poll every node once (in parallel), then every receipts feed, then deliver due
        webhooks. ``force`` ignores backoff."""
        summary = RunSummary()
        with ThreadPoolExecutor(max_workers=self._pool_size()) as pool:
            summary.attestations = list(
                pool.map(lambda p: p.poll(force=force), self.attestation_pollers.values())
            )
            summary.receipts = list(
                pool.map(lambda p: p.poll(force=force), self.receipt_pollers.values())
            )
        summary.webhooks_delivered = self.outbox.deliver_due()
        return summary

    # -- scheduled ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the background scheduler (returns at once); :meth:`stop` ends it."""
        from apscheduler.executors.pool import ThreadPoolExecutor as APThreadPool
        from apscheduler.schedulers.background import BackgroundScheduler

        with self._lock:
            if self._scheduler is not None:
                raise RuntimeError("collector already started")
            scheduler = BackgroundScheduler(
                executors={"default": APThreadPool(self._pool_size())},
                job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
                timezone=UTC,
            )
            now = datetime.now(UTC)
            for name, poller in self.attestation_pollers.items():
                scheduler.add_job(
                    _guarded(poller.poll, f"attestation poll of {name}"),
                    "interval",
                    seconds=poller.node.interval,
                    id=f"attestation:{name}",
                    name=f"attestation poll of {name}",
                    next_run_time=now,
                )
            for name, rpoller in self.receipt_pollers.items():
                scheduler.add_job(
                    _guarded(rpoller.poll, f"receipts of {name}"),
                    "interval",
                    seconds=rpoller.node.receipts_interval,
                    id=f"receipts:{name}",
                    name=f"receipts of {name}",
                    # After the first attestation poll had its chance to vouch for the signer.
                    next_run_time=now + timedelta(seconds=min(1.0, rpoller.node.interval)),
                )
            scheduler.add_job(
                _guarded(self.outbox.deliver_due, "webhook delivery"),
                "interval",
                seconds=WEBHOOK_PERIOD,
                id="webhooks",
                name="webhook delivery",
                next_run_time=now,
            )
            scheduler.start()
            self._scheduler = scheduler

    def stop(self, *, wait: bool = True) -> None:
        """Stop the scheduler (waiting for running jobs unless ``wait=False``)."""
        with self._lock:
            scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            scheduler.shutdown(wait=wait)

    def close(self) -> None:
        """Stop; release the HTTP clients, verification workers and (if opened here) the log."""
        self.stop()
        for http in self._http.values():
            http.close()
        for close in self._closers:
            close()
        self._closers.clear()
        if self._owns_log and hasattr(self.log, "close"):
            self.log.close()  # the database connections; a log passed in stays open

    def __enter__(self) -> Collector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _guarded(job: Callable[[], Any], what: str) -> Callable[[], None]:
    """Run ``job``; log (never propagate) unexpected errors so the schedule keeps going."""

    def run() -> None:
        try:
            job()
        except Exception:
            logger.exception("%s failed", what)

    run.__name__ = what
    return run

"""Poll health and back-off: how a node's attestation poll and its receipts feed record a
success or a failure, and when each is tried again (docs/collector.md "Health and backoff").

Both are rows (``CollectorNode``, ``CollectorReceiptCursor``) with the same health fields
(``collector.models.PollHealth``); these functions are the one place that sets them.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from .clients import NodeError
from .config import NodeConfig
from .models import PollHealth


def backoff_delay(node: NodeConfig, failures: int, interval: float) -> float:
    """Seconds to wait after ``failures`` consecutive failures: the interval doubling from the
    second failure on, capped at ``max_backoff``, with ±10 % jitter so nodes do not align."""
    base = min(interval * 2 ** min(max(failures - 1, 0), 30), max(node.max_backoff, interval))
    return base * random.uniform(0.9, 1.1)


def record_success(row: PollHealth, now: datetime) -> None:
    """A poll succeeded at ``now`` (UTC): the failure count restarts, no back-off is due."""
    row.last_success_at = now
    row.consecutive_failures = 0
    row.next_attempt_at = None


def record_failure(
    row: PollHealth, exc: NodeError, now: datetime, node: NodeConfig, interval: float,
    *, at_least: float = 0.0,
) -> datetime:
    """A poll failed at ``now`` (UTC) with ``exc``; returns when to try again (back-off from
    ``interval``, and no sooner than ``at_least`` seconds)."""
    row.last_error = exc.message[:2000]
    row.last_error_kind = exc.kind
    row.last_error_at = now
    row.consecutive_failures += 1
    delay = max(backoff_delay(node, row.consecutive_failures, interval), at_least)
    row.next_attempt_at = now + timedelta(seconds=delay)
    return row.next_attempt_at

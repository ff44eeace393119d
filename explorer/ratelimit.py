"""A per-client token bucket, for the verify page (verification costs CPU; logging nothing).

Each client key (its IP address) has a bucket of ``rate`` tokens refilled continuously over
``per`` seconds; a request takes one token or is refused with the seconds to wait. Memory is
bounded: at most ``max_clients`` buckets are kept, full (idle) ones are forgotten first, as an
idle client's bucket would be full anyway. Per process: replicas each limit on their own.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class RateLimiter:
    """Allow ``rate`` requests per ``per`` seconds per key, with bursts up to ``rate``."""

    def __init__(
        self,
        rate: int,
        per: float = 60.0,
        *,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.per = per
        self.max_clients = max_clients
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last time)
        self._lock = threading.Lock()

    def _tokens(self, key: str, now: float) -> float:
        tokens, last = self._buckets.get(key, (float(self.rate), now))
        return min(float(self.rate), tokens + (now - last) * self.rate / self.per)

    def acquire(self, key: str) -> float:
        """Take a token for ``key``: 0.0 if allowed, else the seconds until one is available."""
        if self.rate <= 0:
            return math.inf
        with self._lock:
            now = self.clock()
            tokens = self._tokens(key, now)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                self._evict(now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) * self.per / self.rate

    def _evict(self, now: float) -> None:
        if len(self._buckets) <= self.max_clients:
            return
        full = [k for k in self._buckets if self._tokens(k, now) >= self.rate]
        for k in full:
            del self._buckets[k]
        while len(self._buckets) > self.max_clients:  # all busy: drop the stalest
            oldest = min(self._buckets, key=lambda k: self._buckets[k][1])
            del self._buckets[oldest]

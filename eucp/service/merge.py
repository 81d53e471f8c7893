"""Joins small concurrent calls for one workflow into one Update.

At 50 sightings a second, one Update each would queue behind Temporal's limit of 10 Updates in
flight per workflow, and each would pay its own ledger transaction and fan-out. Calls that
arrive while a send is under way wait for the next one and go together.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


@dataclass
class _Queue(Generic[In, Out]):
    waiting: list[tuple[In, asyncio.Future[Out]]] = field(default_factory=list)
    senders: int = 0


class Merger(Generic[In, Out]):
    """Sends the calls for a key in batches: at most `in_flight` sends per key at once, each
    with at most `max_weight` of the calls' `weight` (a call heavier than that goes alone)."""

    def __init__(
        self,
        send: Callable[[str, list[In]], Awaitable[Sequence[Out | BaseException]]],
        weight: Callable[[In], int],
        max_weight: int,
        in_flight: int = 2,
    ) -> None:
        self._send = send
        self._weight = weight
        self.max_weight = max_weight
        self.in_flight = in_flight
        self._queues: dict[str, _Queue[In, Out]] = {}
        self._senders: set[asyncio.Task[None]] = set()

    async def submit(self, key: str, call: In) -> Out:
        """Queues `call` and returns its own result once the batch it went in is answered."""
        queue = self._queues.setdefault(key, _Queue())
        future: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        queue.waiting.append((call, future))
        if queue.senders < self.in_flight:
            queue.senders += 1
            task = asyncio.create_task(self._drain(key, queue))
            self._senders.add(task)  # held until done: the loop keeps only weak references
            task.add_done_callback(self._senders.discard)
        return await asyncio.shield(future)  # a caller that gives up leaves the batch intact

    async def _drain(self, key: str, queue: _Queue[In, Out]) -> None:
        try:
            while queue.waiting:
                batch = self._take(queue)
                calls = [call for call, _ in batch]
                try:
                    results: Sequence[Out | BaseException] = await self._send(key, calls)
                except Exception as err:  # the whole send failed: every caller in it sees why
                    results = [err] * len(batch)
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():
                        continue
                    if isinstance(result, BaseException):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            queue.senders -= 1
            if not queue.senders and not queue.waiting:
                self._queues.pop(key, None)

    def _take(self, queue: _Queue[In, Out]) -> list[tuple[In, asyncio.Future[Out]]]:
        """The oldest calls up to `max_weight`, in order; always at least one."""
        taken, total = 0, 0
        for call, _ in queue.waiting:
            total += self._weight(call)
            if taken and total > self.max_weight:
                break
            taken += 1
        batch, queue.waiting[:] = queue.waiting[:taken], queue.waiting[taken:]
        return batch

"""The crisis's signals to its platforms' workflows, sent beside the protocol.

Awaiting a signal to each platform held the crisis for the server to apply them one by one
(tens of ms each, seconds under load), so a sighting burst queued behind its own fan-out. The
outbox keeps one sender per platform instead: a platform's messages arrive in the order they
were posted, and assignments that pile up while a signal is in flight go together in the next.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from eucp.protocol.clocks import SlaSettings
    from eucp.protocol.commands import OrderChange, WithdrawTasks
    from eucp.protocol.tasks import ContentItem

from workflows.effects import Effects
from workflows.platform import PlatformTasksWorkflow, platform_workflow_id

# past this, what goes inline and what one read returns are bounded in bytes, not only in items
BYTES_BOUNDED = "inline-items-bounded-in-bytes"


def size_of(items: list[ContentItem]) -> int:
    """The bytes `items` take in a payload (JSON, as the data converter writes them)."""
    return sum(len(item.model_dump_json()) for item in items)


@dataclass
class _Inline:
    """New items given in the signal, with the recorded decisions that admitted them (sent in
    their place when the items would pass the budget) and the items' size in bytes."""

    items: list[ContentItem]
    decision_ids: list[str]
    size: int


@dataclass
class _Recorded:
    """New items by reference: the recorded decisions that admitted them, and the bytes of
    every item those decisions admitted (what a read of them returns)."""

    decision_ids: list[str]
    size: int


@dataclass
class _Rejoin:
    """Back from a suspension: take the open content again."""


# new items to assign, given or by reference; a withdrawal; what became of an order; the
# clocks; a rejoin; None for "the incident is closed"
_Message = _Inline | _Recorded | WithdrawTasks | OrderChange | SlaSettings | _Rejoin | None


@dataclass
class _Queue:
    messages: list[_Message] = field(default_factory=list)
    sending: bool = False


class Outbox:
    """`merge_up_to` caps the items merged into one signal, `inline_bytes` the bytes of items
    in all the signals under way and of the items one read by reference returns."""

    def __init__(
        self, incident_id: str, effects: Effects, merge_up_to: int, inline_bytes: int
    ) -> None:
        self.incident_id = incident_id
        self.effects = effects
        self.merge_up_to = merge_up_to
        self.inline_bytes = inline_bytes
        self._queues: dict[str, _Queue] = {}
        self._bytes_under_way = 0

    def assign(
        self, platform_id: str, items: list[ContentItem], decision_ids: list[str], size: int
    ) -> None:
        """`items` in the signal, or by `decision_ids` if their `size` would pass the budget."""
        self._post(platform_id, _Inline(items, decision_ids, size))

    def assign_recorded(self, platform_id: str, decision_ids: list[str], size: int) -> None:
        self._post(platform_id, _Recorded(decision_ids, size))

    def withdraw(self, platform_id: str, cmd: WithdrawTasks) -> None:
        self._post(platform_id, cmd)

    def order_changed(self, platform_id: str, cmd: OrderChange) -> None:
        self._post(platform_id, cmd)

    def set_clocks(self, platform_id: str, sla: SlaSettings) -> None:
        self._post(platform_id, sla)

    def rejoin(self, platform_id: str) -> None:
        self._post(platform_id, _Rejoin())

    def finish(self, platform_id: str) -> None:
        self._post(platform_id, None)

    def _post(self, platform_id: str, message: _Message) -> None:
        queue = self._queues.setdefault(platform_id, _Queue())
        queue.messages.append(message)
        if not queue.sending:
            queue.sending = True
            self.effects.beside(self._send(platform_id, queue))

    async def _send(self, platform_id: str, queue: _Queue) -> None:
        handle = workflow.get_external_workflow_handle_for(
            PlatformTasksWorkflow.run, platform_workflow_id(self.incident_id, platform_id)
        )
        while queue.messages:
            first = queue.messages.pop(0)
            if isinstance(first, _Inline):
                batch = _Inline(list(first.items), list(first.decision_ids), first.size)
                while (
                    queue.messages
                    and isinstance(more := queue.messages[0], _Inline)
                    and len(batch.items) + len(more.items) <= self.merge_up_to
                ):
                    batch.items += more.items
                    batch.decision_ids += more.decision_ids
                    batch.size += more.size
                    queue.messages.pop(0)
                if self._bytes_under_way + batch.size > self.inline_bytes and workflow.patched(
                    BYTES_BOUNDED
                ):
                    await handle.signal(PlatformTasksWorkflow.assign_recorded, batch.decision_ids)
                    continue
                # counted until the server has the signal: those sent in one workflow task are
                # all under way together, so their sum bounds that task's completion
                self._bytes_under_way += batch.size
                try:
                    await handle.signal(PlatformTasksWorkflow.assign, batch.items)
                finally:
                    self._bytes_under_way -= batch.size
            elif isinstance(first, _Recorded):
                ids, size = list(first.decision_ids), first.size
                while (
                    queue.messages
                    and isinstance(more_ids := queue.messages[0], _Recorded)
                    and not (
                        size + more_ids.size > self.inline_bytes and workflow.patched(BYTES_BOUNDED)
                    )
                ):
                    ids += more_ids.decision_ids
                    size += more_ids.size
                    queue.messages.pop(0)
                await handle.signal(PlatformTasksWorkflow.assign_recorded, ids)
            elif first is None:
                await handle.signal(PlatformTasksWorkflow.finish)
            elif isinstance(first, OrderChange):
                await handle.signal(PlatformTasksWorkflow.order_changed, first)
            elif isinstance(first, _Rejoin):
                await handle.signal(PlatformTasksWorkflow.rejoin)
            elif isinstance(first, SlaSettings):
                await handle.signal(PlatformTasksWorkflow.set_clocks, first)
            else:
                await handle.signal(PlatformTasksWorkflow.withdraw, first)
        queue.sending = False

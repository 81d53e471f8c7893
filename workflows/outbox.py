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


@dataclass
class _Recorded:
    """New items by reference: the recorded decisions that admitted them."""

    decision_ids: list[str]


@dataclass
class _Rejoin:
    """Back from a suspension: take the open content again."""


# new items to assign, given or by reference; a withdrawal; None for "the incident is closed"
# what became of an order
_Message = (
    list[ContentItem] | _Recorded | WithdrawTasks | OrderChange | SlaSettings | _Rejoin | None
)


@dataclass
class _Queue:
    messages: list[_Message] = field(default_factory=list)
    sending: bool = False


class Outbox:
    """`merge_up_to` caps the items merged into one signal: every platform's signal may go in
    the same workflow task, whose completion Temporal takes up to 4 MB of."""

    def __init__(self, incident_id: str, effects: Effects, merge_up_to: int) -> None:
        self.incident_id = incident_id
        self.effects = effects
        self.merge_up_to = merge_up_to
        self._queues: dict[str, _Queue] = {}

    def assign(self, platform_id: str, items: list[ContentItem]) -> None:
        self._post(platform_id, items)

    def assign_recorded(self, platform_id: str, decision_ids: list[str]) -> None:
        self._post(platform_id, _Recorded(decision_ids))

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
            if isinstance(first, list):
                items = list(first)
                while (
                    queue.messages
                    and isinstance(more := queue.messages[0], list)
                    and len(items) + len(more) <= self.merge_up_to
                ):
                    items += more
                    queue.messages.pop(0)
                await handle.signal(PlatformTasksWorkflow.assign, items)
            elif isinstance(first, _Recorded):
                ids = list(first.decision_ids)
                while queue.messages and isinstance(more_ids := queue.messages[0], _Recorded):
                    ids += more_ids.decision_ids
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

"""The two side effects a workflow has: decisions written to the ledger before the workflow acts
on them, and notifications that run beside the protocol without holding it up."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.ledger import LedgerActivities, ReadItems, ReadOpenItems, RecordDecisions
    from activities.notify import NotifyActivities
    from activities.report import ReportActivities, WriteReport
    from eucp.protocol.decisions import Decision, DecisionKind
    from eucp.protocol.notifications import Notification, NotificationKind, Route
    from eucp.protocol.participants import Actor
    from eucp.protocol.state import Counters
    from eucp.protocol.tasks import ContentItem

# The ledger must eventually take every decision: retry without limit, backing off.
LEDGER_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10)
)
# A receiver may be down for a while; 4xx answers are final (non-retryable errors).
NOTIFY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
)
BACKUP_ON_FAILURE = "backup-contact-on-failed-delivery"
# the open content read in pages of up to READ_BYTES: at 10,000 items, or 1,000 URLs of 2,048
# characters, all of it was more than the 2 MB Temporal takes of one activity's result
OPEN_ITEMS_PAGED = "open-items-read-in-pages"
READ_BYTES = 1_000_000


class Draft:
    """A decision before it has an id and a time: those come from the workflow."""

    __slots__ = ("actor", "inputs", "kind", "reason")

    def __init__(
        self, actor: Actor, kind: DecisionKind, reason: str | None = None, **inputs: Any
    ) -> None:
        self.actor = actor
        self.kind = kind
        self.reason = reason
        self.inputs = inputs


class Effects:
    """Writes decisions and sends notifications with ids that are stable under replay.

    `scope` separates the id spaces of an incident's workflows (the crisis and each platform).
    """

    def __init__(
        self,
        incident_id: str,
        scope: str,
        counters: Counters,
        deliver_within: timedelta,
        exercise: bool = False,
    ) -> None:
        self.incident_id = incident_id
        self.exercise = exercise
        self.scope = scope
        self.counters = counters
        self.deliver_within = deliver_within
        self._deliveries: set[asyncio.Task[None]] = set()

    async def record(self, drafts: Sequence[Draft]) -> list[Decision]:
        """Writes the decisions in one ledger batch; returns once they are durable."""
        if not drafts:
            return []
        now = workflow.now()
        decisions = []
        for draft in drafts:
            self.counters.decisions += 1
            decisions.append(
                Decision(
                    decision_id=f"{self.incident_id}/{self.scope}/{self.counters.decisions}",
                    incident_id=self.incident_id,
                    actor=draft.actor,
                    kind=draft.kind,
                    reason=draft.reason,
                    inputs=draft.inputs,
                    at=now,
                )
            )
        await workflow.execute_activity_method(
            LedgerActivities.record_decisions,
            RecordDecisions(decisions=decisions),
            # a batch takes milliseconds: a worker that died mid-write is noticed quickly
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=LEDGER_RETRY,
        )
        return decisions

    async def open_items(self) -> list[ContentItem]:
        """The content the incident's recorded decisions left open (`open_items`), read in
        pages of up to `READ_BYTES` (`OPEN_ITEMS_PAGED`)."""
        paged = workflow.patched(OPEN_ITEMS_PAGED)
        items: list[ContentItem] = []
        while True:
            read = await workflow.execute_activity_method(
                LedgerActivities.read_open_items,
                ReadOpenItems(
                    incident_id=self.incident_id,
                    after=items[-1].no if items else 0,
                    up_to_bytes=READ_BYTES if paged else None,
                ),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=LEDGER_RETRY,
            )
            items += read.items
            if not read.more:
                return items

    async def items_of(self, decision_ids: list[str]) -> list[ContentItem]:
        """The content items the given recorded decisions admitted, read from the ledger."""
        read = await workflow.execute_activity_method(
            LedgerActivities.read_items,
            ReadItems(decision_ids=decision_ids),
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=LEDGER_RETRY,
        )
        return read.items

    def notify(
        self,
        recipients: Iterable[str],
        kind: NotificationKind,
        summary: str,
        data: dict[str, Any] | None = None,
        route: Route = Route.primary,
    ) -> None:
        """Starts one delivery per recipient and returns at once; `settle` waits for them. In
        an exercise every notice says so, in its summary and its data."""
        if self.exercise:
            summary, data = f"EXERCISE: {summary}", {**(data or {}), "exercise": True}
        for recipient in recipients:
            self.counters.notices += 1
            notice = Notification(
                delivery_id=f"{self.incident_id}/{self.scope}/n{self.counters.notices}",
                recipient_id=recipient,
                kind=kind,
                incident_id=self.incident_id,
                summary=summary,
                data=data or {},
                route=route,
            )
            self.beside(self._deliver(notice))

    async def _deliver(self, notice: Notification) -> None:
        try:
            await workflow.execute_activity_method(
                NotifyActivities.notify,
                notice,
                schedule_to_close_timeout=self.deliver_within,
                start_to_close_timeout=timedelta(seconds=30),
                heartbeat_timeout=timedelta(seconds=5),  # a dead worker is noticed in seconds
                retry_policy=NOTIFY_RETRY,
            )
        except ActivityError as err:
            # A failed delivery never stops the protocol: the backup contact is told instead,
            # and the SLA ladder covers a silent platform.
            workflow.logger.warning(
                "notification failed",
                extra={"delivery_id": notice.delivery_id, "cause": str(err.cause)},
            )
            workflow.metric_meter().create_counter(
                "eucp_notification_failures", "notifications given up after their retries"
            ).add(1, {"kind": notice.kind, "route": notice.route})
            if notice.route is Route.primary and workflow.patched(BACKUP_ON_FAILURE):
                await self._deliver(
                    notice.model_copy(
                        update={
                            "route": Route.backup,
                            "delivery_id": f"{notice.delivery_id}/backup",
                        }
                    )
                )

    def report(self) -> None:
        """Starts `write_report` beside the protocol (the review report from the ledger);
        `settle` waits for it."""
        self.beside(self._report())

    async def _report(self) -> None:
        try:
            await workflow.execute_activity_method(
                ReportActivities.write_report,
                WriteReport(incident_id=self.incident_id),
                start_to_close_timeout=timedelta(minutes=5),
                retry_policy=RetryPolicy(initial_interval=timedelta(seconds=5), maximum_attempts=5),
            )
        except ActivityError as err:
            workflow.logger.warning("review report failed", extra={"cause": str(err.cause)})

    def beside(self, work: Coroutine[Any, Any, None]) -> None:
        """Runs `work` beside the protocol; `settle` waits for it."""
        task = asyncio.create_task(work)
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)

    async def settle(self) -> None:
        """Waits until no handler runs and no delivery is in flight, in one condition, so that
        nothing can start between the check and the run's end or continue-as-new."""
        await workflow.wait_condition(
            lambda: workflow.all_handlers_finished() and not self._deliveries
        )


async def sleep_until(due: datetime | None, wake: Callable[[], bool]) -> None:
    """Sleeps on one durable timer until `due`, or until `wake()` or a continue-as-new
    suggestion says there is work; returns at once when `due` has passed."""
    timeout = None if due is None else due - workflow.now()
    if timeout is not None and timeout <= timedelta(0):
        return
    with contextlib.suppress(TimeoutError):
        await workflow.wait_condition(
            lambda: wake() or workflow.info().is_continue_as_new_suggested(), timeout=timeout
        )

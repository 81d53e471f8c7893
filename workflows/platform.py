"""PlatformTasksWorkflow: one platform's takedown tasks in one incident, with their SLA clocks.

The platform reports on its tasks through the bulk `report` Update; the crisis assigns and
withdraws tasks by signal. One durable timer serves every clock: it sleeps until the earliest
deadline, so tasks assigned together cost one wake-up, not one timer each.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from eucp.protocol.clocks import SlaSettings, spoken
    from eucp.protocol.commands import OrderChange, ReportTasks, WithdrawTasks
    from eucp.protocol.deadlines import Deadline, deadline_of, missed_in_words, missed_reason
    from eucp.protocol.decisions import DecisionKind
    from eucp.protocol.notifications import NotificationKind, Route
    from eucp.protocol.participants import SYSTEM, Actor, ParticipantKind
    from eucp.protocol.refusal import Refusal, RefusalKind
    from eucp.protocol.state import (
        PlatformStart,
        PlatformSummary,
        ReportAnswer,
        TaskPage,
        TaskQuery,
    )
    from eucp.protocol.tasks import (
        DECISION_OF_OUTCOME,
        FIRST_LADDER,
        LADDER,
        RESOLVED,
        ContentItem,
        Outcome,
        RemovalOrder,
        Stage,
        Task,
        TaskState,
        apply_report,
        clarify,
        next_rung,
        reinstatement,
        task_id,
        triage,
        withdraw,
    )

from workflows.answers import remember, request_key
from workflows.effects import Draft, Effects, sleep_until
from workflows.errors import as_update_errors, moving

HOUR_RESTARTS = "tco-hour-restarts-on-resumption"
ESCALATION_LADDER = "escalation-ladder-with-backup"
LEGAL_OR_TARGET = "sla-deadline-legal-or-target"
REMOVAL_CONFIRMED = "annex-ii-removal-confirmed"  # checked times, the issuer told
CLARIFICATION = "annex-iii-clarification"  # the issuer asked, and its answer restarts the hour
PAUSE_ALERT = "pause-alert"  # a task paused too long alerts the coordinators and the issuer
ISSUER_TOLD = "annex-iii-issuer-told"  # the issuer hears of every pause of its order
REPORTS_ACROSS_RUNS = "report-answers-across-runs"  # a report's answer kept by its request id
# reports answered by request id carried to the next run: a batch's answer holds up to 1,000
# task ids, and the retries that reach the next run are the few in flight as it moved
REPORT_ANSWERS_KEPT = 20
# the tasks go to the next run packed: 10,000 of them passed the 2 MB of one payload
TASKS_PACKED = "tasks-packed-across-runs"
# a task_assigned notice tells of no more than about NOTICE_BYTES of identifiers: one notice
# of 1,000 URLs of 2,048 characters was 2.3 MB, more than an activity's input may be
NOTICES_BOUNDED = "task-notices-bounded"
NOTICE_BYTES = 1_000_000
PAGE_BYTES = 1_000_000  # of tasks in one answer of the `tasks` query
TASK_ENTRY_BYTES = 300  # a task's entry in the notice besides its identifier

_RUNG_DECISION = {
    Stage.reminded: DecisionKind.sla_breached,
    Stage.backup_told: DecisionKind.sla_backup_told,
    Stage.escalated: DecisionKind.sla_escalated,
}
_RUNG_NOTE = {
    Stage.reminded: "",
    Stage.backup_told: ", backup told",
    Stage.escalated: ", escalated",
}


def platform_workflow_id(incident_id: str, platform_id: str) -> str:
    return f"{incident_id}.platform.{platform_id}"


def _in_notices(new: list[Task]) -> list[list[Task]]:
    """New tasks as the `task_assigned` notices that tell of them: one, or with more than
    `NOTICE_BYTES` of identifiers, as many as keep each under it (`NOTICES_BOUNDED`)."""
    sizes = [len(t.identifier.model_dump_json()) + TASK_ENTRY_BYTES for t in new]
    if sum(sizes) <= NOTICE_BYTES or not workflow.patched(NOTICES_BOUNDED):
        return [new]
    notices: list[list[Task]] = [[]]
    size = 0
    for task, task_size in zip(new, sizes, strict=True):
        if notices[-1] and size + task_size > NOTICE_BYTES:
            notices.append([])
            size = 0
        notices[-1].append(task)
        size += task_size
    return notices


@workflow.defn
class PlatformTasksWorkflow:
    @workflow.init
    def __init__(self, start: PlatformStart) -> None:
        self.state = start.unpacked()
        self.effects = Effects(
            self.state.incident_id,
            self.state.platform_id,
            self.state.counters,
            self.state.sla.deliver_within,
            exercise=self.state.exercise,
        )
        self.lock = asyncio.Lock()
        self.wake = False
        self.moving = False
        # task id -> when its next escalation rung is due; kept up to date on every change
        # so a wake-up costs a look at the due tasks, not a walk over every clock
        self._dues: dict[str, datetime] | None = None

    @workflow.run
    async def run(self, start: PlatformStart) -> PlatformSummary:
        if start.items:
            async with self.lock:
                await self._assign(start.items)
        if start.decisions:
            await self.assign_recorded(start.decisions)
        if start.joined:
            await self.rejoin()
        while not self.state.finishing:
            self.wake = False
            await sleep_until(self._next_due(), lambda: self.wake or self.state.finishing)
            async with self.lock:
                await self._on_deadlines()
            if workflow.info().is_continue_as_new_suggested() and not self.state.finishing:
                self.moving = True  # new reports wait for the next run
                await self.effects.settle()
                if workflow.patched(TASKS_PACKED):
                    workflow.continue_as_new(PlatformStart.carrying(self.state))
                workflow.continue_as_new(PlatformStart(state=self.state))
        async with self.lock:
            await self._withdraw(SYSTEM, "incident closed", None)
        await self.effects.settle()
        summary = self.state.summary(workflow.now())
        # the crisis waits for every platform's final figures before it ends
        await workflow.get_external_workflow_handle(self.state.incident_id).signal(
            "platform_final", summary
        )
        return summary

    # ---- from the crisis ------------------------------------------------------------------

    @workflow.signal
    async def assign(self, items: list[ContentItem]) -> None:
        async with self.lock:
            await self._assign(items)

    @workflow.signal
    async def assign_recorded(self, decision_ids: list[str]) -> None:
        """New items by reference: the recorded decisions that admitted them. The items come
        from the ledger, so the crisis's history does not carry them to every platform."""
        async with self.lock:
            items = await self.effects.items_of(decision_ids)
            await self._assign([i for i in items if i.addressed_to(self.state.platform_id)])

    @workflow.signal
    async def rejoin(self) -> None:
        """Brought in mid-crisis, or back from a suspension: the open content meant for this
        platform, read from the ledger, becomes its tasks again; tasks withdrawn from it while
        their content stayed open are given anew."""
        async with self.lock:
            mine = [
                i for i in await self.effects.open_items() if i.addressed_to(self.state.platform_id)
            ]
            for item in mine:
                tid = task_id(self.state.platform_id, item.no)
                if (task := self.state.tasks.get(tid)) and task.state is TaskState.withdrawn:
                    del self.state.tasks[tid]  # resolved, so off the clocks already
            await self._assign(mine)

    @workflow.signal
    async def withdraw(self, cmd: WithdrawTasks) -> None:
        async with self.lock:
            await self._withdraw(cmd.actor, cmd.reason, cmd.items)

    @workflow.signal
    async def order_changed(self, cmd: OrderChange) -> None:
        async with self.lock:
            if cmd.change == "clarified":
                await self._clarified(cmd)
            else:
                await self._lost_effect(cmd)

    @workflow.signal
    def set_clocks(self, sla: SlaSettings) -> None:
        """The coordinators' new clocks: every open task's deadlines follow them from now."""
        self.state.sla = sla
        self.effects.deliver_within = sla.deliver_within
        self._dues = None  # rebuilt from every task on next use
        self.wake = True

    @workflow.signal
    def finish(self) -> None:
        self.state.finishing = True

    # ---- from the platform ----------------------------------------------------------------

    @workflow.update
    async def report(self, cmd: ReportTasks) -> ReportAnswer:
        """Applies the reports that fit their task's state and refuses the rest task by task
        (each with its rule), so one stale report does not hold back a platform's batch.
        A batch retried with its request id gets its first answer again, in any run."""
        key = request_key()
        if key is not None and key in self.state.answered:
            return self.state.answered[key].model_copy()
        async with self.lock:
            confirming = workflow.patched(REMOVAL_CONFIRMED)
            clarifying = workflow.patched(CLARIFICATION)
            # judged again under the lock: an earlier Update may have moved a task on
            sorted_ = triage(
                self.state.tasks,
                self.state.platform_id,
                cmd.reports,
                workflow.now() if confirming else None,
                clarifying,
            )
            answer = ReportAnswer(
                unchanged=[t.task_id for t in sorted_.repeats],
                refused={tid: str(err) for _, tid, err in sorted_.refused},
            )
            await self.effects.record(
                [
                    Draft(
                        cmd.actor,
                        DECISION_OF_OUTCOME[report.outcome],
                        report.reason,
                        task_id=task.task_id,
                        item_no=task.item_no,
                        cannot_comply=report.cannot_comply,
                        removed_at=report.removed_at.isoformat() if report.removed_at else None,
                    )
                    for task, report in sorted_.apply
                ]
            )
            now = workflow.now()
            for task, report in sorted_.apply:
                resumed = report.outcome is Outcome.resumed
                # the full hour restarts on resumption (TCO Art. 3(7)-(8)); v1 resumed the rest
                restart = resumed and workflow.patched(HOUR_RESTARTS)
                apply_report(task, report, now, restart_hour=restart)
                self._refresh(task)
                answer.changed.append(task.task_id)
                # a pause starts the clock of its alert (workflows before it slept on)
                paused = report.outcome is Outcome.cannot_comply and workflow.patched(PAUSE_ALERT)
                self.wake |= resumed or paused
            if confirming:
                self._confirm_removals([task for task, _ in sorted_.apply])
            if clarifying:
                stopped = [task for task, r in sorted_.apply if r.outcome is Outcome.cannot_comply]
                self._tell_issuers(stopped, every_pause=workflow.patched(ISSUER_TOLD))
            if key is not None and workflow.patched(REPORTS_ACROSS_RUNS):
                remember(self.state.answered, key, answer, REPORT_ANSWERS_KEPT)
            return answer

    def _tell_issuers(self, paused: list[Task], every_pause: bool) -> None:
        """Sends each issuing authority its addressee's Annex III form: a request for its
        clarification when the order is manifestly wrong or lacks what is needed (Art. 3(8)),
        and, with `every_pause`, word of force majeure or a de facto impossibility, which the
        addressee ends itself (Art. 3(7))."""
        asking: dict[str, list[Task]] = {}
        stopped: dict[str, list[Task]] = {}
        for task in paused:
            if not isinstance(task.basis, RemovalOrder) or not task.basis.issuer:
                continue
            if task.awaits_clarification:
                asking.setdefault(task.basis.issuer, []).append(task)
            elif every_pause:
                stopped.setdefault(task.basis.issuer, []).append(task)
        platform = self.state.platform_id
        for issuer, tasks in asking.items():
            self.effects.notify(
                [issuer],
                NotificationKind.clarification_requested,
                f"{platform} cannot execute {len(tasks)} task(s) of your removal order(s) "
                "without a clarification; the hour starts again when it arrives",
                self._annex_iii(tasks),
            )
        for issuer, tasks in stopped.items():
            self.effects.notify(
                [issuer],
                NotificationKind.order_paused,
                f"{platform} cannot comply with {len(tasks)} task(s) of your removal order(s) "
                "for now (force majeure or a de facto impossibility); the hour starts again "
                "when the reason has ceased",
                self._annex_iii(tasks),
            )

    def _annex_iii(self, tasks: list[Task]) -> dict[str, Any]:
        """What an Annex III form says of each task: the order, the reason and why."""
        return {
            "platform": self.state.platform_id,
            "tasks": [
                {
                    "task_id": task.task_id,
                    "reference": task.basis.reference,
                    "cannot_comply": task.cannot_comply,
                    "reason": task.reason,
                }
                for task in tasks
                if isinstance(task.basis, RemovalOrder)
            ],
        }

    def _confirm_removals(self, changed: list[Task]) -> None:
        """Tells each removal order's issuing authority of the removal and its time, without
        undue delay (TCO Art. 3(6), Annex II)."""
        by_issuer: dict[str, list[Task]] = {}
        for task in changed:
            basis = task.basis
            if isinstance(basis, RemovalOrder) and basis.issuer and task.removed_at:
                by_issuer.setdefault(basis.issuer, []).append(task)
        for issuer, removed in by_issuer.items():
            self.effects.notify(
                [issuer],
                NotificationKind.removal_confirmed,
                f"{self.state.platform_id} removed the content of {len(removed)} of your "
                "removal order(s)",
                {
                    "platform": self.state.platform_id,
                    "removals": [
                        {
                            "task_id": task.task_id,
                            "reference": task.basis.reference,
                            "identifier": task.identifier.model_dump(mode="json"),
                            "removed_at": task.removed_at,
                        }
                        for task in removed
                        if isinstance(task.basis, RemovalOrder)
                    ],
                },
            )

    @report.validator
    def _check_report(self, cmd: ReportTasks) -> None:
        """Refuses a batch from another participant, after the close, or with no report that
        could apply (so a wholly bad batch leaves no trace in history), and any batch while
        this run drains for continue-as-new (the service sends it again to the next run)."""
        key = request_key()
        if key is not None and key in self.state.answered:
            return  # answered before, maybe in an earlier run: the answer is given again
        with as_update_errors():
            if self.moving:
                raise moving()
            if (
                cmd.actor.kind is not ParticipantKind.platform
                or cmd.actor.id != self.state.platform_id
            ):
                raise Refusal(
                    "actor",
                    f"these tasks belong to platform {self.state.platform_id}; "
                    "a participant reports on its own tasks only",
                    RefusalKind.forbidden,
                )
            if self.state.finishing:
                raise Refusal("incident", "the incident is closed; its tasks take no more reports")
            sorted_ = triage(self.state.tasks, self.state.platform_id, cmd.reports, workflow.now())
            if sorted_.refused and not sorted_.apply and not sorted_.repeats:
                i, _, err = sorted_.refused[0]
                raise Refusal(f"reports[{i}].{err.field}", err.rule, err.kind)

    @workflow.query
    def summary(self) -> PlatformSummary:
        return self.state.summary(workflow.now())

    @workflow.query
    def tasks(self, query: TaskQuery) -> TaskPage:
        """Up to `query.limit` tasks from `query.offset`, and no more than `PAGE_BYTES` of
        them: 1,000 tasks of URLs of 2,048 characters were past the 2 MB Temporal takes of a
        query's answer. `next_offset` says where the next page starts."""
        chosen = [
            t for t in self.state.tasks.values() if query.state is None or t.state is query.state
        ]
        page: list[Task] = []
        size = 0
        for task in chosen[query.offset : query.offset + query.limit]:
            size += len(task.model_dump_json())
            if page and size > PAGE_BYTES:
                break
            page.append(task)
        end = query.offset + len(page)
        return TaskPage(
            tasks=page, total=len(chosen), next_offset=end if end < len(chosen) else None
        )

    # ---- effects --------------------------------------------------------------------------

    async def _assign(self, items: list[ContentItem]) -> None:
        now = workflow.now()
        new = []
        for item in items:
            tid = task_id(self.state.platform_id, item.no)
            if tid not in self.state.tasks:  # a repeated signal assigns nothing twice
                task = Task(
                    task_id=tid,
                    item_no=item.no,
                    platform_id=self.state.platform_id,
                    identifier=item.identifier,
                    basis=item.basis,
                    assigned_at=now,
                )
                self.state.tasks[tid] = task
                self._refresh(task)
                new.append(task)
        if not new:
            return
        self.wake = True
        for told in _in_notices(new):
            first = told[0]
            self.effects.notify(
                [self.state.platform_id],
                NotificationKind.task_assigned,
                f"{len(told)} new takedown task(s)",
                {
                    "acknowledge_by": first.ack_due(self.state.sla),
                    "act_by": first.act_due(self.state.sla),
                    "tasks": [
                        {
                            "task_id": t.task_id,
                            "identifier": t.identifier.model_dump(mode="json"),
                            "basis": t.basis.model_dump(mode="json"),
                            "act_by": t.act_due(self.state.sla),
                        }
                        for t in told
                    ],
                },
            )

    async def _withdraw(
        self, actor: Actor, reason: str, items: list[int] | None, tell: bool = True
    ) -> None:
        """Withdraws the open tasks of the given items (all items when None); `tell=False`
        when the caller tells the platform itself."""
        wanted = None if items is None else set(items)
        open_tasks = [
            t
            for t in self.state.tasks.values()
            if t.state not in RESOLVED and (wanted is None or t.item_no in wanted)
        ]
        if not open_tasks:
            return
        await self.effects.record(
            [
                Draft(
                    actor, DecisionKind.task_withdrawn, reason, task_id=t.task_id, item_no=t.item_no
                )
                for t in open_tasks
            ]
        )
        now = workflow.now()
        for t in open_tasks:
            withdraw(t, now, reason)
            self._refresh(t)
        if not tell:
            return
        self.effects.notify(
            [self.state.platform_id],
            NotificationKind.tasks_withdrawn,
            f"{len(open_tasks)} task(s) withdrawn: {reason}",
            {"tasks": [t.task_id for t in open_tasks], "reason": reason},
        )

    async def _clarified(self, cmd: OrderChange) -> None:
        """The issuer's clarification: the order's paused tasks run their hour again, in full
        (TCO Art. 3(8)); the platform is told in any case."""
        wanted = set(cmd.items)
        waiting = [
            t for t in self.state.tasks.values() if t.item_no in wanted and t.awaits_clarification
        ]
        await self.effects.record(
            [
                Draft(
                    cmd.actor,
                    DecisionKind.task_resumed,
                    "the issuing authority's clarification arrived (TCO Art. 3(8))",
                    task_id=t.task_id,
                    item_no=t.item_no,
                )
                for t in waiting
            ]
        )
        now = workflow.now()
        for t in waiting:
            clarify(t, now)
            self._refresh(t)
        self.wake = True
        self.effects.notify(
            [self.state.platform_id],
            NotificationKind.clarification_received,
            f"{cmd.actor.id} clarified removal order {cmd.reference}"
            + (f": the hour starts again for {len(waiting)} task(s)" if waiting else ""),
            {
                "order": cmd.reference,
                "clarification": cmd.text,
                "tasks": [
                    {"task_id": t.task_id, "act_by": t.act_due(self.state.sla)} for t in waiting
                ],
            },
        )

    async def _lost_effect(self, cmd: OrderChange) -> None:
        """An order found to infringe (TCO Art. 4): its open tasks are withdrawn and each
        removal becomes a reinstatement task, with its own clock."""
        wanted = set(cmd.items)
        mine = [t for t in self.state.tasks.values() if t.item_no in wanted and not t.reinstates]
        opened = [t for t in mine if t.state not in RESOLVED]
        removed = [
            t
            for t in mine
            if t.state is TaskState.removed and f"{t.task_id}-reinstate" not in self.state.tasks
        ]
        reason = f"order {cmd.reference} lost its legal effect: {cmd.text}"
        await self._withdraw(cmd.actor, reason, [t.item_no for t in opened], tell=False)
        now = workflow.now()
        fresh = [reinstatement(t, now) for t in removed]
        await self.effects.record(
            [
                Draft(
                    cmd.actor,
                    DecisionKind.reinstatement_assigned,
                    reason,
                    task_id=t.task_id,
                    item_no=t.item_no,
                    reinstates=t.reinstates,
                )
                for t in fresh
            ]
        )
        for t in fresh:
            self.state.tasks[t.task_id] = t
            self._refresh(t)
        self.wake = True
        self.effects.notify(
            [self.state.platform_id],
            NotificationKind.order_lost_effect,
            f"Removal order {cmd.reference} no longer has legal effect: "
            f"{len(opened)} task(s) withdrawn, {len(fresh)} to reinstate",
            {
                "order": cmd.reference,
                "reasons": cmd.text,
                "withdrawn": [t.task_id for t in opened],
                "reinstate": [
                    {
                        "task_id": t.task_id,
                        "identifier": t.identifier.model_dump(mode="json"),
                        "reinstate_by": t.act_due(self.state.sla),
                    }
                    for t in fresh
                ],
            },
        )

    # ---- SLA clocks -----------------------------------------------------------------------

    def _clocks(self, task: Task) -> list[tuple[str, datetime, Stage]]:
        """The task's running clocks."""
        return [(c, due, stage) for c, due, stage in task.clocks(self.state.sla) if due]

    def _ladder(self) -> tuple[Stage, ...]:
        return LADDER if workflow.patched(ESCALATION_LADDER) else FIRST_LADDER

    def _task_due(self, task: Task) -> datetime | None:
        later, ladder = self.state.sla.escalate_after, self._ladder()
        pause = task.pause_alert_due(self.state.sla) if workflow.patched(PAUSE_ALERT) else None
        return min(
            (
                *(
                    due + rung[1] * later
                    for _, due, stage in self._clocks(task)
                    if (rung := next_rung(stage, ladder)) is not None
                ),
                *([pause] if pause else []),
            ),
            default=None,
        )

    def _due_by_task(self) -> dict[str, datetime]:
        if self._dues is None:  # first use in this run: from the state carried over
            self._dues = {}
            for task in self.state.tasks.values():
                self._refresh(task)
        assert self._dues is not None
        return self._dues

    def _refresh(self, task: Task) -> None:
        """Call after any change to a task's state, clocks or rungs."""
        if self._dues is None:
            return  # built from every task on first use
        due = self._task_due(task)
        if due is None:
            self._dues.pop(task.task_id, None)
        else:
            self._dues[task.task_id] = due

    def _next_due(self) -> datetime | None:
        self._ladder()  # asks for the patch where the first version did, tasks or not
        return min(self._due_by_task().values(), default=None)

    async def _on_deadlines(self) -> None:
        """Climbs the escalation ladder for every missed deadline: the platform is reminded,
        then its backup contact told, then the coordinators (each rung recorded)."""
        now = workflow.now()
        await self._alert_pauses(now)
        later, ladder = self.state.sla.escalate_after, self._ladder()
        climbed: dict[Stage, list[tuple[Task, str, datetime, Deadline]]] = {
            rung: [] for rung in ladder
        }
        dues = self._due_by_task()
        for task in [t for tid, t in self.state.tasks.items() if tid in dues and dues[tid] <= now]:
            for clock, due, stage in self._clocks(task):
                step = next_rung(stage, ladder)
                if step is not None and now >= due + step[1] * later:
                    # a removal order's hour is the law (TCO Art. 3(3)); any other a target
                    climbed[step[0]].append((task, clock, due, deadline_of(clock, task.basis.kind)))
        if not any(climbed.values()):
            return
        # which deadline each was is recorded from this patch on; readers of older rows
        # derive it from the task's basis (eucp.protocol.deadlines.recorded_deadline)
        says_which = workflow.patched(LEGAL_OR_TARGET)
        await self.effects.record(
            [
                Draft(
                    SYSTEM,
                    _RUNG_DECISION[rung],
                    (missed_reason(clock, deadline) if says_which else f"{clock} deadline missed")
                    + _RUNG_NOTE[rung],
                    task_id=t.task_id,
                    clock=clock,
                    due=due.isoformat(),
                    **({"deadline": deadline.value} if says_which else {}),
                )
                for rung, marked in climbed.items()
                for t, clock, due, deadline in marked
            ]
        )
        for rung, marked in climbed.items():
            for task, clock, _, _ in marked:
                if clock == "acknowledge":
                    task.ack_stage = rung
                else:
                    task.act_stage = rung
                self._refresh(task)
        self.state.breaches += len(climbed[Stage.reminded])
        self.state.escalations += len(climbed[Stage.escalated])
        misses = workflow.metric_meter().create_counter(
            "eucp_sla_misses", "SLA ladder rungs reached"
        )
        for rung, marked in climbed.items():
            for deadline in Deadline:
                if n := sum(kind is deadline for _, _, _, kind in marked):
                    misses.add(
                        n,
                        {
                            "platform": self.state.platform_id,
                            "rung": rung.name,
                            "deadline": deadline.value,
                        },
                    )
        for rung, marked in climbed.items():
            if marked:
                self._tell_rung(
                    rung,
                    [
                        {"task_id": t.task_id, "clock": c, "due": d}
                        | ({"deadline": kind.value} if says_which else {})
                        for t, c, d, kind in marked
                    ],
                    says_which,
                )

    async def _alert_pauses(self, now: datetime) -> None:
        """Alerts the coordinators, and each removal order's issuer, of the tasks paused longer
        than `pause_alert_after` (recorded); once per pause."""
        if not workflow.patched(PAUSE_ALERT):
            return
        dues = self._due_by_task()
        long = [
            t
            for tid, t in self.state.tasks.items()
            if tid in dues and (due := t.pause_alert_due(self.state.sla)) and due <= now
        ]
        if not long:
            return
        await self.effects.record(
            [
                Draft(
                    SYSTEM,
                    DecisionKind.pause_alerted,
                    f"paused for more than {spoken(self.state.sla.pause_alert_after)} "
                    f"({t.cannot_comply})",
                    task_id=t.task_id,
                    item_no=t.item_no,
                )
                for t in long
            ]
        )
        for t in long:
            t.pause_alerted = True
            self._refresh(t)

        def described(tasks: list[Task]) -> dict[str, Any]:
            return {
                "platform": self.state.platform_id,
                "tasks": [
                    {
                        "task_id": t.task_id,
                        "cannot_comply": t.cannot_comply,
                        "paused_since": t.paused_since,
                        "reference": t.basis.reference
                        if isinstance(t.basis, RemovalOrder)
                        else None,
                    }
                    for t in tasks
                ],
            }

        platform, after = self.state.platform_id, spoken(self.state.sla.pause_alert_after)
        self.effects.notify(
            self.state.coordinators,
            NotificationKind.pause_alert,
            f"{platform}: {len(long)} task(s) paused for more than {after}",
            described(long),
        )
        by_issuer: dict[str, list[Task]] = {}
        for t in long:
            if isinstance(t.basis, RemovalOrder) and t.basis.issuer:
                by_issuer.setdefault(t.basis.issuer, []).append(t)
        for issuer, theirs in by_issuer.items():
            self.effects.notify(
                [issuer],
                NotificationKind.pause_alert,
                f"{platform}: {len(theirs)} task(s) of your removal order(s) paused for more "
                f"than {after}",
                described(theirs),
            )

    def _tell_rung(self, rung: Stage, tasks: list[dict[str, Any]], says_which: bool) -> None:
        """Tells whoever the rung names which task clocks were missed; with `says_which` (the
        LEGAL_OR_TARGET patch) each task says whether its deadline was legal or a target, and
        the summary counts the two apart."""
        platform = self.state.platform_id
        if says_which:
            legal = sum(t["deadline"] == Deadline.legal for t in tasks)
            missed = missed_in_words(legal, len(tasks) - legal)
        else:
            missed = f"{len(tasks)} task deadline(s) missed"
        if rung is Stage.reminded:
            self.effects.notify(
                [platform],
                NotificationKind.reminder,
                missed,
                {"tasks": tasks},
            )
        elif rung is Stage.backup_told:
            self.effects.notify(
                [platform],
                NotificationKind.escalation,
                f"{platform}: {missed} after a reminder",
                {"platform": platform, "tasks": tasks},
                route=Route.backup,
            )
        else:
            self.effects.notify(
                self.state.coordinators,
                NotificationKind.escalation,
                f"{platform}: {missed} after a reminder",
                {"platform": platform, "tasks": tasks},
            )

"""The incident rebuilt from its decisions alone: phase, tasks by state per platform, open SLA
breaches, removal orders with their scrutiny, as they stood at any moment. Pure, and built on
the protocol's own rules (the phase machine, the task state machine, the rules of an order
after its issue), so a decision those rules forbid is reported too."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from eucp.audit.models import Breach, IncidentState, OrderState
from eucp.protocol.actions import ACTIONS, check
from eucp.protocol.clocks import SlaSettings
from eucp.protocol.deadlines import recorded_deadline
from eucp.protocol.decisions import Decision, DecisionKind
from eucp.protocol.orders import (
    SCRUTINY_WINDOW,
    OrderRecord,
    ScrutinyDecision,
    ScrutinyOutcome,
    ScrutinyRequest,
    check_decision,
    check_request,
    issued_order,
    your_order,
)
from eucp.protocol.participants import ParticipantKind
from eucp.protocol.phases import Phase
from eucp.protocol.refusal import Refusal, RefusalKind
from eucp.protocol.state import PhaseChange
from eucp.protocol.tasks import (
    DECISION_OF_OUTCOME,
    ContentItem,
    RemovalOrder,
    Task,
    TaskReport,
    TaskState,
    apply_report,
    clarify,
    reinstatement,
    task_id,
    withdraw,
)

_ACTION_OF = {row.decision: action for action, row in ACTIONS.items()}
_OUTCOME_OF = {kind: outcome for outcome, kind in DECISION_OF_OUTCOME.items()}
_ANY_SLA = SlaSettings()
"""Only whether a clock runs matters here, not when it is due, so any durations will do."""
_ORDER_KINDS = frozenset(
    {
        DecisionKind.removal_order_issued,
        DecisionKind.scrutiny_requested,
        DecisionKind.scrutiny_decided,
        DecisionKind.order_clarified,
    }
)
"""Decisions of participants on a removal order (each an action of the table, too)."""
_ORDER_CLOCKS = frozenset({DecisionKind.scrutiny_window_closed, DecisionKind.scrutiny_overdue})
"""Decisions eucp records when an order's scrutiny clock runs out."""


@dataclass
class Reconstruction:
    """The state the decisions lead to, and the decisions the protocol's rules would refuse."""

    state: IncidentState
    problems: list[tuple[str, str]] = field(default_factory=list)
    """(decision id, what is wrong)"""


def in_order(decisions: Iterable[Decision]) -> list[Decision]:
    """Decisions by time; those made at the same moment keep the order given."""
    return sorted(decisions, key=lambda d: d.at)


def reconstruct(
    incident_id: str, decisions: Iterable[Decision], at: datetime | None = None
) -> Reconstruction:
    """Fold the decisions made up to `at` (all if None), in time order."""
    fold = _Fold(incident_id)
    for decision in in_order(decisions):
        if at is not None and decision.at > at:
            break
        fold.apply(decision)
    return Reconstruction(state=fold.state(at), problems=fold.problems)


class _Fold:
    """The running state of the reconstruction."""

    def __init__(self, incident_id: str) -> None:
        self.incident_id = incident_id
        self.count = 0
        self.title: str | None = None
        self.reporter: str | None = None
        self.phase: Phase | None = None
        self.phases: list[PhaseChange] = []
        self.reminded = False
        self.items = 0
        self.platforms: list[str] = []
        self.tasks: dict[str, dict[str, Task]] = {}
        self.breaches: dict[tuple[str, str, str], Breach] = {}
        self.orders: dict[str, OrderRecord] = {}
        self.clarified_at: dict[str, datetime] = {}
        """each order's latest clarification"""
        self.problems: list[tuple[str, str]] = []

    def apply(self, d: Decision) -> None:
        self.count += 1
        try:
            if d.kind is DecisionKind.reported:
                report = d.inputs.get("report", {})
                self.title, self.reporter = report.get("title"), d.actor.id
                self._move(d, Phase.reported)
            elif d.kind in _ACTION_OF:
                self._crisis_decision(d)
            elif d.kind in _ORDER_CLOCKS:
                self._order_clock(d)
            elif d.kind is DecisionKind.reinstatement_assigned:
                self._reinstatement(d)
            elif d.kind is DecisionKind.pause_alerted:
                self._pause_alert(d)
            elif d.kind in _OUTCOME_OF or d.kind is DecisionKind.task_withdrawn:
                self._task_decision(d)
            elif d.kind in (
                DecisionKind.sla_breached,
                DecisionKind.sla_backup_told,
                DecisionKind.sla_escalated,
            ):
                self._breach(d)
            elif d.kind in (DecisionKind.assessment_reminder, DecisionKind.assessment_escalated):
                self.reminded = True
        except (Refusal, ValidationError, KeyError, TypeError, ValueError) as err:
            self.problems.append((d.decision_id, f"{d.kind}: {err}"))

    def state(self, at: datetime | None) -> IncidentState:
        return IncidentState(
            incident_id=self.incident_id,
            at=at,
            decisions=self.count,
            title=self.title,
            reporter=self.reporter,
            phase=self.phase,
            phases=self.phases,
            assessment_overdue=self.reminded and self.phase in (Phase.reported, Phase.assessing),
            items=self.items,
            tasks={
                p: dict(Counter(t.state for t in self.tasks.get(p, {}).values()))
                for p in self.platforms
            },
            open_breaches=[b for key, b in self.breaches.items() if self._running(*key)],
            orders=[self._order_state(o) for o in self.orders.values()],
        )

    def _order_state(self, order: OrderRecord) -> OrderState:
        removed = {task_id(order.platform, no) for no in order.items}
        return OrderState(
            **order.model_dump(),
            reinstatements={
                t.task_id: t.state
                for t in self.tasks.get(order.platform, {}).values()
                if t.reinstates in removed
            },
        )

    # ---- crisis ---------------------------------------------------------------------------

    def _crisis_decision(self, d: Decision) -> None:
        action = _ACTION_OF[d.kind]
        if self.phase is None:
            raise Refusal("phase", "a decision before the incident was reported")
        try:
            check(self.phase, action, d.actor.kind, d.reason)
        except Refusal as refusal:  # recorded is recorded: follow it all the same
            self._problem(d, refusal)
        self._move(d, ACTIONS[action].to or self.phase)
        if d.kind is DecisionKind.activated:
            self.platforms = list(d.inputs["platforms"])
        if d.kind in (
            DecisionKind.activated,
            DecisionKind.content_added,
            DecisionKind.removal_order_issued,
            DecisionKind.sighting_reported,
        ):
            self._assign(d, d.inputs["items"])
        if d.kind in _ORDER_KINDS:
            self._order_decision(d)

    def _problem(self, d: Decision, refusal: Refusal) -> None:
        """A rule the decision breaks, though the fold follows it (recorded is recorded)."""
        self.problems.append((d.decision_id, f"{d.kind}: {refusal}"))

    def _move(self, d: Decision, to: Phase) -> None:
        if to is not self.phase:
            self.phase = to
            self.phases.append(PhaseChange(phase=to, at=d.at, by=d.actor.id, reason=d.reason))

    def _assign(self, d: Decision, items: list[Any]) -> None:
        """New items become tasks on the participating platforms they are addressed to (never
        the one that found them)."""
        for raw in items:
            item = ContentItem.model_validate(raw)
            self.items = max(self.items, item.no)
            for platform in self.platforms:
                if item.addressed_to(platform):
                    tasks = self.tasks.setdefault(platform, {})
                    tid = task_id(platform, item.no)
                    tasks.setdefault(
                        tid,
                        Task(
                            task_id=tid,
                            item_no=item.no,
                            platform_id=platform,
                            identifier=item.identifier,
                            basis=item.basis,
                            assigned_at=d.at,
                        ),
                    )

    # ---- removal orders after their issue (TCO Art. 3(8), Art. 4) ----------------------------

    def _order_decision(self, d: Decision) -> None:
        """An order issued, or a participant's decision on one: checked by the protocol's own
        rules (`eucp.protocol.orders`) and followed all the same, as recorded; a decision on
        an order no `removal_order_issued` issued before it cannot be followed."""
        if d.kind is DecisionKind.removal_order_issued:
            self._issue(d)
            return
        order = self._order(d)
        try:
            if d.kind is DecisionKind.scrutiny_requested:
                check_request(your_order(self.orders, order.reference, d.actor.id), d.at)
            elif d.kind is DecisionKind.scrutiny_decided:
                # the ledger keeps no country: the host State's authorities are those copied
                host = order.host_member_state if d.actor.id in order.copy_to else None
                check_decision(order, order.reference, d.actor.id, host, d.at)
            else:
                issued_order(self.orders, order.reference, d.actor.id)
        except Refusal as refusal:  # recorded is recorded: follow it all the same
            self._problem(d, refusal)
        if d.kind is DecisionKind.scrutiny_requested and order.request is None:
            decide_by = d.inputs.get("decide_by")
            order.request = ScrutinyRequest(
                by=d.actor.id,
                at=d.at,
                reason=d.reason or "",
                decide_by=decide_by if decide_by else d.at + SCRUTINY_WINDOW,
            )
        elif d.kind is DecisionKind.scrutiny_decided and (
            order.decision is None or order.awaits_decision
        ):
            order.decision = ScrutinyDecision(
                by=d.actor.id,
                at=d.at,
                outcome=ScrutinyOutcome(d.inputs["outcome"]),
                reasons=d.reason or "",
            )
        elif d.kind is DecisionKind.order_clarified:
            order.clarifications += 1
            self.clarified_at[order.reference] = d.at

    def _issue(self, d: Decision) -> None:
        """An order issued by an authority: kept by its reference, with the copy sent to the
        host State's authorities. Orders recorded before authorities issued them (no issuer,
        no platform) bind nobody in particular and have no scrutiny: they are not kept."""
        order = RemovalOrder.model_validate(d.inputs["order"])
        if order.platform is None or order.issuer is None:
            return
        same = self.orders.get(order.reference)
        if same is not None:
            raise Refusal(
                "order.reference",
                f"order {same.reference} was issued already, by {same.issuer} at "
                f"{same.received_at.isoformat()}: each order has a reference of its own",
            )
        items = [ContentItem.model_validate(raw).no for raw in d.inputs["items"]]
        kept = OrderRecord.of(order, items, d.at)
        kept.copy_to = [str(a) for a in d.inputs.get("copy_to", [])]
        self.orders[kept.reference] = kept

    def _order(self, d: Decision) -> OrderRecord:
        reference = str(d.inputs["order"])
        order = self.orders.get(reference)
        if order is None:
            raise Refusal("order", f"no removal_order_issued of reference {reference!r} before it")
        return order

    def _order_clock(self, d: Decision) -> None:
        """eucp's own record that an order's scrutiny window closed (72 hours from the copy,
        Art. 4(3)) or that a requested decision is overdue (72 hours from the request, Art.
        4(4)): never before its time, never once decided, once each."""
        order = self._order(d)
        if not order.cross_border:
            raise Refusal("order", f"order {order.reference} is domestic: it has no scrutiny")
        request = order.request
        if d.kind is DecisionKind.scrutiny_window_closed:
            if order.decision is not None:
                raise Refusal("order", f"order {order.reference} was scrutinised already")
            due, done = order.window_closes, order.window_closed
            what = f"the scrutiny window of order {order.reference} closed"
        elif request is None:
            raise Refusal("order", f"no scrutiny of order {order.reference} was requested")
        elif not order.awaits_decision:
            raise Refusal("order", f"the requested scrutiny of order {order.reference} was decided")
        else:
            due, done = request.decide_by, request.overdue
            what = f"the scrutiny of order {order.reference} was overdue"
        if done:
            raise Refusal("order", f"{what} already")
        if d.at < due:
            raise Refusal("at", f"recorded before its time, {due.isoformat()}")
        if request is None or d.kind is DecisionKind.scrutiny_window_closed:
            order.window_closed = True
        else:
            request.overdue = True

    # ---- tasks ----------------------------------------------------------------------------

    def _platform(self, d: Decision) -> str:
        """The platform whose workflow recorded a task decision (the decision id's scope)."""
        return (scope_and_number(self.incident_id, d.decision_id) or ("?", 0))[0]

    def _task(self, d: Decision) -> Task:
        platform = self._platform(d)
        task = self.tasks.get(platform, {}).get(d.inputs["task_id"])
        if task is None:
            if d.kind is DecisionKind.task_reinstated:
                rule = f"no reinstatement_assigned of {d.inputs['task_id']} on {platform} before it"
                raise Refusal("task_id", rule)
            raise Refusal("task_id", f"no task {d.inputs['task_id']} on {platform}")
        return task

    def _task_decision(self, d: Decision) -> None:
        task = self._task(d)
        if d.kind is DecisionKind.task_withdrawn:
            if not withdraw(task, d.at, d.reason or ""):
                raise Refusal("task_id", f"{task.task_id} was already {task.state}")
            return
        if d.kind is DecisionKind.task_resumed and d.actor.kind is ParticipantKind.member_state:
            self._clarified(task, d)
            return
        report = TaskReport(
            task_id=task.task_id,
            outcome=_OUTCOME_OF[d.kind],
            reason=d.reason,
            cannot_comply=d.inputs.get("cannot_comply"),
            removed_at=d.inputs.get("removed_at"),
        )
        apply_report(task, report, d.at)

    def _clarified(self, task: Task, d: Decision) -> None:
        """A pause ended by the issuing authority's clarification (Annex III, Art. 3(8)): by the
        task's own issuer, after an `order_clarified` of its order during the pause."""
        basis = task.basis
        issuer = basis.issuer if isinstance(basis, RemovalOrder) else None
        if issuer is None or d.actor.id != issuer:
            rule = (
                f"{task.task_id} resumes on a clarification of its order's issuing authority "
                f"({issuer or 'none: not an authority removal order'}), not of {d.actor.id}"
            )
            raise Refusal("actor", rule, RefusalKind.forbidden)
        assert isinstance(basis, RemovalOrder)
        clarified = self.clarified_at.get(basis.reference)
        paused = task.paused_since
        if clarified is None or (paused is not None and clarified < paused):
            rule = f"no order_clarified of order {basis.reference} while {task.task_id} was paused"
            self._problem(d, Refusal("actor", rule))
        if not clarify(task, d.at):
            raise Refusal(
                "task_id", f"{task.task_id} was not waiting for its issuer's clarification"
            )

    def _reinstatement(self, d: Decision) -> None:
        """A reinstatement task (TCO Art. 4(7)): of a task that was removed, whose order was
        found to infringe, once."""
        platform, removed_id = self._platform(d), str(d.inputs["reinstates"])
        removed = self.tasks.get(platform, {}).get(removed_id)
        if removed is None:
            raise Refusal("reinstates", f"no task {removed_id} on {platform} to reinstate")
        fresh = reinstatement(removed, d.at)
        if d.inputs["task_id"] != fresh.task_id:
            rule = (
                f"the reinstatement of {removed_id} is {fresh.task_id}, not {d.inputs['task_id']}"
            )
            raise Refusal("task_id", rule)
        if fresh.task_id in self.tasks[platform]:
            raise Refusal("task_id", f"{fresh.task_id} was assigned already")
        if removed.state is not TaskState.removed:
            rule = f"{removed_id} is {removed.state}, not removed: nothing to reinstate"
            self._problem(d, Refusal("reinstates", rule))
        basis = removed.basis
        order = self.orders.get(basis.reference) if isinstance(basis, RemovalOrder) else None
        if order is None or order.in_effect:
            reference = order.reference if order else "none issued by an authority"
            rule = f"the order of {removed_id} ({reference}) was not found to infringe (TCO Art. 4)"
            self._problem(d, Refusal("reinstates", rule))
        self.tasks[platform][fresh.task_id] = fresh  # recorded is recorded: follow it

    def _pause_alert(self, d: Decision) -> None:
        """A pause alerted: once per pause, while it lasts (how long it had lasted is the
        incident's setting, which the decisions do not say)."""
        task = self._task(d)
        if task.paused_since is None:
            raise Refusal("task_id", f"{task.task_id} is not paused")
        if task.pause_alerted:
            raise Refusal("task_id", f"the pause of {task.task_id} was alerted already")
        task.pause_alerted = True

    def _breach(self, d: Decision) -> None:
        task = self._task(d)
        key = (task.platform_id, task.task_id, str(d.inputs["clock"]))
        breach = self.breaches.setdefault(
            key,
            Breach(
                platform_id=key[0],
                task_id=key[1],
                clock=key[2],
                deadline=recorded_deadline(d.inputs, task.basis.kind),
                due=d.inputs.get("due"),
            ),
        )
        breach.backup_told |= d.kind is DecisionKind.sla_backup_told
        breach.escalated |= d.kind is DecisionKind.sla_escalated

    def _running(self, platform: str, tid: str, clock: str) -> bool:
        """Whether the clock still runs: the protocol's own rule (a due time exists)."""
        task = self.tasks[platform][tid]
        due = task.ack_due(_ANY_SLA) if clock == "acknowledge" else task.act_due(_ANY_SLA)
        return due is not None


def scope_and_number(incident_id: str, decision_id: str) -> tuple[str, int] | None:
    """(scope, n) of a decision id `{incident}/{scope}/{n}`, where scope is `crisis` or a
    platform id; None if it is not an id the workflows make."""
    prefix = f"{incident_id}/"
    scope, _, number = decision_id.removeprefix(prefix).rpartition("/")
    ok = decision_id.startswith(prefix) and scope and number.isdigit()
    return (scope, int(number)) if ok else None

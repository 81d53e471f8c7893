"""The incident rebuilt from its decisions alone: phase, the platforms taking part, tasks by
state per platform, open SLA breaches, removal orders with their scrutiny, the activation's
expiry and the clocks in force, as they stood at any moment. Pure, and built on the protocol's
own rules (the phase machine, the task state machine, the rules of an order after its issue),
so a decision those rules forbid is reported too; so is a decision of eucp's own clocks taken
before its time, by the clocks in force as the ledger recorded them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from eucp.audit.models import Breach, IncidentState, OrderState
from eucp.protocol.actions import ACTIONS, check
from eucp.protocol.clocks import SlaSettings, spoken
from eucp.protocol.deadlines import recorded_deadline
from eucp.protocol.decisions import Decision, DecisionKind
from eucp.protocol.incident import Assessment, LinkedProtocol, check_grounds
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
    open_items,
    reinstatement,
    task_id,
    withdraw,
)

_ACTION_OF = {row.decision: action for action, row in ACTIONS.items()}
_OUTCOME_OF = {kind: outcome for outcome, kind in DECISION_OF_OUTCOME.items()}
_ANY_SLA = SlaSettings()
"""Whether a clock runs needs no durations, so any will do; when a clock is due is judged by
the clocks in force, when the ledger records them."""
_RUNGS = frozenset(
    {DecisionKind.sla_breached, DecisionKind.sla_backup_told, DecisionKind.sla_escalated}
)
"""The rungs of a missed deadline's ladder, each recorded by the task's platform workflow."""
SIGNAL_GRACE = timedelta(minutes=1)
"""How long after a `clocks_set` a platform workflow may still run on the clocks it replaced:
the new ones reach it by a signal, after the crisis recorded them."""
_LASTING = frozenset(
    {DecisionKind.activated, DecisionKind.re_escalated, DecisionKind.activation_renewed}
)
"""Decisions that start an activation's period: their `expires` says when it lapses."""
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
        self.exercise = False
        self.reported_at: datetime | None = None
        self.clocks: SlaSettings | None = None
        """in force: as the report recorded them, and each `clocks_set` after it"""
        self.replaced: tuple[datetime, SlaSettings] | None = None
        """the latest `clocks_set`'s time and the clocks in force before it"""
        self.expires: datetime | None = None
        """when the activation under way lapses unless renewed"""
        self.suspended: list[str] = []
        self.linked: list[LinkedProtocol] = []
        self.course: list[Decision] = []
        """the crisis's decisions so far: which content is still open"""
        self.assessment: Assessment | None = None

    def apply(self, d: Decision) -> None:
        self.count += 1
        try:
            if d.kind is DecisionKind.reported:
                self._reported(d)
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
            elif d.kind in _RUNGS:
                self._breach(d)
            elif d.kind in (DecisionKind.assessment_reminder, DecisionKind.assessment_escalated):
                self._assessment_reminder(d)
            elif d.kind is DecisionKind.activation_expiring:
                self._expiring(d)
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
            exercise=self.exercise,
            platforms=list(self.platforms),
            suspended=list(self.suspended),
            clocks=self.clocks,
            activation_expires=self.expires,
            linked=list(self.linked),
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

    def _reported(self, d: Decision) -> None:
        """The report: the incident's title, whether it is an exercise, and the clocks in force
        from the start (recorded since the clocks were; None before)."""
        report = d.inputs.get("report", {})
        self.title, self.reporter = report.get("title"), d.actor.id
        self.exercise = bool(report.get("exercise", False))
        self.reported_at = d.at
        recorded = d.inputs.get("clocks")
        self.clocks = SlaSettings.model_validate(recorded) if recorded is not None else None
        self._move(d, Phase.reported)

    def _crisis_decision(self, d: Decision) -> None:
        action = _ACTION_OF[d.kind]
        if self.phase is None:
            raise Refusal("phase", "a decision before the incident was reported")
        try:
            check(self.phase, action, d.actor.kind, d.reason)
        except Refusal as refusal:  # recorded is recorded: follow it all the same
            self._problem(d, refusal)
        self.course.append(d)
        if d.kind is DecisionKind.assessed:
            recorded = d.inputs.get("assessment")
            self.assessment = Assessment.model_validate(recorded) if recorded else None
        elif d.kind is DecisionKind.activated and "override" in d.inputs:
            self._grounds(d)
        if d.kind is DecisionKind.de_escalated:
            self._de_escalation(d)  # judged by the activation's period before it ends
        self._move(d, ACTIONS[action].to or self.phase)
        if d.kind is DecisionKind.activated:
            self.platforms = list(d.inputs["platforms"])
        if d.kind in _LASTING:
            expires = d.inputs.get("expires")
            self.expires = datetime.fromisoformat(expires) if expires else None
        if d.kind in (
            DecisionKind.activated,
            DecisionKind.content_added,
            DecisionKind.removal_order_issued,
            DecisionKind.sighting_reported,
        ):
            self._assign(d, d.inputs["items"])
        if d.kind in _ORDER_KINDS:
            self._order_decision(d)
        if d.kind is DecisionKind.clocks_set:
            clocks = SlaSettings.model_validate(d.inputs["clocks"])
            self.replaced = (d.at, self.clocks) if self.clocks is not None else None
            self.clocks = clocks
        elif d.kind is DecisionKind.platform_joined:
            self._join(d)
        elif d.kind is DecisionKind.platform_suspended:
            self._suspend(d)
        elif d.kind is DecisionKind.protocol_linked:
            self.linked.append(LinkedProtocol.model_validate(d.inputs["link"]))

    # ---- the activation's period and eucp's own clocks ----------------------------------

    def _grounds(self, d: Decision) -> None:
        """An activation recorded with its grounds (`override`, since they were) rests on the
        latest assessment with all five criteria met, or on the override it records."""
        override = d.inputs["override"]
        try:
            check_grounds(self.assessment, str(override) if override is not None else None)
        except Refusal as refusal:  # recorded is recorded: follow it all the same
            self._problem(d, refusal)

    def _de_escalation(self, d: Decision) -> None:
        """A de-escalation ends the activation's period. eucp records one itself only when the
        activation lapses (`lapsed`), and only once the period's `expires` has passed."""
        lapsed = d.inputs.get("lapsed") is True
        by_eucp = d.actor.kind is ParticipantKind.system
        expires, self.expires = self.expires, None
        if not by_eucp:
            if lapsed:
                rule = f"only eucp records a lapse, not {d.actor.id} ({d.actor.kind})"
                self._problem(d, Refusal("inputs.lapsed", rule, RefusalKind.forbidden))
            return
        if not lapsed:
            rule = "eucp de-escalates only when the activation lapses unrenewed (lapsed)"
            self._problem(d, Refusal("inputs.lapsed", rule))
        elif self.phase is not Phase.active:
            pass  # the phase machine names it already
        elif expires is None:
            rule = "no activation or renewal before it recorded when the activation lapses"
            self._problem(d, Refusal("at", rule))
        elif d.at < expires:
            rule = (
                f"the activation lapses at {expires.isoformat()} unless renewed: "
                "a lapse recorded before its time, not after it expired"
            )
            self._problem(d, Refusal("at", rule))

    def _expiring(self, d: Decision) -> None:
        """eucp's reminder that the activation lapses: while it is active, about the period in
        force, no earlier than `renewal_reminder` before it lapses."""
        if self.phase is not Phase.active or self.expires is None:
            raise Refusal("phase", f"no activation under way to lapse (phase {self.phase})")
        said = d.inputs.get("expires")
        if said is not None and datetime.fromisoformat(said) != self.expires:
            rule = f"the activation lapses at {self.expires.isoformat()}, not {said}"
            raise Refusal("inputs.expires", rule)
        if self.clocks is not None:
            before = self.clocks.renewal_reminder
            said = f"renewal_reminder {spoken(before)} before it lapses"
            self._not_early(d, self.expires - before, said)

    def _assessment_reminder(self, d: Decision) -> None:
        """An activation decision overdue: reminded at `assessment_within` after the report,
        escalated `escalate_after` after that, by the clocks in force."""
        self.reminded = True
        if self.clocks is None or self.reported_at is None:
            return
        due = self.reported_at + self.clocks.assessment_within
        said = f"assessment_within {spoken(self.clocks.assessment_within)}"
        if d.kind is DecisionKind.assessment_escalated:
            due += self.clocks.escalate_after
            said += f" + escalate_after {spoken(self.clocks.escalate_after)}"
        self._not_early(d, due, said + " after the report")

    def _not_early(self, d: Decision, due: datetime, said: str) -> None:
        """A decision of eucp's own clocks is never recorded before it is due by the clocks in
        force, which `said` names with their durations in words."""
        if d.at < due:
            rule = f"due at {due.isoformat()} by the clocks in force ({said}): recorded too early"
            self._problem(d, Refusal("at", rule))

    # ---- who takes part --------------------------------------------------------------------

    def _join(self, d: Decision) -> None:
        """A platform brought in mid-crisis, or back from its suspension: the content still
        open is its tasks from now (its workflow reads it from the ledger); a task withdrawn
        from it before is given anew."""
        platform = str(d.inputs["platform"])
        back = platform in self.suspended
        if platform in self.platforms and not back:
            self._problem(d, Refusal("platform", f"{platform} takes part already"))
        elif d.inputs.get("back") is not None and bool(d.inputs["back"]) != back:
            was = "was" if back else "was not"
            rule = f"back is {d.inputs['back']}, but {platform} {was} suspended"
            self._problem(d, Refusal("inputs.back", rule))
        if back:
            self.suspended.remove(platform)
        elif platform not in self.platforms:
            self.platforms.append(platform)
        tasks = self.tasks.setdefault(platform, {})
        for item in open_items(self.course):
            if not item.addressed_to(platform):
                continue
            tid = task_id(platform, item.no)
            old = tasks.get(tid)
            if old is not None and old.state is not TaskState.withdrawn:
                continue
            for key in [k for k in self.breaches if k[:2] == (platform, tid)]:
                del self.breaches[key]  # its clocks start again
            tasks[tid] = self._task_of(item, platform, d.at)

    def _suspend(self, d: Decision) -> None:
        """A platform's participation suspended: given nothing until it is brought back (its
        open tasks are withdrawn by its own workflow's decisions)."""
        platform = str(d.inputs["platform"])
        if platform not in self.platforms:
            raise Refusal("platform", f"{platform} does not take part in this takedown")
        if platform in self.suspended:
            raise Refusal("platform", f"{platform} is suspended already")
        self.suspended.append(platform)

    def _problem(self, d: Decision, refusal: Refusal) -> None:
        """A rule the decision breaks, though the fold follows it (recorded is recorded)."""
        self.problems.append((d.decision_id, f"{d.kind}: {refusal}"))

    def _move(self, d: Decision, to: Phase) -> None:
        if to is not self.phase:
            self.phase = to
            self.phases.append(PhaseChange(phase=to, at=d.at, by=d.actor.id, reason=d.reason))

    def _assign(self, d: Decision, items: list[Any]) -> None:
        """New items become tasks on the participating platforms they are addressed to (never
        the one that found them, nor one suspended)."""
        for raw in items:
            item = ContentItem.model_validate(raw)
            self.items = max(self.items, item.no)
            for platform in self.platforms:
                if item.addressed_to(platform) and platform not in self.suspended:
                    tasks = self.tasks.setdefault(platform, {})
                    tid = task_id(platform, item.no)
                    if tid not in tasks:
                        tasks[tid] = self._task_of(item, platform, d.at)

    @staticmethod
    def _task_of(item: ContentItem, platform: str, at: datetime) -> Task:
        return Task(
            task_id=task_id(platform, item.no),
            item_no=item.no,
            platform_id=platform,
            identifier=item.identifier,
            basis=item.basis,
            assigned_at=at,
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
        """A pause alerted: once per pause, while it lasts, once it has lasted the clocks'
        `pause_alert_after` (when the ledger records the clocks in force)."""
        task = self._task(d)
        if task.paused_since is None:
            raise Refusal("task_id", f"{task.task_id} is not paused")
        if task.pause_alerted:
            raise Refusal("task_id", f"the pause of {task.task_id} was alerted already")
        if self.clocks is not None:
            paused = task.paused_since
            due = self._platform_due(d, lambda clocks: paused + clocks.pause_alert_after)
            if due is not None:
                said = f"pause_alert_after {spoken(self.clocks.pause_alert_after)} paused"
                self._not_early(d, due, said)
        task.pause_alerted = True

    def _breach(self, d: Decision) -> None:
        task = self._task(d)
        key = (task.platform_id, task.task_id, str(d.inputs["clock"]))
        self._rung_due(d, task, key)
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

    def _rung_due(self, d: Decision, task: Task, key: tuple[str, str, str]) -> None:
        """A rung of a missed deadline's ladder, never before its time by the clocks in force:
        the reminder at the deadline, the backup contact `escalate_after` later, the
        coordinators `escalate_after` after that (right after the reminder's in the first
        ladder, which had no backup rung)."""
        if self.clocks is None:
            return
        clock = key[2]
        earlier = self.breaches.get(key)
        steps = {
            DecisionKind.sla_breached: 0,
            DecisionKind.sla_backup_told: 1,
            DecisionKind.sla_escalated: 2 if earlier is not None and earlier.backup_told else 1,
        }[d.kind]

        def rung(clocks: SlaSettings) -> datetime | None:
            due = task.ack_due(clocks) if clock == "acknowledge" else task.act_due(clocks)
            return None if due is None else due + steps * clocks.escalate_after

        due = self._platform_due(d, rung)
        if due is None or d.at >= due:
            return  # on time; or the clock was not running, which the task decisions show
        within = "acknowledge_within" if clock == "acknowledge" else "act_within"
        length: timedelta = getattr(self.clocks, within)
        after = f" + {steps} x escalate_after {spoken(self.clocks.escalate_after)}" if steps else ""
        said = f"{within} {spoken(length)}{after}, for the {clock} deadline of {task.task_id}"
        self._not_early(d, due, said)

    def _platform_due(
        self, d: Decision, due_by: Callable[[SlaSettings], datetime | None]
    ) -> datetime | None:
        """When a platform workflow's decision is due by the clocks in force; by the clocks a
        change replaced, when those allow it and the change was recorded under `SIGNAL_GRACE`
        before it (the workflow had not heard of it yet)."""
        assert self.clocks is not None
        due = due_by(self.clocks)
        if due is None or d.at >= due or self.replaced is None:
            return due
        changed_at, before = self.replaced
        earlier = due_by(before)
        late_news = d.at - changed_at < SIGNAL_GRACE
        return earlier if late_news and earlier is not None and d.at >= earlier else due

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

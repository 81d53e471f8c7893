"""The incident rebuilt from its decisions alone: phase, tasks by state per platform, open SLA
breaches, as they stood at any moment. Pure, and built on the protocol's own rules (the phase
machine and the task state machine), so a decision those rules forbid is reported too."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from eucp.audit.models import Breach, IncidentState
from eucp.protocol.actions import ACTIONS, check
from eucp.protocol.clocks import SlaSettings
from eucp.protocol.deadlines import recorded_deadline
from eucp.protocol.decisions import Decision, DecisionKind
from eucp.protocol.phases import Phase
from eucp.protocol.refusal import Refusal
from eucp.protocol.state import PhaseChange
from eucp.protocol.tasks import (
    DECISION_OF_OUTCOME,
    ContentItem,
    Task,
    TaskReport,
    apply_report,
    task_id,
    withdraw,
)

_ACTION_OF = {row.decision: action for action, row in ACTIONS.items()}
_OUTCOME_OF = {kind: outcome for outcome, kind in DECISION_OF_OUTCOME.items()}
_ANY_SLA = SlaSettings()
"""Only whether a clock runs matters here, not when it is due, so any durations will do."""


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
        )

    # ---- crisis ---------------------------------------------------------------------------

    def _crisis_decision(self, d: Decision) -> None:
        action = _ACTION_OF[d.kind]
        if self.phase is None:
            raise Refusal("phase", "a decision before the incident was reported")
        try:
            check(self.phase, action, d.actor.kind, d.reason)
        except Refusal as refusal:  # recorded is recorded: follow it all the same
            self.problems.append((d.decision_id, f"{d.kind}: {refusal}"))
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

    # ---- tasks ----------------------------------------------------------------------------

    def _task(self, d: Decision) -> Task:
        platform = (scope_and_number(self.incident_id, d.decision_id) or ("?", 0))[0]
        task = self.tasks.get(platform, {}).get(d.inputs["task_id"])
        if task is None:
            raise Refusal("task_id", f"no task {d.inputs['task_id']} on {platform}")
        return task

    def _task_decision(self, d: Decision) -> None:
        task = self._task(d)
        if d.kind is DecisionKind.task_withdrawn:
            if not withdraw(task, d.at, d.reason or ""):
                raise Refusal("task_id", f"{task.task_id} was already {task.state}")
            return
        report = TaskReport(
            task_id=task.task_id,
            outcome=_OUTCOME_OF[d.kind],
            reason=d.reason,
            cannot_comply=d.inputs.get("cannot_comply"),
            removed_at=d.inputs.get("removed_at"),
        )
        apply_report(task, report, d.at)

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

"""Takedown tasks: one per (identifier, platform), the legal basis they rest on, the platform's
responses and the task state machine with its SLA clocks. Pure: no I/O, no clock reads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import IntEnum, StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from eucp.protocol.clocks import SlaSettings
from eucp.protocol.decisions import Decision, DecisionKind
from eucp.protocol.identifiers import AnyIdentifier, ContentIdentifier, HashIdentifier
from eucp.protocol.participants import COUNTRY_PATTERN, ID_PATTERN
from eucp.protocol.refusal import Refusal, RefusalKind


class VoluntaryReferral(BaseModel):
    """An EUCP task the platform weighs under its own terms; it may decline with a reason."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["voluntary"] = "voluntary"


class OrderDetails(BaseModel):
    """A removal order as its issuing authority sends it: the Annex I fields but the issuing
    Member State, which is the authority's own (from the registry, never from the body)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    issuing_authority: str = Field(min_length=1, max_length=200)
    addressee: str = Field(
        min_length=1, max_length=200, description="the provider or its legal representative"
    )
    platform: str = Field(
        pattern=ID_PATTERN, description="the addressee's participant id: the task is its alone"
    )
    contact_point: str = Field(min_length=1, max_length=200)
    host_member_state: str = Field(pattern=COUNTRY_PATTERN)
    issued_at: AwareDatetime
    reference: str = Field(min_length=1, max_length=100)
    reasons: str = Field(min_length=1, max_length=4000, description="Art. 2(7) reasons")
    confidential: bool = Field(
        default=False, description="Art. 11(3): the content provider is not told, for now"
    )

    def issued_by(self, country: str, issuer: str) -> RemovalOrder:
        """The order as every layer keeps it, issued by the authority `issuer` of `country`."""
        return RemovalOrder(issuing_member_state=country, issuer=issuer, **self.model_dump())


class RemovalOrder(OrderDetails):
    """A TCO Regulation removal order with its Annex I fields: binding, one hour from receipt.
    Orders recorded before authorities issued them lack `platform` and `issuer`."""

    kind: Literal["removal_order"] = "removal_order"
    issuing_member_state: str = Field(pattern=COUNTRY_PATTERN)
    platform: str | None = Field(  # type: ignore[assignment]  # None in orders recorded before
        default=None,
        pattern=ID_PATTERN,
        description="the addressee's participant id: the order is a task for it alone (Art. 3)",
    )
    issuer: str | None = Field(
        default=None,
        pattern=ID_PATTERN,
        description="the issuing authority's participant id: told of the removal (Annex II)",
    )
    received_at: AwareDatetime | None = Field(
        default=None, description="receipt by the provider; the hour runs from here"
    )


LegalBasis = Annotated[VoluntaryReferral | RemovalOrder, Field(discriminator="kind")]


class ContentItem(BaseModel):
    """An identifier accepted into the incident, numbered in arrival order."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    no: int = Field(ge=1)
    identifier: ContentIdentifier
    basis: LegalBasis = VoluntaryReferral()
    source: str = Field(description="who brought it: the coordinator or the sighting platform")
    addressees: list[str] | None = Field(
        default=None,
        description="the platforms it is a task for; every participating platform if none",
    )

    def addressed_to(self, platform_id: str) -> bool:
        """Whether the item is a task for `platform_id`: never for the platform that found it,
        and, when it names its addressees, for them alone."""
        return self.source != platform_id and (
            self.addressees is None or platform_id in self.addressees
        )


# decisions whose `items` input admitted content, and those that took it back
ADMITTING = frozenset(
    {
        DecisionKind.activated,
        DecisionKind.content_added,
        DecisionKind.sighting_reported,
        DecisionKind.removal_order_issued,
    }
)


def open_items(decisions: Sequence[Decision]) -> list[ContentItem]:
    """The content an incident's decisions (in order) left open: admitted, and neither
    withdrawn by a coordinator nor under an order that lost its legal effect. A platform
    brought in later is given those meant for it."""
    items: dict[int, ContentItem] = {}
    of_order: dict[str, list[int]] = {}
    for d in decisions:
        if d.kind in ADMITTING:
            admitted = [ContentItem.model_validate(i) for i in d.inputs.get("items", [])]
            items |= {item.no: item for item in admitted}
            if d.kind is DecisionKind.removal_order_issued:
                of_order[str(d.inputs["order"]["reference"])] = [i.no for i in admitted]
        elif d.kind is DecisionKind.content_withdrawn:
            for no in d.inputs.get("items", []):
                items.pop(no, None)
        elif d.kind is DecisionKind.de_escalated and d.inputs.get("withdraw_open_tasks"):
            items.clear()  # every open task was withdrawn: nothing before stays open
        elif d.kind is DecisionKind.scrutiny_decided and d.inputs.get("outcome") == "infringes":
            for no in of_order.get(str(d.inputs.get("order")), []):
                items.pop(no, None)
    return [items[no] for no in sorted(items)]


def addressees_of(
    identifier: AnyIdentifier, basis: LegalBasis | None, named: Sequence[str] | None
) -> list[str] | None:
    """Who an identifier is a task for: a removal order's addressee, else the platform the
    identifier is bound to (an item, or a URL with its platform), else the platforms named
    (a voluntary referral to some), else None: every participating platform."""
    if isinstance(basis, RemovalOrder) and basis.platform is not None:
        return [basis.platform]
    bound = None if isinstance(identifier, HashIdentifier) else identifier.platform
    if bound is not None:
        return [bound]
    return list(named) if named else None


class TaskState(StrEnum):
    assigned = "assigned"
    acknowledged = "acknowledged"
    cannot_comply = "cannot_comply"
    removed = "removed"
    not_found = "not_found"
    declined = "declined"
    withdrawn = "withdrawn"
    reinstated = "reinstated"  # a reinstatement task done (TCO Art. 4(7))


RESOLVED = frozenset(
    {
        TaskState.removed,
        TaskState.not_found,
        TaskState.declined,
        TaskState.withdrawn,
        TaskState.reinstated,
    }
)


class Outcome(StrEnum):
    """What a platform reports about one task."""

    acknowledged = "acknowledged"
    removed = "removed"
    not_found = "not_found"
    declined = "declined"
    cannot_comply = "cannot_comply"
    resumed = "resumed"
    reinstated = "reinstated"  # the content of an order that lost effect is back (Art. 4(7))


# The decision each accepted platform report records in the ledger.
DECISION_OF_OUTCOME: dict[Outcome, DecisionKind] = {
    Outcome.acknowledged: DecisionKind.task_acknowledged,
    Outcome.removed: DecisionKind.task_removed,
    Outcome.not_found: DecisionKind.task_not_found,
    Outcome.declined: DecisionKind.task_declined,
    Outcome.cannot_comply: DecisionKind.task_cannot_comply,
    Outcome.resumed: DecisionKind.task_resumed,
    Outcome.reinstated: DecisionKind.task_reinstated,
}


class CannotComplyReason(StrEnum):
    """TCO Regulation Annex III: why an order cannot be executed (the hour pauses)."""

    force_majeure = "force_majeure"
    technical_impossibility = "technical_impossibility"
    manifest_error = "manifest_error"
    insufficient_information = "insufficient_information"


# Annex III reasons the issuing authority answers: the hour starts again on its clarification
# (Art. 3(8)), not when the platform says so; for the others the platform resumes (Art. 3(7)).
ASKS_CLARIFICATION = frozenset(
    {CannotComplyReason.manifest_error, CannotComplyReason.insufficient_information}
)


class TaskReport(BaseModel):
    """One platform report about one task."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    task_id: str = Field(min_length=1, max_length=120)
    outcome: Outcome
    reason: str | None = Field(default=None, max_length=4000)
    cannot_comply: CannotComplyReason | None = None
    removed_at: AwareDatetime | None = None

    @model_validator(mode="after")
    def _fields_for_outcome(self) -> TaskReport:
        if self.outcome is Outcome.declined and not (self.reason and self.reason.strip()):
            raise ValueError("reason: declining a task requires a reason")
        if self.outcome is Outcome.cannot_comply and self.cannot_comply is None:
            raise ValueError("cannot_comply: name the Annex III reason")
        return self


class Stage(IntEnum):
    """How far an SLA clock's miss has gone (values are stored: new rungs get new numbers)."""

    on_time = 0
    reminded = 1
    escalated = 2
    backup_told = 3


# The escalation ladder: the platform is reminded at the deadline, its backup contact is told
# `escalate_after` later, the coordinators another `escalate_after` later.
LADDER = (Stage.on_time, Stage.reminded, Stage.backup_told, Stage.escalated)
# The first version's ladder, kept for workflows started before the backup rung existed.
FIRST_LADDER = (Stage.on_time, Stage.reminded, Stage.escalated)


def next_rung(stage: Stage, ladder: tuple[Stage, ...]) -> tuple[Stage, int] | None:
    """The rung after `stage`, and how many `escalate_after` periods past the deadline it is
    due; None at the top of the ladder."""
    i = ladder.index(stage)
    return (ladder[i + 1], i) if i + 1 < len(ladder) else None


class Task(BaseModel):
    """One takedown task, owned by its platform's workflow."""

    task_id: str
    item_no: int
    platform_id: str
    identifier: ContentIdentifier
    basis: LegalBasis
    state: TaskState = TaskState.assigned
    assigned_at: datetime
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    removed_at: datetime | None = None
    reason: str | None = None
    paused_since: datetime | None = None
    paused_for: timedelta = timedelta(0)
    hour_restarted_at: datetime | None = None
    ack_stage: Stage = Stage.on_time
    act_stage: Stage = Stage.on_time
    cannot_comply: CannotComplyReason | None = Field(
        default=None, description="the Annex III reason of the pause under way"
    )
    pause_alerted: bool = Field(default=False, description="the pause under way was alerted")
    reinstates: str | None = Field(
        default=None,
        description="the removed task whose content this task reinstates (TCO Art. 4(7))",
    )

    @property
    def awaits_clarification(self) -> bool:
        """Paused on a removal order until its issuing authority clarifies it (Annex III)."""
        return (
            self.paused_since is not None
            and self.cannot_comply in ASKS_CLARIFICATION
            and isinstance(self.basis, RemovalOrder)
            and self.basis.issuer is not None
        )

    @property
    def clock_start(self) -> datetime:
        """The one hour runs from receipt of a removal order, else (and for a reinstatement)
        from assignment."""
        if (
            self.reinstates is None
            and isinstance(self.basis, RemovalOrder)
            and self.basis.received_at is not None
        ):
            return self.basis.received_at
        return self.assigned_at

    def ack_due(self, sla: SlaSettings) -> datetime | None:
        if self.acknowledged_at is not None or self.state in RESOLVED:
            return None
        return self.assigned_at + sla.acknowledge_within

    def act_due(self, sla: SlaSettings) -> datetime | None:
        """None while resolved or paused. TCO Art. 3(7)-(8): once the reason ceases (or the
        clarification arrives) the hour starts to run again, in full."""
        if self.state in RESOLVED or self.paused_since is not None:
            return None
        return (self.hour_restarted_at or self.clock_start) + sla.act_within + self.paused_for

    def clocks(self, sla: SlaSettings) -> list[tuple[str, datetime | None, Stage]]:
        """Each clock of the task with its due time (None when not running) and its rung: a
        reinstatement's act clock is `reinstate`, a target (no law gives it an hour)."""
        act = "reinstate" if self.reinstates is not None else "act"
        return [
            ("acknowledge", self.ack_due(sla), self.ack_stage),
            (act, self.act_due(sla), self.act_stage),
        ]

    def pause_alert_due(self, sla: SlaSettings) -> datetime | None:
        """When the pause under way has lasted too long, unless already alerted."""
        if self.paused_since is None or self.pause_alerted:
            return None
        return self.paused_since + sla.pause_alert_after


def ranges(numbers: Sequence[int]) -> str:
    """1, 2, 3, 5 -> "1-3, 5"."""
    spans: list[list[int]] = []
    for number in sorted(numbers):
        if spans and number == spans[-1][1] + 1:
            spans[-1][1] = number
        else:
            spans.append([number, number])
    return (
        ", ".join(str(first) if first == last else f"{first}-{last}" for first, last in spans)
        or "none"
    )


def task_id(platform_id: str, item_no: int) -> str:
    return f"{platform_id}-{item_no:06d}"


def reinstatement(task: Task, now: datetime) -> Task:
    """The task of reinstating a removed task's content, once its order lost effect (TCO Art.
    4(7)): the same content and order, its own id and clocks."""
    return Task(
        task_id=f"{task.task_id}-reinstate",
        item_no=task.item_no,
        platform_id=task.platform_id,
        identifier=task.identifier,
        basis=task.basis,
        assigned_at=now,
        reinstates=task.task_id,
    )


# outcome -> (states it may follow, state it leads to)
_TRANSITIONS: dict[Outcome, tuple[frozenset[TaskState], TaskState]] = {
    Outcome.acknowledged: (frozenset({TaskState.assigned}), TaskState.acknowledged),
    Outcome.removed: (
        frozenset({TaskState.assigned, TaskState.acknowledged, TaskState.cannot_comply}),
        TaskState.removed,
    ),
    Outcome.not_found: (
        frozenset({TaskState.assigned, TaskState.acknowledged, TaskState.cannot_comply}),
        TaskState.not_found,
    ),
    Outcome.declined: (
        frozenset({TaskState.assigned, TaskState.acknowledged}),
        TaskState.declined,
    ),
    Outcome.cannot_comply: (
        frozenset({TaskState.assigned, TaskState.acknowledged}),
        TaskState.cannot_comply,
    ),
    Outcome.resumed: (frozenset({TaskState.cannot_comply}), TaskState.acknowledged),
    Outcome.reinstated: (
        frozenset({TaskState.assigned, TaskState.acknowledged}),
        TaskState.reinstated,
    ),
}
# what a reinstatement task takes; every other task takes every outcome but `reinstated`
REINSTATEMENT_OUTCOMES = frozenset({Outcome.acknowledged, Outcome.reinstated})


def is_repeat(task: Task, report: TaskReport) -> bool:
    """A report that changes nothing: a repeat of the state reached, or a late acknowledgement."""
    if report.outcome is Outcome.acknowledged:
        return task.state is not TaskState.assigned
    return _TRANSITIONS[report.outcome][1] is task.state and report.outcome is not Outcome.resumed


def check_report(
    task: Task, report: TaskReport, now: datetime | None = None, clarifying: bool = True
) -> TaskState:
    """The task's next state, or Refusal naming the rule. Repeats are checked first. With
    `now`, a removal's time is checked too (`check_removal_time`). `clarifying=False` keeps
    the rule of workflows started before the issuer's clarification ended such a pause."""
    if now is not None:
        check_removal_time(task, report, now)
    if task.reinstates is not None and report.outcome not in REINSTATEMENT_OUTCOMES:
        rule = f"task {task.task_id} reinstates removed content: report acknowledged or reinstated"
        raise Refusal("outcome", rule)
    if task.reinstates is None and report.outcome is Outcome.reinstated:
        rule = f"task {task.task_id} is a removal: reinstated is for reinstatement tasks"
        raise Refusal("outcome", rule)
    if clarifying and report.outcome is Outcome.resumed and task.awaits_clarification:
        rule = (
            f"task {task.task_id} awaits the issuing authority's clarification: the hour starts "
            "again when it arrives (TCO Art. 3(8)); remove the content or wait"
        )
        raise Refusal("outcome", rule)
    if isinstance(task.basis, RemovalOrder) and report.outcome is Outcome.declined:
        raise Refusal(
            "outcome",
            "a removal order cannot be declined, only challenged (TCO Art. 9); "
            "report cannot_comply with an Annex III reason instead",
        )
    allowed, to = _TRANSITIONS[report.outcome]
    if task.state not in allowed:
        raise Refusal(
            "outcome",
            f"task {task.task_id} is {task.state}; {report.outcome} is allowed from "
            + ", ".join(sorted(allowed)),
        )
    return to


def check_removal_time(task: Task, report: TaskReport, now: datetime) -> None:
    """A removal's time (Annex II: "the time of removal") is not in the future, and a removal
    order's is not before the order was received."""
    if report.removed_at is None:
        return
    if report.removed_at > now:
        rule = f"{report.removed_at.isoformat()} is in the future (now {now.isoformat()})"
        raise Refusal("removed_at", rule, RefusalKind.invalid)
    if isinstance(task.basis, RemovalOrder) and report.removed_at < task.clock_start:
        rule = (
            f"{report.removed_at.isoformat()} is before the order was received "
            f"({task.clock_start.isoformat()}): report the removal the order asked for"
        )
        raise Refusal("removed_at", rule, RefusalKind.invalid)


@dataclass
class Triage:
    """A bulk report sorted task by task: what applies, what repeats, what is refused."""

    apply: list[tuple[Task, TaskReport]] = field(default_factory=list)
    repeats: list[Task] = field(default_factory=list)
    # (index in the batch, task id as sent, the rule it breaks)
    refused: list[tuple[int, str, Refusal]] = field(default_factory=list)


def triage(
    tasks: Mapping[str, Task],
    platform_id: str,
    reports: Sequence[TaskReport],
    now: datetime | None = None,
    clarifying: bool = True,
) -> Triage:
    """Sorts a platform's reports against its tasks. An unknown id and another platform's id
    get the same refusal, so guessing ids reveals nothing; a task named twice is refused the
    second time, since each report is judged against the state before the batch."""
    out = Triage()
    seen: set[str] = set()
    for i, report in enumerate(reports):
        task = tasks.get(report.task_id)
        try:
            if task is None:
                raise Refusal(
                    "task_id",
                    f"no task {report.task_id!r} for {platform_id}",
                    RefusalKind.not_found,
                )
            if report.task_id in seen:
                raise Refusal(
                    "task_id",
                    f"{report.task_id} appears twice; send one report per task",
                    RefusalKind.invalid,
                )
            seen.add(report.task_id)
            if is_repeat(task, report):
                out.repeats.append(task)
            else:
                check_report(task, report, now, clarifying)
                out.apply.append((task, report))
        except Refusal as err:
            out.refused.append((i, report.task_id, err))
    return out


def apply_report(task: Task, report: TaskReport, now: datetime, restart_hour: bool = True) -> None:
    """Applies an accepted report: state, times and the removal-order clock.

    `restart_hour=False` keeps the first version's rule (the hour resumed where it paused) for
    tasks of workflows started before the change.
    """
    to = check_report(task, report, clarifying=False)  # checked by the caller
    if task.acknowledged_at is None:
        task.acknowledged_at = now  # any answer shows the task was received
    if report.outcome is Outcome.cannot_comply:
        task.paused_since = now
        task.cannot_comply = report.cannot_comply
        task.pause_alerted = False
    if task.paused_since is not None and report.outcome is not Outcome.cannot_comply:
        if restart_hour and report.outcome is Outcome.resumed:
            task.hour_restarted_at = now
            task.paused_for = timedelta(0)  # a full hour: no earlier pause carries over
        else:
            task.paused_for += now - task.paused_since
        task.paused_since = None
        task.cannot_comply = None
    if to in RESOLVED:
        task.resolved_at = now
        task.removed_at = (report.removed_at or now) if to is TaskState.removed else None
    if report.reason:
        task.reason = report.reason
    task.state = to


def withdraw(task: Task, now: datetime, reason: str) -> bool:
    """Withdraws an open task; False when it was already resolved."""
    if task.state in RESOLVED:
        return False
    task.state = TaskState.withdrawn
    task.resolved_at = now
    task.reason = reason
    task.paused_since = None
    return True


def clarify(task: Task, now: datetime) -> bool:
    """Ends a pause that awaited the issuer's clarification: the hour starts again, in full,
    now (TCO Art. 3(8)). False when the task was not waiting for it."""
    if not task.awaits_clarification:
        return False
    task.state = TaskState.acknowledged
    task.hour_restarted_at = now
    task.paused_for = timedelta(0)
    task.paused_since = None
    task.cannot_comply = None
    return True

"""The review report's figures, computed from an incident's ledger rows and nothing else.

Pure: no I/O, no clock. Every figure is exact arithmetic on the decisions' recorded times
(`Decision.at`), so an auditor holding the rows can recompute the report offline. How each
figure is defined is in `DEFINITIONS`, which the rendered report repeats.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

from eucp.protocol.deadlines import Deadline, recorded_deadline
from eucp.protocol.decisions import DecisionKind, LedgerRow
from eucp.protocol.tasks import ContentItem
from eucp.protocol.tasks import task_id as make_task_id
from eucp.runtime.ledger import verify_chain

ONE_HOUR = timedelta(hours=1)

ITEM_KINDS = frozenset(
    {
        DecisionKind.activated,
        DecisionKind.content_added,
        DecisionKind.removal_order_issued,
        DecisionKind.sighting_reported,
    }
)
"""Decisions that create content items; their inputs carry `items`, each with its `no`."""
ACT_KINDS: dict[DecisionKind, str] = {
    DecisionKind.task_removed: "removed",
    DecisionKind.task_not_found: "not_found",
    DecisionKind.task_declined: "declined",
}
"""A platform's answers that resolve a task: the task is acted on."""
ANSWER_KINDS = frozenset(
    {DecisionKind.task_acknowledged, DecisionKind.task_cannot_comply, *ACT_KINDS}
)
"""A platform's answers; the first one acknowledges the task."""
SLA_RUNGS: dict[DecisionKind, str] = {
    DecisionKind.sla_breached: "breached",
    DecisionKind.sla_backup_told: "backup_told",
    DecisionKind.sla_escalated: "escalated",
}
"""The escalation ladder of a missed deadline: platform reminded, backup told, coordinators."""
TASK_KINDS = frozenset(
    {*ANSWER_KINDS, *SLA_RUNGS, DecisionKind.task_resumed, DecisionKind.task_withdrawn}
)
"""Task-level decisions; every other kind is incident level and goes in the timeline."""
PHASE_OF: dict[DecisionKind, str] = {
    DecisionKind.reported: "reported",
    DecisionKind.assessed: "assessing",
    DecisionKind.activated: "active",
    DecisionKind.not_activated: "not_activated",
    DecisionKind.de_escalated: "de_escalating",
    DecisionKind.re_escalated: "active",
    DecisionKind.review_started: "review",
    DecisionKind.closed: "closed",
}

DEFINITIONS: dict[str, str] = {
    "times": (
        "Every time is a decision's recorded time in the ledger (`at`, UTC), and every duration"
        " is the exact difference of two recorded times, to the microsecond; nothing is rounded"
        " before it is reported."
    ),
    "report to activation": (
        "time of the first `activated` decision minus the time of the `reported` decision"
        " (report to decision: the same up to `activated` or `not_activated`)."
    ),
    "activation length": (
        "first `activated` decision to the first `de_escalated` decision. Active periods run"
        " from `activated` or `re_escalated` to the next `de_escalated`; time active is their"
        " sum (none while a period is still open); re-escalations counts `re_escalated`."
    ),
    "items": (
        "content items numbered by the crisis (`items` in `activated`, `content_added` and"
        " `sighting_reported` inputs). Duplicates and low-quality PDQ hashes dropped are the sums"
        " of the `duplicates` and `low_quality` inputs of the decisions that record them."
    ),
    "task": (
        "one per (item, platform), id `{platform}-{item_no:06d}`: items of `activated` and"
        " `content_added` go to every participating platform (the `platforms` of `activated`),"
        " items of `sighting_reported` to every participating platform except the reporter;"
        " an item that names its `addressees` goes to those alone."
    ),
    "task start": "the time of the decision that created the task's item.",
    "time to acknowledge": (
        "from the task start to the platform's first answer: `task_acknowledged`, or an outcome"
        " (`task_removed`, `task_not_found`, `task_declined`, `task_cannot_comply`), which implies"
        " acknowledgement. Tasks never answered are left out."
    ),
    "time to act": (
        "from the task start to the `task_removed`, `task_not_found` or `task_declined` decision"
        " (the time eucp recorded the report, not the `removed_at` a platform may state). Pauses"
        " for cannot-comply are not subtracted and removal orders are timed from the task start."
        " Tasks not acted on (open, or withdrawn by the crisis) are left out."
    ),
    "percentiles": (
        "nearest rank: of n values sorted ascending, the p-th percentile is the value of rank"
        " ceil(p/100 * n), counting from 1. The median is the 50th percentile (for an even n the"
        " lower of the two middle values) and p90 the 90th; max is the largest value. Each is a"
        " time actually observed."
    ),
    "acted within one hour": (
        "tasks acted on at most 60 minutes after their start, out of the tasks that had their"
        " full hour: every task acted on, and every other task whose hour ran out (start + 60 min"
        " at or before the last recorded decision) before any withdrawal. Tasks withdrawn within"
        " their hour, or still within it when the report was made, are not counted."
    ),
    "SLA breaches and escalations": (
        "counts of the decisions on the escalation ladder of a missed deadline, by clock"
        " (`acknowledge` or `act`): `sla_breached` (the deadline passed, the platform reminded),"
        " `sla_backup_told` (its backup contact told) and `sla_escalated` (the coordinators"
        " told). The deadlines follow the incident's SLA settings, pauses included."
    ),
    "legal deadlines and targets": (
        "a missed deadline is legal when it is a removal order's hour to act (TCO Regulation"
        " (EU) 2021/784, Art. 3(3)), and a target otherwise: every acknowledge deadline, and the"
        " act deadline of a voluntary referral, are the protocol's own times, and missing one"
        " breaks no law. Each `sla_breached` decision says which in its `deadline` input; rows"
        " recorded before that input existed are read from the clock and the legal basis of the"
        " task's item (`basis.kind` in the decision that created it), and as a target when the"
        " task's item is not in the rows. Legal deadlines missed and targets missed count the"
        " `sla_breached` decisions of each."
    ),
    "timeline": "every incident-level decision; task-level ones are summed up per platform.",
}


class _Ordered(Protocol):
    def __lt__(self, other: Any, /) -> bool: ...


_T = TypeVar("_T", bound=_Ordered)


def nearest_rank(values: Iterable[_T], percent: int) -> _T:
    """The `percent`-th percentile by nearest rank: sorted ascending, rank ceil(p/100 * n)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    if not 0 < percent <= 100:
        raise ValueError("percent must be in (0, 100]")
    rank = max(1, math.ceil(Fraction(percent, 100) * len(ordered)))
    return ordered[rank - 1]


class Figures(BaseModel):
    """Base of the figure models: frozen, durations serialised as seconds in JSON."""

    model_config = ConfigDict(frozen=True, ser_json_timedelta="float")


class DurationStats(Figures):
    """Count, nearest-rank median and p90, and max of a set of durations."""

    count: int
    median: timedelta | None = None
    p90: timedelta | None = None
    max: timedelta | None = None


def duration_stats(values: Sequence[timedelta]) -> DurationStats:
    """The statistics of `values`; all None when there are none."""
    if not values:
        return DurationStats(count=0)
    return DurationStats(
        count=len(values),
        median=nearest_rank(values, 50),
        p90=nearest_rank(values, 90),
        max=max(values),
    )


class LedgerFigures(Figures):
    """Which rows the report was computed from, and whether their chain verified."""

    rows: int
    first_seq: int
    last_seq: int
    head_hash: str
    chain_ok: bool
    problem: str | None = None


class ActivePeriod(Figures):
    """From `activated` or `re_escalated` to the next `de_escalated` (None: still open)."""

    started_by: DecisionKind
    start: datetime
    end: datetime | None = None
    length: timedelta | None = None


class ActivationFigures(Figures):
    """Report, assessment, activation and de-escalation times."""

    reported_at: datetime
    event_started_at: datetime | None = None
    event_to_report: timedelta | None = None
    first_assessed_at: datetime | None = None
    decision: DecisionKind | None = None
    decided_at: datetime | None = None
    activated_at: datetime | None = None
    report_to_decision: timedelta | None = None
    report_to_activation: timedelta | None = None
    activation_length: timedelta | None = None
    periods: list[ActivePeriod] = []
    time_active: timedelta | None = None
    de_escalations: int = 0
    re_escalations: int = 0
    review_started_at: datetime | None = None
    closed_at: datetime | None = None


class Sighting(Figures):
    """One `sighting_reported` decision."""

    seq: int
    at: datetime
    by: str
    new_items: list[int]
    duplicates: int
    low_quality: int


class FalsePositive(Figures):
    """One `false_positive_reported` decision."""

    at: datetime
    by: str
    item: int | None
    reason: str | None


class IdentifierFigures(Figures):
    """Items added, by the decision that added them; identifiers dropped; sightings."""

    items: int
    by_decision: dict[str, int]
    duplicates: int
    low_quality: int
    drops_recorded_by: list[DecisionKind]
    withdrawn_items: list[int]
    sightings: list[Sighting]
    false_positives: list[FalsePositive]


class TaskNote(Figures):
    """A decline or a cannot-comply, with its reasons."""

    task_id: str
    item_no: int | None
    at: datetime
    outcome: str
    annex_iii: str | None = None
    reason: str | None = None


class SlaEvent(Figures):
    """One rung of a missed deadline's ladder (`sla_breached`, `sla_backup_told`, ...)."""

    task_id: str
    clock: str
    deadline: Deadline
    rung: str
    due: datetime | None
    at: datetime


class TaskFigures(Figures):
    """One task as the ledger tells it."""

    task_id: str
    platform_id: str
    item_no: int | None
    started_at: datetime | None
    state: str
    acknowledged_at: datetime | None = None
    acted_at: datetime | None = None
    acted_as: str | None = None
    withdrawn_at: datetime | None = None
    time_to_acknowledge: timedelta | None = None
    time_to_act: timedelta | None = None
    full_hour: bool = False
    within_hour: bool = False


class CurvePoint(Figures):
    """A platform's tasks assigned and resolved (acted on or withdrawn) up to `at`."""

    at: datetime
    assigned: int
    resolved: int


class PlatformFigures(Figures):
    """One platform's response."""

    platform_id: str
    tasks: int
    by_state: dict[str, int]
    acknowledge: DurationStats
    act: DurationStats
    acknowledge_times: list[timedelta]
    acted_within_hour: int
    tasks_with_full_hour: int
    breaches: int
    breaches_by_clock: dict[str, int]
    legal_deadlines_missed: int
    targets_missed: int
    targets_missed_by_clock: dict[str, int]
    backup_told: int
    backup_told_by_clock: dict[str, int]
    escalations: int
    escalations_by_clock: dict[str, int]
    sla_events: list[SlaEvent]
    declines: list[TaskNote]
    cannot_comply: list[TaskNote]
    resumed: int
    withdrawn: int
    sightings_reported: int
    sighted_items: int
    curve: list[CurvePoint]

    @property
    def share_within_hour(self) -> Fraction | None:
        """Acted within one hour / tasks that had their full hour; None if none had."""
        if not self.tasks_with_full_hour:
            return None
        return Fraction(self.acted_within_hour, self.tasks_with_full_hour)


class ReviewInput(Figures):
    """A participant's `review_input`."""

    seq: int
    at: datetime
    actor_id: str
    actor_kind: str
    text: str


class TimelineEntry(Figures):
    """An incident-level decision."""

    seq: int
    at: datetime
    since_report: timedelta
    kind: DecisionKind
    actor_id: str
    actor_kind: str
    reason: str | None
    summary: str


class ReviewFigures(Figures):
    """Every figure of the review report."""

    incident_id: str
    title: str
    event_place: str | None
    reporter: str
    phase: str
    as_of: datetime
    ledger: LedgerFigures
    activation: ActivationFigures
    identifiers: IdentifierFigures
    platforms: list[PlatformFigures]
    tasks: list[TaskFigures]
    review_inputs: list[ReviewInput]
    timeline: list[TimelineEntry]


@dataclass
class _Task:
    """A task being followed through the ledger."""

    task_id: str
    platform_id: str
    item_no: int | None
    started_at: datetime | None
    basis_kind: str | None = None
    """`kind` of the legal basis of the task's item; None when its item is not in the rows."""
    state: str = "assigned"
    acknowledged_at: datetime | None = None
    acted_at: datetime | None = None
    acted_as: str | None = None
    withdrawn_at: datetime | None = None
    resumed: int = 0
    notes: list[TaskNote] = field(default_factory=list)
    sla: list[SlaEvent] = field(default_factory=list)


def compute(rows: Sequence[LedgerRow]) -> ReviewFigures:
    """All figures of one incident from its ledger rows (in seq order, starting with the report)."""
    if not rows:
        raise ValueError("no ledger rows: an incident's first decision is its report")
    first = rows[0].decision
    if first.kind is not DecisionKind.reported:
        raise ValueError(f"row {rows[0].seq} is {first.kind}, not the incident's report")
    incident_id = first.incident_id
    chain = verify_chain(incident_id, rows)
    report: dict[str, Any] = first.inputs.get("report") or {}
    as_of = max(r.decision.at for r in rows)

    platforms: list[str] = []
    tasks: dict[str, _Task] = {}
    for row in rows:
        d = row.decision
        if d.kind is DecisionKind.activated and not platforms:
            platforms = [str(p) for p in d.inputs.get("platforms", [])]
        if d.kind in ITEM_KINDS:
            for item in d.inputs.get("items", []):
                no, basis = int(item["no"]), _basis_kind(item)
                admitted = ContentItem.model_validate(item)
                for p in platforms:
                    if admitted.addressed_to(p):
                        tid = make_task_id(p, no)
                        tasks.setdefault(tid, _Task(tid, p, no, d.at, basis))
        elif d.kind in TASK_KINDS:
            tid = str(d.inputs.get("task_id", ""))
            task = tasks.get(tid)
            if task is None:
                task = tasks[tid] = _Task(
                    tid, _platform_of(tid, platforms), _item_no(d.inputs), None
                )
            _apply(task, row)

    task_figures = [_task_figures(t, as_of) for t in tasks.values()]
    by_platform: dict[str, list[tuple[_Task, TaskFigures]]] = {p: [] for p in platforms}
    for task, figure in zip(tasks.values(), task_figures, strict=True):
        by_platform.setdefault(task.platform_id, []).append((task, figure))
    sightings: Counter[str] = Counter()
    sighted: Counter[str] = Counter()
    for r in rows:
        if r.decision.kind is DecisionKind.sighting_reported:
            sightings[r.decision.actor.id] += 1
            sighted[r.decision.actor.id] += len(_item_numbers(r.decision.inputs))
    return ReviewFigures(
        incident_id=incident_id,
        title=str(report.get("title", "")),
        event_place=report.get("event_place"),
        reporter=first.actor.id,
        phase=_phase(rows),
        as_of=as_of,
        ledger=LedgerFigures(
            rows=len(rows),
            first_seq=rows[0].seq,
            last_seq=rows[-1].seq,
            head_hash=rows[-1].hash,
            chain_ok=chain.ok,
            problem=chain.problem,
        ),
        activation=_activation(rows, report),
        identifiers=_identifiers(rows),
        platforms=[
            _platform(p, pairs, sightings[p], sighted[p]) for p, pairs in by_platform.items()
        ],
        tasks=task_figures,
        review_inputs=[
            ReviewInput(
                seq=r.seq,
                at=r.decision.at,
                actor_id=r.decision.actor.id,
                actor_kind=str(r.decision.actor.kind),
                text=str(r.decision.inputs.get("text", "")),
            )
            for r in rows
            if r.decision.kind is DecisionKind.review_input
        ],
        timeline=[
            TimelineEntry(
                seq=r.seq,
                at=r.decision.at,
                since_report=r.decision.at - first.at,
                kind=r.decision.kind,
                actor_id=r.decision.actor.id,
                actor_kind=str(r.decision.actor.kind),
                reason=r.decision.reason,
                summary=summarise(r),
            )
            for r in rows
            if r.decision.kind not in TASK_KINDS
        ],
    )


def _item_numbers(inputs: dict[str, Any]) -> list[int]:
    return [int(item["no"]) for item in inputs.get("items", [])]


def _basis_kind(item: dict[str, Any]) -> str:
    """The `kind` of an item's legal basis as recorded; an item without one is a voluntary
    referral (`ContentItem`'s default)."""
    basis = item.get("basis") or {}
    return str(basis.get("kind", "voluntary"))


def _item_no(inputs: dict[str, Any]) -> int | None:
    no = inputs.get("item_no")
    return int(no) if no is not None else None


def _platform_of(tid: str, platforms: Sequence[str]) -> str:
    """The platform of a task id `{platform}-{no:06d}`, preferring a known platform."""
    for p in platforms:
        if tid.startswith(f"{p}-") and tid[len(p) + 1 :].isdigit():
            return p
    return tid.rsplit("-", 1)[0]


def _apply(task: _Task, row: LedgerRow) -> None:
    """One task-level decision applied to the task it names."""
    d = row.decision
    if d.kind in ANSWER_KINDS and task.acknowledged_at is None:
        task.acknowledged_at = d.at
    if d.kind is DecisionKind.task_acknowledged:
        task.state = "acknowledged"
    elif d.kind in ACT_KINDS:
        task.state = ACT_KINDS[d.kind]
        if task.acted_at is None:
            task.acted_at, task.acted_as = d.at, ACT_KINDS[d.kind]
        if d.kind is DecisionKind.task_declined:
            task.notes.append(_note(task, d.at, "declined", None, d.reason))
    elif d.kind is DecisionKind.task_cannot_comply:
        task.state = "cannot_comply"
        annex = d.inputs.get("cannot_comply")
        task.notes.append(_note(task, d.at, "cannot_comply", annex, d.reason))
    elif d.kind is DecisionKind.task_resumed:
        task.state = "acknowledged"
        task.resumed += 1
    elif d.kind is DecisionKind.task_withdrawn:
        task.state = "withdrawn"
        task.withdrawn_at = d.at
    elif d.kind in SLA_RUNGS:
        due = d.inputs.get("due")
        task.sla.append(
            SlaEvent(
                task_id=task.task_id,
                clock=str(d.inputs.get("clock", "")),
                deadline=recorded_deadline(d.inputs, task.basis_kind),
                rung=SLA_RUNGS[d.kind],
                due=datetime.fromisoformat(due) if due else None,
                at=d.at,
            )
        )


def _note(task: _Task, at: datetime, outcome: str, annex: Any, reason: str | None) -> TaskNote:
    return TaskNote(
        task_id=task.task_id,
        item_no=task.item_no,
        at=at,
        outcome=outcome,
        annex_iii=str(annex) if annex is not None else None,
        reason=reason,
    )


def _task_figures(task: _Task, as_of: datetime) -> TaskFigures:
    """The task's times and whether it counts for, and meets, the one hour."""
    start = task.started_at
    ack = task.acknowledged_at - start if start and task.acknowledged_at else None
    act = task.acted_at - start if start and task.acted_at else None
    if start is None:
        full_hour = False
    elif act is not None:
        full_hour = True
    else:
        hour_end = start + ONE_HOUR
        withdrawn_early = task.withdrawn_at is not None and task.withdrawn_at < hour_end
        full_hour = hour_end <= as_of and not withdrawn_early
    return TaskFigures(
        task_id=task.task_id,
        platform_id=task.platform_id,
        item_no=task.item_no,
        started_at=start,
        state=task.state,
        acknowledged_at=task.acknowledged_at,
        acted_at=task.acted_at,
        acted_as=task.acted_as,
        withdrawn_at=task.withdrawn_at,
        time_to_acknowledge=ack,
        time_to_act=act,
        full_hour=full_hour,
        within_hour=act is not None and act <= ONE_HOUR,
    )


def _platform(
    platform_id: str, pairs: list[tuple[_Task, TaskFigures]], sightings: int, sighted: int
) -> PlatformFigures:
    """One platform's figures from its tasks and the counts of its own sightings."""
    tasks = [t for t, _ in pairs]
    figures = [f for _, f in pairs]
    acks = [f.time_to_acknowledge for f in figures if f.time_to_acknowledge is not None]
    acts = [f.time_to_act for f in figures if f.time_to_act is not None]
    events = sorted((e for t in tasks for e in t.sla), key=lambda e: (e.at, e.task_id))
    rungs = {rung: [e for e in events if e.rung == rung] for rung in SLA_RUNGS.values()}
    missed = {kind: [e for e in rungs["breached"] if e.deadline is kind] for kind in Deadline}
    notes = sorted((n for t in tasks for n in t.notes), key=lambda n: (n.at, n.task_id))
    return PlatformFigures(
        platform_id=platform_id,
        tasks=len(tasks),
        by_state=dict(sorted(Counter(t.state for t in tasks).items())),
        acknowledge=duration_stats(acks),
        act=duration_stats(acts),
        acknowledge_times=sorted(acks),
        acted_within_hour=sum(f.within_hour for f in figures),
        tasks_with_full_hour=sum(f.full_hour for f in figures),
        breaches=len(rungs["breached"]),
        breaches_by_clock=_by_clock(rungs["breached"]),
        legal_deadlines_missed=len(missed[Deadline.legal]),
        targets_missed=len(missed[Deadline.target]),
        targets_missed_by_clock=_by_clock(missed[Deadline.target]),
        backup_told=len(rungs["backup_told"]),
        backup_told_by_clock=_by_clock(rungs["backup_told"]),
        escalations=len(rungs["escalated"]),
        escalations_by_clock=_by_clock(rungs["escalated"]),
        sla_events=events,
        declines=[n for n in notes if n.outcome == "declined"],
        cannot_comply=[n for n in notes if n.outcome == "cannot_comply"],
        resumed=sum(t.resumed for t in tasks),
        withdrawn=sum(t.state == "withdrawn" for t in tasks),
        sightings_reported=sightings,
        sighted_items=sighted,
        curve=takedown_curve(figures),
    )


def _by_clock(events: list[SlaEvent]) -> dict[str, int]:
    return dict(sorted(Counter(e.clock for e in events).items()))


def takedown_curve(tasks: Sequence[TaskFigures]) -> list[CurvePoint]:
    """Cumulative tasks assigned and resolved (acted on or withdrawn), one point per time."""
    steps: Counter[tuple[datetime, str]] = Counter()
    for t in tasks:
        if t.started_at is not None:
            steps[(t.started_at, "assigned")] += 1
        resolved_at = t.acted_at or t.withdrawn_at
        if resolved_at is not None:
            steps[(resolved_at, "resolved")] += 1
    points: list[CurvePoint] = []
    assigned = resolved = 0
    for at in sorted({at for at, _ in steps}):
        assigned += steps[(at, "assigned")]
        resolved += steps[(at, "resolved")]
        points.append(CurvePoint(at=at, assigned=assigned, resolved=resolved))
    return points


def _phase(rows: Sequence[LedgerRow]) -> str:
    phase = "reported"
    for r in rows:
        phase = PHASE_OF.get(r.decision.kind, phase)
    return phase


def _activation(rows: Sequence[LedgerRow], report: dict[str, Any]) -> ActivationFigures:
    """Times of the report, the activation decision and the active periods."""
    reported_at = rows[0].decision.at
    event = report.get("event_started_at")
    event_at = datetime.fromisoformat(event) if isinstance(event, str) else None
    first: dict[DecisionKind, datetime] = {}
    periods: list[ActivePeriod] = []
    counts: Counter[DecisionKind] = Counter()
    for r in rows:
        d = r.decision
        first.setdefault(d.kind, d.at)
        counts[d.kind] += 1
        if d.kind in (DecisionKind.activated, DecisionKind.re_escalated):
            periods.append(ActivePeriod(started_by=d.kind, start=d.at))
        elif d.kind is DecisionKind.de_escalated and periods and periods[-1].end is None:
            p = periods[-1]
            periods[-1] = p.model_copy(update={"end": d.at, "length": d.at - p.start})
    decision = next(
        (k for k in (DecisionKind.activated, DecisionKind.not_activated) if k in first), None
    )
    decided_at = first[decision] if decision else None
    activated_at = first.get(DecisionKind.activated)
    de_escalated_at = first.get(DecisionKind.de_escalated)
    lengths = [p.length for p in periods]
    return ActivationFigures(
        reported_at=reported_at,
        event_started_at=event_at,
        event_to_report=reported_at - event_at if event_at else None,
        first_assessed_at=first.get(DecisionKind.assessed),
        decision=decision,
        decided_at=decided_at,
        activated_at=activated_at,
        report_to_decision=decided_at - reported_at if decided_at else None,
        report_to_activation=activated_at - reported_at if activated_at else None,
        activation_length=(
            de_escalated_at - activated_at if activated_at and de_escalated_at else None
        ),
        periods=periods,
        time_active=(
            sum((x for x in lengths if x is not None), timedelta())
            if periods and None not in lengths
            else None
        ),
        de_escalations=counts[DecisionKind.de_escalated],
        re_escalations=counts[DecisionKind.re_escalated],
        review_started_at=first.get(DecisionKind.review_started),
        closed_at=first.get(DecisionKind.closed),
    )


def _identifiers(rows: Sequence[LedgerRow]) -> IdentifierFigures:
    """Items by the decision that added them, drops, withdrawals, sightings, false positives."""
    by_decision: Counter[str] = Counter()
    duplicates = low_quality = 0
    recorded_by: list[DecisionKind] = []
    withdrawn: list[int] = []
    sightings: list[Sighting] = []
    false_positives: list[FalsePositive] = []
    for r in rows:
        d = r.decision
        if d.kind in ITEM_KINDS:
            by_decision[str(d.kind)] += len(_item_numbers(d.inputs))
            if "duplicates" in d.inputs or "low_quality" in d.inputs:
                duplicates += int(d.inputs.get("duplicates", 0))
                low_quality += int(d.inputs.get("low_quality", 0))
                if d.kind not in recorded_by:
                    recorded_by.append(d.kind)
        if d.kind is DecisionKind.sighting_reported:
            sightings.append(
                Sighting(
                    seq=r.seq,
                    at=d.at,
                    by=d.actor.id,
                    new_items=_item_numbers(d.inputs),
                    duplicates=int(d.inputs.get("duplicates", 0)),
                    low_quality=int(d.inputs.get("low_quality", 0)),
                )
            )
        elif d.kind is DecisionKind.content_withdrawn:
            withdrawn.extend(int(no) for no in d.inputs.get("items", []))
        elif d.kind is DecisionKind.false_positive_reported:
            item = d.inputs.get("item")
            false_positives.append(
                FalsePositive(
                    at=d.at,
                    by=d.actor.id,
                    item=int(item) if item is not None else None,
                    reason=d.reason,
                )
            )
    return IdentifierFigures(
        items=sum(by_decision.values()),
        by_decision=dict(by_decision),
        duplicates=duplicates,
        low_quality=low_quality,
        drops_recorded_by=recorded_by,
        withdrawn_items=sorted(set(withdrawn)),
        sightings=sightings,
        false_positives=false_positives,
    )


def summarise(row: LedgerRow) -> str:
    """One line on what an incident-level decision did (never identifier values)."""
    d = row.decision
    i = d.inputs
    match d.kind:
        case DecisionKind.reported:
            report = i.get("report") or {}
            return f"reported: {report.get('title', '')} ({report.get('event_place', '')})"
        case DecisionKind.assessed:
            assessment = i.get("assessment") or {}
            met = sum(1 for c in assessment.values() if c.get("status") == "met")
            return f"{met} of {len(assessment)} criteria met"
        case DecisionKind.activated:
            return f"{len(_item_numbers(i))} item(s) to {', '.join(i.get('platforms', []))}"
        case DecisionKind.content_added:
            return f"{len(_item_numbers(i))} item(s) added"
        case DecisionKind.removal_order_issued:
            order = i.get("order") or {}
            return (
                f"removal order {order.get('reference', '')} to {order.get('platform', '')}:"
                f" {len(_item_numbers(i))} item(s)"
            )
        case DecisionKind.sighting_reported:
            return (
                f"{len(_item_numbers(i))} new item(s), {i.get('duplicates', 0)} duplicate(s),"
                f" {i.get('low_quality', 0)} low quality"
            )
        case DecisionKind.content_withdrawn:
            return "items " + ", ".join(str(no) for no in i.get("items", [])) + " withdrawn"
        case DecisionKind.false_positive_reported:
            return f"item {i.get('item')} reported as a false positive"
        case DecisionKind.de_escalated:
            return "open tasks withdrawn" if i.get("withdraw_open_tasks") else "tasks keep running"
        case DecisionKind.review_started:
            return f"review due {i.get('review_due', '')}"
        case DecisionKind.review_input:
            return f"review input ({len(str(i.get('text', '')))} characters)"
        case DecisionKind.assessment_reminder | DecisionKind.assessment_escalated:
            return f"activation decision was due {i.get('due', '')}"
        case _:
            return PHASE_OF.get(d.kind, str(d.kind))

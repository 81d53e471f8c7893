"""The review report's figures, computed from an incident's ledger rows and nothing else.

Pure: no I/O, no clock. Every figure is exact arithmetic on the decisions' recorded times
(`Decision.at`), so an auditor holding the rows can recompute the report offline. How each
figure is defined is in `DEFINITIONS`, which the rendered report repeats.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

from eucp.protocol.clocks import SlaSettings, moment_in_words
from eucp.protocol.deadlines import Deadline, recorded_deadline
from eucp.protocol.decisions import Decision, DecisionKind, LedgerRow, is_lapse
from eucp.protocol.incident import PROTOCOL_NAMES
from eucp.protocol.orders import (
    OrderRecord,
    ScrutinyDecision,
    ScrutinyOutcome,
    ScrutinyRequest,
    ScrutinyStage,
)
from eucp.protocol.tasks import ContentItem, open_items
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
    {
        DecisionKind.task_acknowledged,
        DecisionKind.task_cannot_comply,
        DecisionKind.task_reinstated,
        *ACT_KINDS,
    }
)
"""A platform's answers; the first one acknowledges the task."""
PAUSE_ENDS = frozenset({DecisionKind.task_resumed, DecisionKind.task_withdrawn, *ACT_KINDS})
"""Decisions that end a task's pause for cannot-comply (TCO Art. 3(7)-(8))."""
SLA_RUNGS: dict[DecisionKind, str] = {
    DecisionKind.sla_breached: "breached",
    DecisionKind.sla_backup_told: "backup_told",
    DecisionKind.sla_escalated: "escalated",
}
"""The escalation ladder of a missed deadline: platform reminded, backup told, coordinators."""
TASK_KINDS = frozenset(
    {
        *ANSWER_KINDS,
        *SLA_RUNGS,
        DecisionKind.task_resumed,
        DecisionKind.task_withdrawn,
        DecisionKind.reinstatement_assigned,
        DecisionKind.pause_alerted,
    }
)
"""Task-level decisions; every other kind is incident level and goes in the timeline."""
ORDER_KINDS = frozenset(
    {
        DecisionKind.scrutiny_requested,
        DecisionKind.scrutiny_decided,
        DecisionKind.scrutiny_window_closed,
        DecisionKind.scrutiny_overdue,
        DecisionKind.order_clarified,
    }
)
"""Decisions on a removal order after its issue; their `order` input is its reference."""
REINSTATE_SUFFIX = "-reinstate"
"""How a reinstatement task's id ends: the removed task's id and this (TCO Art. 4(7))."""
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
PARTICIPATION_KINDS = frozenset({DecisionKind.platform_joined, DecisionKind.platform_suspended})
CLOCKS = tuple(SlaSettings.model_fields)
"""The protocol's clocks, in the order the settings list them."""

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
    "the activation's life": (
        "each active period from the decision that started it, with the `override` an"
        " `activated` decision records when the coordinator activated without all five"
        " criteria met (its reason, as recorded), and `expires`: when the period lapses unless"
        " renewed. Each `activation_renewed` decision (its reason required) sets a new"
        " `expires`; `activation_expiring` is eucp's reminder to the coordinators before it. A"
        " period ends at the next `de_escalated` decision: a lapse when eucp recorded it (actor"
        " kind `system`, input `lapsed`) once the activation expired unrenewed, a de-escalation"
        " by a coordinator otherwise. Renewals and lapses count those decisions."
    ),
    "participation": (
        "the platforms named in the `activated` decision take part from the activation."
        " `platform_joined` brings a platform in mid-crisis, or back from a suspension (`back`):"
        " it is given a task for every item still open then (admitted, neither withdrawn nor"
        " under an order found to infringe), each starting at that decision; a task of it"
        " withdrawn before is given anew. `platform_suspended` (with its reason) suspends one:"
        " its open tasks are withdrawn, and items added while it is suspended are no task for"
        " it."
    ),
    "clocks in force": (
        "the protocol's durations as the `reported` decision recorded them (`clocks`) and as"
        " each `clocks_set` decision set them (`clocks`, all of them; `changes`, those the"
        " coordinator changed), each in force from its decision on, for the crisis and for every"
        " open task's deadlines. An incident reported before the clocks were recorded shows"
        " none, and its after-action is not scored."
    ),
    "after-action": (
        "each platform's takedown tasks against two targets of the clocks in force:"
        " `acknowledge_within` for the time to acknowledge, `act_within` for the time to act"
        " (both as defined above, pauses not subtracted). A task is judged by the target in"
        " force when it was answered, and counted once it was answered or its target ran out"
        " (start + target at or before the last recorded decision, and before any withdrawal);"
        " a task counted unanswered missed its target. Within target is the share of the"
        " counted tasks that met it; the median is by nearest rank over the counted tasks,"
        " unanswered ones last. A platform meets its targets when, for both, at least half its"
        " counted tasks met them (so its median task did), falls short when for either fewer"
        " did, and is not scored while either has no counted task. For an exercise this is its"
        " after-action review; the target shown is the one in force at the last decision."
    ),
    "exercise": (
        "an incident reported with `exercise` set (in the report of its `reported` decision):"
        " a rehearsal of the protocol, not a crisis. Its report says so at the top, and its"
        " figures are an exercise's: no figure here adds incidents together, and none of an"
        " exercise is to be counted with a real incident's."
    ),
    "linked protocols": (
        "`protocol_linked` decisions: another protocol's activation for the same event (GIFCT's"
        " Content Incident Protocol, the Christchurch Call's crisis response protocol, or"
        " another, by its `name`), with its `reference` and its own activation time"
        " (`activated_at`). The timeline shows it twice: when it was linked, and at that"
        " activation time."
    ),
    "items": (
        "content items numbered by the crisis (`items` in `activated`, `content_added`,"
        " `removal_order_issued` and `sighting_reported` inputs). Duplicates and low-quality"
        " PDQ hashes dropped are the sums of the `duplicates` and `low_quality` inputs of the"
        " decisions that record them."
    ),
    "task": (
        "one per (item, platform), id `{platform}-{item_no:06d}`: items of `activated` and"
        " `content_added` go to every participating platform (the `platforms` of `activated`,"
        " and those brought in since, but none while suspended: see participation), items of"
        " `sighting_reported` to every participating platform except the reporter; an item"
        " that names its `addressees` goes to those alone (a removal order's items to its"
        " addressee platform)."
    ),
    "task start": (
        "the time of the decision that created the task's item; for a task given to a platform"
        " brought in (or back) later, the time of its `platform_joined` decision."
    ),
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
    "removal orders": (
        "one per `removal_order_issued` decision, by its `order` input: the order's reference,"
        " its issuing authority and Member State, its addressee platform and the host Member"
        " State of that platform (TCO Regulation (EU) 2021/784, Art. 3 and Annex I), and its"
        " `items`. An order is cross-border when the host Member State is not the issuing one;"
        " its `copy_to` names the host State's authorities sent a copy and `scrutiny_until`"
        " when their 72 hours to scrutinise it end (Art. 4(1)-(2)). The order's receipt is the"
        " time of its `removal_order_issued` decision, when eucp delivered it."
    ),
    "time to removal": (
        "for each task of an order: the time of its `task_removed` decision minus the order's"
        " receipt, less the time the task was paused. A pause runs from a `task_cannot_comply`"
        " decision to the next `task_resumed` (the platform resuming, or the issuing authority's"
        " clarification), `task_removed`, `task_not_found`, `task_declined` or `task_withdrawn`;"
        " a pause still open is not subtracted from anything, since its task is not removed."
        " This is the time the platform had the order in hand; the legal hour itself starts"
        " again in full when a pause ends (Art. 3(7)-(8)). Median, p90 and max are by nearest"
        " rank over the order's removed tasks; tasks not removed are left out."
    ),
    "scrutiny": (
        "Art. 4, matched to the order by the `order` input: `scrutiny_requested` (the addressee's"
        " reasoned request and `decide_by`), `scrutiny_decided` (the host State authority's"
        " `outcome`, upheld or infringes, its reasons, and whether it was `requested`),"
        " `scrutiny_window_closed` (72 hours from the copy passed undecided) and"
        " `scrutiny_overdue` (no decision 72 hours after a request). The stage is where the"
        " scrutiny stood at the last recorded decision: domestic (the host State issued it: no"
        " Art. 4 scrutiny), open, requested, overdue, stands (the window closed with no request),"
        " upheld or infringes (the order lost its legal effect)."
    ),
    "clarifications": (
        "`order_clarified` decisions of an order's issuing authority, answering its addressee's"
        " cannot-comply for a manifest error or missing information (Annex III, Art. 3(8))."
    ),
    "reinstatements": (
        "when an order is found to infringe, each of its removed tasks gets a reinstatement task"
        " (`reinstatement_assigned`, id `{task_id}-reinstate`, its `reinstates` input the removed"
        " task), done at its `task_reinstated` decision (Art. 4(7)); time to reinstate runs from"
        " one to the other. Reinstatement tasks are not takedown tasks: they are left out of the"
        " platforms' tasks, times, one-hour share and takedown curve, and counted apart; their"
        " missed deadlines (clock `reinstate`, a target) count with the platform's."
    ),
    "pause alerts": (
        "`pause_alerted` decisions: a task paused for cannot-comply longer than the incident's"
        " `pause_alert_after`, alerted to the coordinators and the order's issuer once per pause."
    ),
    "timeline": (
        "every incident-level decision in the order recorded (imminent-threat flags,"
        " situational updates, clock and participation changes, renewals and lapses included),"
        " and each linked protocol's own activation placed at its time; task-level decisions"
        " are summed up per platform."
    ),
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


class Renewal(Figures):
    """An `activation_renewed` decision: the activation kept for another period."""

    at: datetime
    by: str
    reason: str | None = None
    expires: datetime | None = None


class Reminder(Figures):
    """An `activation_expiring` decision: eucp reminding the coordinators of the lapse."""

    at: datetime
    expires: datetime | None = None


class ActivePeriod(Figures):
    """From `activated` or `re_escalated` to the next `de_escalated` (None: still open), with
    its renewals, reminders and how it ended: lapsed unrenewed, or de-escalated."""

    started_by: DecisionKind
    start: datetime
    end: datetime | None = None
    length: timedelta | None = None
    by: str | None = None
    reason: str | None = None
    override: str | None = None
    """an activation's recorded override: why all five criteria were not needed"""
    expires: datetime | None = None
    """when it lapses unless renewed, as its start set it"""
    renewals: list[Renewal] = []
    reminders: list[Reminder] = []
    ended_by: str | None = None
    end_reason: str | None = None
    lapsed: bool = False
    """ended by eucp, the activation expired unrenewed"""

    @property
    def lapses_at(self) -> datetime | None:
        """When it lapses (or lapsed) unless renewed: as its latest renewal, or its start,
        set it."""
        return next((r.expires for r in reversed(self.renewals) if r.expires), self.expires)


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
    override: str | None = None
    """the first activation's recorded override, if it had one"""
    renewals: int = 0
    lapses: int = 0


class ParticipationChange(Figures):
    """A platform brought in mid-crisis (`joined`), back from a suspension (`back`), or
    suspended (`suspended`, with its reason)."""

    seq: int
    at: datetime
    platform_id: str
    change: str
    by: str
    reason: str | None = None


class ClocksInForce(Figures):
    """The clocks recorded at the report (`reported`) or set by a coordinator (`clocks_set`),
    in force from `at`; `changed` names the clocks a `clocks_set` changed."""

    seq: int
    at: datetime
    kind: DecisionKind
    by: str
    reason: str | None = None
    changed: list[str] = []
    clocks: dict[str, timedelta]


class LinkedActivation(Figures):
    """A `protocol_linked` decision: another protocol's activation for the same event."""

    seq: int
    linked_at: datetime
    by: str
    protocol: str
    name: str
    """what the report calls it"""
    reference: str
    activated_at: datetime | None = None


class TargetScore(Figures):
    """How a platform's tasks met one target of the clocks in force (see `after-action`)."""

    clock: str
    target: timedelta | None = None
    """in force at the last recorded decision; None when no clocks were recorded"""
    counted: int = 0
    within: int = 0
    median: timedelta | None = None
    """None when nothing was counted, or when the median counted task was never answered"""

    @property
    def share(self) -> Fraction | None:
        return Fraction(self.within, self.counted) if self.counted else None

    @property
    def met(self) -> bool | None:
        """At least half the counted tasks within target (the median one was); None when
        none is counted."""
        return 2 * self.within >= self.counted if self.counted else None


class PlatformScore(Figures):
    """A platform's response times against the protocol's targets: the after-action."""

    platform_id: str
    acknowledge: TargetScore
    act: TargetScore

    @property
    def meets_targets(self) -> bool | None:
        """False when either target was missed, True when both were met, else None."""
        marks = (self.acknowledge.met, self.act.met)
        if False in marks:
            return False
        return None if None in marks else True


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
    pause_alerts: int = 0
    reinstatements: int = 0
    """reinstatement tasks (TCO Art. 4(7)): not among `tasks`"""
    reinstated: int = 0

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
    """An incident-level decision, or (`event` set) what one recorded at its own time: a
    linked protocol's activation, recorded by the decision of row `seq`."""

    seq: int
    at: datetime
    since_report: timedelta
    kind: DecisionKind
    actor_id: str
    actor_kind: str
    reason: str | None
    summary: str
    event: str | None = None


class OrderTask(Figures):
    """One task of a removal order: from the order's receipt to its removal, pauses less."""

    task_id: str
    item_no: int | None
    state: str
    removed_at: datetime | None = None
    """the `task_removed` decision's time"""
    pauses: int = 0
    paused: timedelta = timedelta(0)
    """the pauses that ended (an open one is not counted)"""
    time_to_removal: timedelta | None = None


class Reinstatement(Figures):
    """A reinstatement task: the content of a removed task put back (TCO Art. 4(7))."""

    task_id: str
    reinstates: str
    item_no: int | None
    state: str
    assigned_at: datetime | None
    reinstated_at: datetime | None = None
    time_to_reinstate: timedelta | None = None


class ScrutinyRequested(Figures):
    """The addressee's `scrutiny_requested` (TCO Art. 4(4))."""

    at: datetime
    by: str
    reason: str | None
    decide_by: datetime | None


class ScrutinyDecided(Figures):
    """The host Member State authority's `scrutiny_decided` (Art. 4(3)-(6))."""

    at: datetime
    by: str
    outcome: str
    reasons: str | None
    requested: bool | None


class Clarification(Figures):
    """The issuing authority's `order_clarified` (Annex III, Art. 3(8))."""

    at: datetime
    by: str
    text: str | None


class OrderFigures(Figures):
    """One removal order: whom it bound, how fast its content came down, what became of it."""

    seq: int
    reference: str
    issuer: str | None
    issuing_authority: str | None
    issuing_member_state: str | None
    platform: str | None
    host_member_state: str | None
    cross_border: bool
    confidential: bool
    items: list[int]
    received_at: datetime
    copy_to: list[str] = []
    scrutiny_until: datetime | None = None
    tasks: list[OrderTask] = []
    removal: DurationStats = DurationStats(count=0)
    """time to removal of its removed tasks, pauses subtracted"""
    stage: ScrutinyStage
    request: ScrutinyRequested | None = None
    decisions: list[ScrutinyDecided] = []
    """in time order: one the host State took of its own motion may be followed by one on a
    later request"""
    window_closed_at: datetime | None = None
    overdue_at: datetime | None = None
    clarifications: list[Clarification] = []
    pause_alerts: int = 0
    reinstatements: list[Reinstatement] = []

    @property
    def decision(self) -> ScrutinyDecided | None:
        """The latest scrutiny decision: the one that stands."""
        return self.decisions[-1] if self.decisions else None

    @property
    def reinstated(self) -> int:
        return sum(r.reinstated_at is not None for r in self.reinstatements)


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
    orders: list[OrderFigures] = []
    review_inputs: list[ReviewInput]
    timeline: list[TimelineEntry]
    exercise: bool = False
    named_at_activation: list[str] = []
    """the platforms the activation named"""
    participation: list[ParticipationChange] = []
    clocks: list[ClocksInForce] = []
    after_action: list[PlatformScore] = []
    linked_protocols: list[LinkedActivation] = []


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
    paused_since: datetime | None = None
    pauses: int = 0
    paused_for: timedelta = timedelta(0)
    """the pauses for cannot-comply that ended"""
    pause_alerts: int = 0
    reinstates: str | None = None
    """the removed task whose content this one reinstates; None for a takedown task"""
    reinstated_at: datetime | None = None


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
    named: list[str] = []
    suspended: set[str] = set()
    tasks: dict[str, _Task] = {}
    for n, row in enumerate(rows):
        d = row.decision
        if d.kind is DecisionKind.activated and not platforms:
            platforms = [str(p) for p in d.inputs.get("platforms", [])]
            named = list(platforms)
        if d.kind in ITEM_KINDS:
            for item in d.inputs.get("items", []):
                no, basis = int(item["no"]), _basis_kind(item)
                admitted = ContentItem.model_validate(item)
                for p in platforms:
                    if p not in suspended and admitted.addressed_to(p):
                        tid = make_task_id(p, no)
                        tasks.setdefault(tid, _Task(tid, p, no, d.at, basis))
        elif d.kind is DecisionKind.platform_joined:
            platform = str(d.inputs.get("platform", ""))
            suspended.discard(platform)
            if platform and platform not in platforms:
                platforms.append(platform)
            _join(tasks, platform, d.at, [r.decision for r in rows[:n]])
        elif d.kind is DecisionKind.platform_suspended:
            suspended.add(str(d.inputs.get("platform", "")))
        elif d.kind in TASK_KINDS:
            tid = str(d.inputs.get("task_id", ""))
            task = tasks.get(tid)
            if task is None:
                task = tasks[tid] = _Task(
                    tid, _platform_of(tid, platforms), _item_no(d.inputs), None
                )
                if tid.endswith(REINSTATE_SUFFIX):  # known by its id, whatever rows are missing
                    task.reinstates = tid.removesuffix(REINSTATE_SUFFIX)
            _apply(task, row)

    takedown = [t for t in tasks.values() if t.reinstates is None]
    task_figures = [_task_figures(t, as_of) for t in takedown]
    by_platform: dict[str, list[tuple[_Task, TaskFigures]]] = {p: [] for p in platforms}
    for task, figure in zip(takedown, task_figures, strict=True):
        by_platform.setdefault(task.platform_id, []).append((task, figure))
    reinstating: dict[str, list[_Task]] = {}
    for task in tasks.values():
        if task.reinstates is not None:
            by_platform.setdefault(task.platform_id, [])
            reinstating.setdefault(task.platform_id, []).append(task)
    sightings: Counter[str] = Counter()
    sighted: Counter[str] = Counter()
    for r in rows:
        if r.decision.kind is DecisionKind.sighting_reported:
            sightings[r.decision.actor.id] += 1
            sighted[r.decision.actor.id] += len(_item_numbers(r.decision.inputs))
    clocks = _clocks(rows)
    linked = _linked(rows)
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
            _platform(p, pairs, reinstating.get(p, []), sightings[p], sighted[p])
            for p, pairs in by_platform.items()
        ],
        tasks=task_figures,
        orders=_orders(rows, tasks),
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
        timeline=_timeline(rows, linked),
        exercise=bool(report.get("exercise", False)),
        named_at_activation=named,
        participation=[
            ParticipationChange(
                seq=r.seq,
                at=r.decision.at,
                platform_id=str(r.decision.inputs.get("platform", "")),
                change=(
                    "suspended"
                    if r.decision.kind is DecisionKind.platform_suspended
                    else "back"
                    if r.decision.inputs.get("back")
                    else "joined"
                ),
                by=r.decision.actor.id,
                reason=r.decision.reason,
            )
            for r in rows
            if r.decision.kind in PARTICIPATION_KINDS
        ],
        clocks=clocks,
        after_action=[
            _score(p, [f for _, f in pairs], clocks, as_of) for p, pairs in by_platform.items()
        ],
        linked_protocols=linked,
    )


def _join(tasks: dict[str, _Task], platform: str, at: datetime, before: list[Decision]) -> None:
    """A platform brought in (or back): the items still open are its tasks from `at`, as its
    workflow reads them from the ledger; one withdrawn from it before is given anew, with the
    missed deadlines and notes it had."""
    for item in open_items(before):
        if not item.addressed_to(platform):
            continue
        tid = make_task_id(platform, item.no)
        old = tasks.get(tid)
        if old is not None and old.state != "withdrawn":
            continue
        fresh = _Task(tid, platform, item.no, at, item.basis.kind)
        if old is not None:
            fresh.notes, fresh.sla = old.notes, old.sla
            fresh.resumed, fresh.pause_alerts = old.resumed, old.pause_alerts
        tasks[tid] = fresh


def _clocks(rows: Sequence[LedgerRow]) -> list[ClocksInForce]:
    """The clocks recorded at the report and at each change, in the order recorded."""
    found: list[ClocksInForce] = []
    for r in rows:
        d = r.decision
        if d.kind not in (DecisionKind.reported, DecisionKind.clocks_set):
            continue
        recorded = d.inputs.get("clocks")
        if isinstance(recorded, dict):
            settings = SlaSettings.model_validate(recorded)
            clocks = {name: getattr(settings, name) for name in CLOCKS}
        elif found:  # a change without its clocks: those before stay in force
            clocks = dict(found[-1].clocks)
        else:
            continue
        changes = d.inputs.get("changes")
        found.append(
            ClocksInForce(
                seq=r.seq,
                at=d.at,
                kind=d.kind,
                by=d.actor.id,
                reason=d.reason,
                changed=[str(name) for name in changes] if isinstance(changes, dict) else [],
                clocks=clocks,
            )
        )
    return found


def _in_force(clocks: Sequence[ClocksInForce], at: datetime) -> dict[str, timedelta] | None:
    """The clocks in force at `at`: the latest recorded at or before it."""
    current = None
    for c in clocks:
        if c.at > at:
            break
        current = c.clocks
    return current


def _score(
    platform_id: str,
    figures: Sequence[TaskFigures],
    clocks: Sequence[ClocksInForce],
    as_of: datetime,
) -> PlatformScore:
    return PlatformScore(
        platform_id=platform_id,
        acknowledge=_target_score(
            figures, clocks, as_of, "acknowledge_within", lambda f: f.acknowledged_at
        ),
        act=_target_score(figures, clocks, as_of, "act_within", lambda f: f.acted_at),
    )


def _target_score(
    figures: Sequence[TaskFigures],
    clocks: Sequence[ClocksInForce],
    as_of: datetime,
    clock: str,
    answered: Callable[[TaskFigures], datetime | None],
) -> TargetScore:
    """One target: each task judged by the target in force when it was answered (or, not
    answered, at the last decision); counted once answered, or once its target ran out."""
    final = _in_force(clocks, as_of)
    times: list[timedelta] = []
    late = within = 0
    for f in figures:
        at = answered(f)
        in_force = _in_force(clocks, at or as_of)
        if f.started_at is None or in_force is None:
            continue
        target = in_force[clock]
        if at is not None:
            times.append(at - f.started_at)
            within += at - f.started_at <= target
            continue
        due = f.started_at + target
        if due <= as_of and not (f.withdrawn_at is not None and f.withdrawn_at < due):
            late += 1
    counted = len(times) + late
    rank = max(1, math.ceil(Fraction(counted, 2)))
    ordered = sorted(times)
    return TargetScore(
        clock=clock,
        target=final[clock] if final else None,
        counted=counted,
        within=within,
        median=ordered[rank - 1] if counted and rank <= len(ordered) else None,
    )


def _said_at(value: object) -> str:
    """A recorded time as people read it (`moment_in_words`); as recorded if not a time."""
    at = _moment(value)
    return moment_in_words(at) if at is not None else str(value or "")


def _linked(rows: Sequence[LedgerRow]) -> list[LinkedActivation]:
    found: list[LinkedActivation] = []
    for r in rows:
        d = r.decision
        if d.kind is not DecisionKind.protocol_linked:
            continue
        link: dict[str, Any] = d.inputs.get("link") or {}
        protocol = str(link.get("protocol", ""))
        found.append(
            LinkedActivation(
                seq=r.seq,
                linked_at=d.at,
                by=d.actor.id,
                protocol=protocol,
                name=_protocol_name(link),
                reference=str(link.get("reference", "")),
                activated_at=_moment(link.get("activated_at")),
            )
        )
    return found


def _protocol_name(link: dict[str, Any]) -> str:
    protocol = str(link.get("protocol", ""))
    named = link.get("name")
    if named:
        return str(named)
    known = {kind.value: name for kind, name in PROTOCOL_NAMES.items()}
    return known.get(protocol, f"protocol {protocol}")


def _timeline(rows: Sequence[LedgerRow], linked: Sequence[LinkedActivation]) -> list[TimelineEntry]:
    """The incident-level decisions in the order recorded, and each linked protocol's own
    activation placed before the first of them recorded later."""
    reported_at = rows[0].decision.at
    entries = [
        TimelineEntry(
            seq=r.seq,
            at=r.decision.at,
            since_report=r.decision.at - reported_at,
            kind=r.decision.kind,
            actor_id=r.decision.actor.id,
            actor_kind=str(r.decision.actor.kind),
            reason=r.decision.reason,
            summary=summarise(r),
        )
        for r in rows
        if r.decision.kind not in TASK_KINDS
    ]
    kinds = {r.seq: str(r.decision.actor.kind) for r in rows}
    own = sorted(
        (
            TimelineEntry(
                seq=x.seq,
                at=x.activated_at,
                since_report=x.activated_at - reported_at,
                kind=DecisionKind.protocol_linked,
                actor_id=x.by,
                actor_kind=kinds[x.seq],
                reason=None,
                summary=f"{x.name} activated: {x.reference} (linked at row {x.seq})",
                event=f"{x.name} activated",
            )
            for x in linked
            if x.activated_at is not None
        ),
        key=lambda e: e.at,
    )
    merged: list[TimelineEntry] = []
    for entry in entries:
        while own and own[0].at < entry.at:
            merged.append(own.pop(0))
        merged.append(entry)
    return merged + own


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
    """The platform of a task id `{platform}-{no:06d}` (or a reinstatement's, that id and
    `-reinstate`), preferring a known platform."""
    removal = tid.removesuffix(REINSTATE_SUFFIX)
    for p in platforms:
        if removal.startswith(f"{p}-") and removal[len(p) + 1 :].isdigit():
            return p
    return removal.rsplit("-", 1)[0]


def _apply(task: _Task, row: LedgerRow) -> None:
    """One task-level decision applied to the task it names."""
    d = row.decision
    if d.kind in ANSWER_KINDS and task.acknowledged_at is None:
        task.acknowledged_at = d.at
    if d.kind in PAUSE_ENDS and task.paused_since is not None:
        task.paused_for += d.at - task.paused_since
        task.paused_since = None
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
        if task.paused_since is None:
            task.paused_since = d.at
            task.pauses += 1
        annex = d.inputs.get("cannot_comply")
        task.notes.append(_note(task, d.at, "cannot_comply", annex, d.reason))
    elif d.kind is DecisionKind.task_resumed:
        task.state = "acknowledged"
        task.resumed += 1
    elif d.kind is DecisionKind.task_withdrawn:
        task.state = "withdrawn"
        task.withdrawn_at = d.at
    elif d.kind is DecisionKind.reinstatement_assigned:
        task.reinstates = str(d.inputs.get("reinstates") or task.reinstates or "")
        task.started_at = task.started_at or d.at
    elif d.kind is DecisionKind.task_reinstated:
        task.state = "reinstated"
        task.reinstated_at = task.reinstated_at or d.at
    elif d.kind is DecisionKind.pause_alerted:
        task.pause_alerts += 1
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
    platform_id: str,
    pairs: list[tuple[_Task, TaskFigures]],
    reinstating: list[_Task],
    sightings: int,
    sighted: int,
) -> PlatformFigures:
    """One platform's figures from its takedown tasks, its reinstatement tasks (counted apart)
    and the counts of its own sightings."""
    tasks = [t for t, _ in pairs]
    figures = [f for _, f in pairs]
    acks = [f.time_to_acknowledge for f in figures if f.time_to_acknowledge is not None]
    acts = [f.time_to_act for f in figures if f.time_to_act is not None]
    every = [*tasks, *reinstating]
    events = sorted((e for t in every for e in t.sla), key=lambda e: (e.at, e.task_id))
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
        pause_alerts=sum(t.pause_alerts for t in every),
        reinstatements=len(reinstating),
        reinstated=sum(t.reinstated_at is not None for t in reinstating),
    )


@dataclass
class _Order:
    """A removal order being followed through the ledger."""

    seq: int
    received_at: datetime
    order: dict[str, Any]
    items: list[int]
    copy_to: list[str]
    scrutiny_until: datetime | None
    request: ScrutinyRequested | None = None
    decisions: list[ScrutinyDecided] = field(default_factory=list)
    window_closed_at: datetime | None = None
    overdue_at: datetime | None = None
    clarifications: list[Clarification] = field(default_factory=list)


def _orders(rows: Sequence[LedgerRow], tasks: dict[str, _Task]) -> list[OrderFigures]:
    """Every removal order, in the order issued, with what the later decisions naming it say;
    a decision naming a reference issued twice goes with the latest issue, and one naming no
    order in the rows is left out."""
    orders: list[_Order] = []
    latest: dict[str, _Order] = {}
    for r in rows:
        d = r.decision
        if d.kind is DecisionKind.removal_order_issued:
            order: dict[str, Any] = d.inputs.get("order") or {}
            issued = _Order(
                seq=r.seq,
                received_at=d.at,
                order=order,
                items=_item_numbers(d.inputs),
                copy_to=[str(a) for a in d.inputs.get("copy_to", [])],
                scrutiny_until=_moment(d.inputs.get("scrutiny_until")),
            )
            orders.append(issued)
            latest[str(order.get("reference", ""))] = issued
            continue
        o = latest.get(str(d.inputs.get("order", ""))) if d.kind in ORDER_KINDS else None
        if o is None:
            continue
        if d.kind is DecisionKind.scrutiny_requested and o.request is None:
            o.request = ScrutinyRequested(
                at=d.at,
                by=d.actor.id,
                reason=d.reason,
                decide_by=_moment(d.inputs.get("decide_by")),
            )
        elif d.kind is DecisionKind.scrutiny_decided:
            requested = d.inputs.get("requested")
            o.decisions.append(
                ScrutinyDecided(
                    at=d.at,
                    by=d.actor.id,
                    outcome=str(d.inputs.get("outcome", "")),
                    reasons=d.reason,
                    requested=bool(requested) if requested is not None else None,
                )
            )
        elif d.kind is DecisionKind.scrutiny_window_closed:
            o.window_closed_at = o.window_closed_at or d.at
        elif d.kind is DecisionKind.scrutiny_overdue:
            o.overdue_at = o.overdue_at or d.at
        elif d.kind is DecisionKind.order_clarified:
            o.clarifications.append(Clarification(at=d.at, by=d.actor.id, text=d.reason))
    return [_order_figures(o, tasks) for o in orders]


def _order_figures(o: _Order, tasks: dict[str, _Task]) -> OrderFigures:
    """One order's figures: its tasks (its items' takedown tasks), their times to removal with
    their pauses subtracted, and the reinstatement tasks of its removed content."""
    items, platform = set(o.items), o.order.get("platform")
    mine = [
        t
        for t in tasks.values()
        if t.reinstates is None
        and t.item_no in items
        and (platform is None or t.platform_id == platform)
    ]
    ids = {t.task_id for t in mine}
    order_tasks = [
        OrderTask(
            task_id=t.task_id,
            item_no=t.item_no,
            state=t.state,
            removed_at=t.acted_at if t.acted_as == "removed" else None,
            pauses=t.pauses,
            paused=t.paused_for,
            time_to_removal=(
                t.acted_at - o.received_at - t.paused_for
                if t.acted_at is not None and t.acted_as == "removed"
                else None
            ),
        )
        for t in mine
    ]
    reinstatements = [
        Reinstatement(
            task_id=t.task_id,
            reinstates=t.reinstates,
            item_no=t.item_no,
            state=t.state,
            assigned_at=t.started_at,
            reinstated_at=t.reinstated_at,
            time_to_reinstate=(
                t.reinstated_at - t.started_at if t.reinstated_at and t.started_at else None
            ),
        )
        for t in tasks.values()
        if t.reinstates is not None and t.reinstates in ids
    ]
    order = o.order
    issuing, host = order.get("issuing_member_state"), order.get("host_member_state")
    return OrderFigures(
        seq=o.seq,
        reference=str(order.get("reference", "")),
        issuer=order.get("issuer"),
        issuing_authority=order.get("issuing_authority"),
        issuing_member_state=issuing,
        platform=order.get("platform"),
        host_member_state=host,
        cross_border=issuing is not None and host is not None and issuing != host,
        confidential=bool(order.get("confidential", False)),
        items=o.items,
        received_at=o.received_at,
        copy_to=o.copy_to,
        scrutiny_until=o.scrutiny_until,
        tasks=order_tasks,
        removal=duration_stats(
            [t.time_to_removal for t in order_tasks if t.time_to_removal is not None]
        ),
        stage=_stage(o),
        request=o.request,
        decisions=o.decisions,
        window_closed_at=o.window_closed_at,
        overdue_at=o.overdue_at,
        clarifications=o.clarifications,
        pause_alerts=sum(t.pause_alerts for t in mine),
        reinstatements=reinstatements,
    )


def _stage(o: _Order) -> ScrutinyStage:
    """Where the order's scrutiny stood at its last recorded decision, by the protocol's own
    rule (`OrderRecord.stage`)."""
    order, request = o.order, o.request
    decision = o.decisions[-1] if o.decisions else None
    outcome = decision.outcome if decision is not None else None
    record = OrderRecord(
        reference=str(order.get("reference", "")),
        issuer=str(order.get("issuer") or ""),
        issuing_member_state=str(order.get("issuing_member_state", "")),
        host_member_state=str(order.get("host_member_state", "")),
        platform=str(order.get("platform") or ""),
        items=o.items,
        received_at=o.received_at,
        window_closed=o.window_closed_at is not None,
        request=ScrutinyRequest(
            by=request.by,
            at=request.at,
            reason=request.reason or "",
            decide_by=request.decide_by or request.at,
            overdue=o.overdue_at is not None,
        )
        if request is not None
        else None,
        decision=ScrutinyDecision(
            by=decision.by,
            at=decision.at,
            outcome=ScrutinyOutcome(outcome),
            reasons=decision.reasons or "",
        )
        if decision is not None and outcome in {o.value for o in ScrutinyOutcome}
        else None,
    )
    return record.stage


def _moment(value: Any) -> datetime | None:
    """A recorded ISO 8601 time, or None."""
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


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
            override = d.inputs.get("override")
            periods.append(
                ActivePeriod(
                    started_by=d.kind,
                    start=d.at,
                    by=d.actor.id,
                    reason=d.reason,
                    override=str(override) if override else None,
                    expires=_moment(d.inputs.get("expires")),
                )
            )
        elif not periods or periods[-1].end is not None:
            continue
        elif d.kind is DecisionKind.de_escalated:
            p = periods[-1]
            update = {"end": d.at, "length": d.at - p.start, "ended_by": d.actor.id}
            update |= {"end_reason": d.reason, "lapsed": is_lapse(d)}
            periods[-1] = p.model_copy(update=update)
        elif d.kind is DecisionKind.activation_renewed:
            p = periods[-1]
            renewal = Renewal(
                at=d.at, by=d.actor.id, reason=d.reason, expires=_moment(d.inputs.get("expires"))
            )
            periods[-1] = p.model_copy(update={"renewals": [*p.renewals, renewal]})
        elif d.kind is DecisionKind.activation_expiring:
            p = periods[-1]
            reminder = Reminder(at=d.at, expires=_moment(d.inputs.get("expires")))
            periods[-1] = p.model_copy(update={"reminders": [*p.reminders, reminder]})
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
        override=next(
            (p.override for p in periods if p.started_by is DecisionKind.activated), None
        ),
        renewals=counts[DecisionKind.activation_renewed],
        lapses=sum(p.lapsed for p in periods),
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
            exercise = " (exercise)" if report.get("exercise") else ""
            return (
                f"reported{exercise}: {report.get('title', '')} ({report.get('event_place', '')})"
            )
        case DecisionKind.assessed:
            assessment = i.get("assessment") or {}
            met = sum(1 for c in assessment.values() if c.get("status") == "met")
            return f"{met} of {len(assessment)} criteria met"
        case DecisionKind.activated:
            override = f"; override: {i['override']}" if i.get("override") else ""
            lapses = (
                f"; lapses at {_said_at(i['expires'])} unless renewed" if i.get("expires") else ""
            )
            items = f"{len(_item_numbers(i))} item(s) to {', '.join(i.get('platforms', []))}"
            return items + override + lapses
        case DecisionKind.activation_renewed:
            return f"renewed: lapses at {_said_at(i.get('expires'))} unless renewed again"
        case DecisionKind.activation_expiring:
            return f"reminder: the activation lapses at {_said_at(i.get('expires'))} unless renewed"
        case DecisionKind.re_escalated if i.get("expires"):
            return f"active again; lapses at {_said_at(i['expires'])} unless renewed"
        case DecisionKind.clocks_set:
            changes = i.get("changes") or {}
            return "clocks set: " + (
                ", ".join(f"{name} {value}" for name, value in changes.items()) or "none changed"
            )
        case DecisionKind.platform_joined:
            platform = i.get("platform", "")
            return (
                f"{platform} back from its suspension"
                if i.get("back")
                else (f"{platform} brought in mid-crisis")
            )
        case DecisionKind.platform_suspended:
            return f"{i.get('platform', '')} suspended"
        case DecisionKind.imminent_threat_flagged:
            told = ", ".join(i.get("member_states", [])) or "no Member State named"
            return f"imminent threat to life, for {told}: {i.get('text', '')}"
        case DecisionKind.situation_updated:
            return f"situational update: {i.get('text', '')}"
        case DecisionKind.protocol_linked:
            link = i.get("link") or {}
            return (
                f"{_protocol_name(link)} linked: {link.get('reference', '')}, activated"
                f" {_said_at(link.get('activated_at'))}"
            )
        case DecisionKind.content_added:
            return f"{len(_item_numbers(i))} item(s) added"
        case DecisionKind.removal_order_issued:
            order = i.get("order") or {}
            return (
                f"removal order {order.get('reference', '')} to {order.get('platform', '')}:"
                f" {len(_item_numbers(i))} item(s)"
            )
        case DecisionKind.scrutiny_requested:
            due = i.get("decide_by", "")
            return f"scrutiny of order {i.get('order', '')} requested, decision due {due}"
        case DecisionKind.scrutiny_decided:
            asked = " on request" if i.get("requested") else ""
            return f"order {i.get('order', '')} scrutinised{asked}: {i.get('outcome', '')}"
        case DecisionKind.scrutiny_window_closed:
            return f"scrutiny window of order {i.get('order', '')} closed"
        case DecisionKind.scrutiny_overdue:
            return f"scrutiny of order {i.get('order', '')} overdue, was due {i.get('due', '')}"
        case DecisionKind.order_clarified:
            return f"order {i.get('order', '')} clarified by its issuer"
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
            tasks = "open tasks withdrawn" if i.get("withdraw_open_tasks") else "tasks keep running"
            return f"the activation lapsed unrenewed; {tasks}" if is_lapse(d) else tasks
        case DecisionKind.review_started:
            return f"review due {i.get('review_due', '')}"
        case DecisionKind.review_input:
            return f"review input ({len(str(i.get('text', '')))} characters)"
        case DecisionKind.assessment_reminder | DecisionKind.assessment_escalated:
            return f"activation decision was due {i.get('due', '')}"
        case _:
            return PHASE_OF.get(d.kind, str(d.kind))

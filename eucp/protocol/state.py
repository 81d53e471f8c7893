"""Workflow state (carried across continue-as-new) and the views that queries return."""

from __future__ import annotations

import base64
import zlib
from collections import Counter
from datetime import datetime

from pydantic import BaseModel, Field

from eucp.protocol.clocks import SlaSettings
from eucp.protocol.deadlines import Deadline, deadline_of
from eucp.protocol.identifiers import IndexSnapshot
from eucp.protocol.incident import Assessment, IncidentReport, LinkedProtocol
from eucp.protocol.orders import OrderRecord
from eucp.protocol.participants import Participant, ParticipantKind
from eucp.protocol.phases import Phase
from eucp.protocol.refusal import Refusal, RefusalKind
from eucp.protocol.tasks import ContentItem, Stage, Task, TaskState


class PhaseChange(BaseModel):
    phase: Phase
    at: datetime
    by: str
    reason: str | None = None


class Counters(BaseModel):
    """Numbers that make decision and delivery ids unique and replay-stable."""

    decisions: int = 0
    notices: int = 0


class PlatformSummary(BaseModel):
    """A platform's tasks by state, its missed deadlines and escalations.

    A missed deadline is either legal (a removal order's hour, TCO Art. 3(3)) or a target of
    the protocol (any acknowledge-within, a voluntary referral's act-within): the `legal_*` and
    `*targets*` fields count them apart; `open_breaches` and `breaches` count both."""

    platform_id: str
    tasks: int = 0
    by_state: dict[TaskState, int] = Field(default_factory=dict)
    open_breaches: list[str] = Field(
        default_factory=list, description="tasks with a deadline passed and its clock running"
    )
    breaches: int = Field(default=0, description="task clocks that missed their deadline")
    escalations: int = 0
    open_legal_deadlines: list[str] = Field(
        default_factory=list,
        description="tasks whose removal-order hour has passed, the clock still running",
    )
    open_targets: list[str] = Field(
        default_factory=list, description="tasks with a target passed, the clock still running"
    )
    legal_deadlines_missed: int = Field(
        default=0, description="removal-order hours missed (TCO Art. 3(3))"
    )
    targets_missed: int = Field(
        default=0, description="acknowledge-within and voluntary act-within times missed"
    )
    exercise: bool = Field(default=False, description="an exercise's: out of real figures")


class CrisisState(BaseModel):
    """Everything a CrisisWorkflow run knows; the next run starts from it."""

    incident_id: str
    report: IncidentReport
    participants: list[Participant]
    sla: SlaSettings
    pdq_match_distance: int = 31
    pdq_min_quality: int = 50
    phase: Phase = Phase.reported
    phases: list[PhaseChange] = Field(default_factory=list)
    assessment: Assessment | None = None
    assessment_stage: Stage = Stage.on_time
    activation_expires: datetime | None = Field(
        default=None, description="when the activation lapses unless renewed"
    )
    lapse_reminded: bool = False
    platforms: list[str] = Field(default_factory=list)
    items: int = 0
    # the items that are tasks for some platforms only (orders, bound and named identifiers),
    # by number: a platform may not learn of another's, even that it exists
    restricted: dict[int, list[str]] = Field(default_factory=dict)
    index: IndexSnapshot = IndexSnapshot()
    false_positives: list[int] = Field(default_factory=list)
    # removal orders issued by authorities, by reference: whom they bind and their scrutiny
    orders: dict[str, OrderRecord] = Field(default_factory=dict)
    suspended: list[str] = Field(
        default_factory=list, description="platforms whose participation is suspended"
    )
    linked: list[LinkedProtocol] = Field(default_factory=list)
    threatened: list[str] = Field(
        default_factory=list, description="Member States named in an imminent-threat flag"
    )
    review_inputs: int = 0
    review_due: datetime | None = None
    finals: dict[str, PlatformSummary] = Field(default_factory=dict)
    counters: Counters = Counters()
    # the latest answers by request id, so a call retried after a continue-as-new changes
    # nothing (Temporal deduplicates Update ids within one run only)
    answered: dict[str, Answer] = Field(default_factory=dict)

    def ids_of(self, kind: ParticipantKind) -> list[str]:
        return [p.id for p in self.participants if p.kind is kind]

    @property
    def taking_part(self) -> list[str]:
        """The participating platforms whose participation is not suspended."""
        return [p for p in self.platforms if p not in self.suspended]

    def concerns(self, authority: Participant) -> bool:
        """Whether a Member State's authority has a part in the incident: its State is
        affected or named in an imminent-threat flag, it reported the incident, or it issued
        or hosts one of its orders."""
        if authority.kind is not ParticipantKind.member_state:
            return False
        return (
            authority.country in self.report.affected_member_states
            or authority.country in self.threatened
            or authority.id == self.report.reporter
            or any(
                o.issuer == authority.id
                or (o.cross_border and o.host_member_state == authority.country)
                for o in self.orders.values()
            )
        )

    @property
    def reported_at(self) -> datetime:
        return self.phases[0].at


class CrisisStatus(BaseModel):
    """The `status` query: where the crisis stands."""

    incident_id: str
    title: str
    phase: Phase
    phases: list[PhaseChange]
    assessment: Assessment | None
    assessment_overdue: bool
    platforms: list[str]
    items: int
    false_positives: list[int]
    review_inputs: int
    decisions: int
    finals: dict[str, PlatformSummary]
    orders: list[OrderRecord] = Field(default_factory=list)
    suspended: list[str] = Field(default_factory=list)
    linked: list[LinkedProtocol] = Field(default_factory=list)
    exercise: bool = False
    activation_expires: datetime | None = Field(
        default=None, description="while active: when the activation lapses unless renewed"
    )


class PlatformState(BaseModel):
    """Everything a PlatformTasksWorkflow run knows; the next run starts from it."""

    incident_id: str
    platform_id: str
    coordinators: list[str]
    sla: SlaSettings
    tasks: dict[str, Task] = Field(default_factory=dict)
    breaches: int = 0
    escalations: int = 0
    finishing: bool = False
    counters: Counters = Counters()
    exercise: bool = False
    # the latest reports' answers by request id, for a retry that reaches the next run
    answered: dict[str, ReportAnswer] = Field(default_factory=dict)

    def summary(self, now: datetime) -> PlatformSummary:
        """The figures as they stand at `now`. Missed deadlines are told apart by each task
        clock's basis and how far up the ladder it went, so runs started before the split
        was recorded count the same way."""
        overdue: dict[Deadline, list[str]] = {d: [] for d in Deadline}
        any_overdue: list[str] = []
        missed: Counter[Deadline] = Counter()
        for t in self.tasks.values():
            passed: set[Deadline] = set()
            for clock, due, stage in t.clocks(self.sla):
                deadline = deadline_of(clock, t.basis.kind)
                missed[deadline] += stage is not Stage.on_time  # rung 1 is climbed once
                if due is not None and due <= now:
                    passed.add(deadline)
            for deadline in passed:
                overdue[deadline].append(t.task_id)
            if passed:
                any_overdue.append(t.task_id)
        return PlatformSummary(
            platform_id=self.platform_id,
            tasks=len(self.tasks),
            by_state=dict(Counter(t.state for t in self.tasks.values())),
            open_breaches=any_overdue,
            breaches=self.breaches,
            escalations=self.escalations,
            open_legal_deadlines=overdue[Deadline.legal],
            open_targets=overdue[Deadline.target],
            legal_deadlines_missed=missed[Deadline.legal],
            targets_missed=missed[Deadline.target],
            exercise=self.exercise,
        )


class PlatformStart(BaseModel):
    """Input of a PlatformTasksWorkflow run: its state, given as it is or packed, and the items
    it starts with, given directly (first versions) or as the recorded decisions that admitted
    them."""

    state: PlatformState | None = Field(
        default=None, description="the run's state, unless it comes `packed`"
    )
    items: list[ContentItem] = Field(default_factory=list)
    decisions: list[str] = Field(default_factory=list)
    joined: bool = Field(
        default=False, description="brought in mid-crisis: it reads the open content itself"
    )
    packed: str | None = Field(
        default=None,
        description="the state as zlib-compressed JSON in base64, from the run before (`carrying`)",
    )

    @classmethod
    def carrying(cls, state: PlatformState) -> PlatformStart:
        """The next run's input, its state packed. Ten thousand tasks are 5.4 MB of JSON, past
        the 2 MB Temporal takes of one payload; packed, about 0.2 MB. Without a `state` field,
        an input a worker of an earlier version cannot read fails its workflow task there
        (until a worker of this version takes it), rather than starting a run with no tasks."""
        packed = zlib.compress(state.model_dump_json().encode(), 1)
        return cls(packed=base64.b64encode(packed).decode("ascii"))

    def unpacked(self) -> PlatformState:
        """The state this run starts from."""
        if self.packed is not None:
            return PlatformState.model_validate_json(zlib.decompress(base64.b64decode(self.packed)))
        if self.state is None:
            raise ValueError("a platform run's input holds its state, as it is or packed")
        return self.state


class TaskPage(BaseModel):
    tasks: list[Task]
    total: int
    next_offset: int | None


class TaskQuery(BaseModel):
    state: TaskState | None = None
    offset: int = Field(default=0, ge=0)
    limit: int = Field(default=100, ge=1, le=1000)


class CrisisResult(BaseModel):
    """What a CrisisWorkflow returns when it ends: the summary for the review."""

    incident_id: str
    phase: Phase
    phases: list[PhaseChange]
    items: int
    decisions: int
    platforms: dict[str, PlatformSummary]


class Answer(BaseModel):
    """What an accepted coordinator or participant Update returns."""

    phase: Phase
    decisions: list[str] = Field(default_factory=list, description="ledger decision ids")
    accepted_items: list[int] = Field(default_factory=list)
    duplicates: int = 0
    low_quality: int = 0


class Rejection(BaseModel):
    """A refusal inside a batch answer: the same three parts as a refused Update's details."""

    field: str
    rule: str
    refusal: RefusalKind = RefusalKind.conflict

    def as_refusal(self) -> Refusal:
        return Refusal(self.field, self.rule, self.refusal)


class SightingOutcome(BaseModel):
    """One merged sighting call's answer, or why it was refused."""

    answer: Answer | None = None
    rejection: Rejection | None = None


class SightingAnswers(BaseModel):
    """The merged sightings Update's answer: one outcome per call, in the order sent."""

    outcomes: list[SightingOutcome]


class ReportAnswer(BaseModel):
    """What a platform's bulk task report returns, task by task."""

    changed: list[str] = Field(default_factory=list)
    unchanged: list[str] = Field(default_factory=list)
    refused: dict[str, str] = Field(
        default_factory=dict,
        description="tasks whose state moved on between validation and handling, with the rule",
    )


class IncidentStatus(BaseModel):
    """The crisis and each platform's tasks, read in one go."""

    crisis: CrisisStatus
    platforms: dict[str, PlatformSummary]


class Listing(BaseModel):
    """An incident in a list: its id, its workflow's status and when it started."""

    incident_id: str
    status: str
    started_at: str | None
    exercise: bool = False

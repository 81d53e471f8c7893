"""What the audit checks report: findings, and one report model per `eucp audit` command."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field
from temporalio.client import WorkflowHistory

from eucp.protocol.clocks import SlaSettings
from eucp.protocol.deadlines import Deadline
from eucp.protocol.decisions import DecisionKind, LedgerRow
from eucp.protocol.incident import LinkedProtocol
from eucp.protocol.orders import OrderRecord, ScrutinyStage
from eucp.protocol.phases import Phase
from eucp.protocol.state import PhaseChange
from eucp.protocol.tasks import TaskState
from eucp.runtime.ledger import ChainReport


class Check(StrEnum):
    """Which check found a problem."""

    bundle = "bundle"
    history = "history"
    replay = "replay"
    ledger = "ledger"
    timeline = "timeline"
    protocol = "protocol"


class Finding(BaseModel):
    """One problem an auditor must look at: which check, where, and what is wrong."""

    model_config = ConfigDict(frozen=True)

    check: Check
    subject: str
    problem: str

    def __str__(self) -> str:
        return f"[{self.check}] {self.subject}: {self.problem}"


class Report(BaseModel):
    """What every audit report has: its incident, where the evidence came from, the findings."""

    incident_id: str
    source: str = Field(description="'temporal', 'ledger', both, or 'bundle PATH'")
    findings: list[Finding] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        return not self.findings


@dataclass
class UnreadableRow:
    """A ledger row that no longer decodes: `position` is its place among the rows read."""

    position: int
    where: str
    error: str

    @classmethod
    def of(cls, position: int, where: str, err: Exception) -> UnreadableRow:
        """From the error's first line: pydantic's messages go on for many."""
        text = str(err).strip()
        return cls(position, where, text.splitlines()[0] if text else type(err).__name__)


@dataclass
class Evidence:
    """An incident's histories (every run, ordered) and ledger rows, from Temporal and the
    ledger or from a bundle; `findings` are the problems met while collecting them."""

    incident_id: str
    source: str
    histories: list[WorkflowHistory] = field(default_factory=list)
    rows: list[LedgerRow] = field(default_factory=list)
    unreadable: list[UnreadableRow] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


# ---- replay --------------------------------------------------------------------------------


class Divergence(BaseModel):
    """Where the current code stopped reproducing a history."""

    message: str
    event_id: int | None = None
    event_type: str | None = None
    located_by: Literal["message", "bisection"] | None = Field(
        default=None,
        description="how event_id was found: named in the error, or by replaying prefixes",
    )


class RunReplay(BaseModel):
    """The replay of one run of one workflow."""

    workflow_id: str
    run_id: str
    workflow_type: str
    events: int
    divergence: Divergence | None = None


class ReplayReport(Report):
    runs: list[RunReplay] = Field(default_factory=list)


# ---- timeline ------------------------------------------------------------------------------


class EntryStatus(StrEnum):
    """How a decision in history compares with the ledger."""

    ok = "ok"
    differs = "differs"
    missing_in_ledger = "missing_in_ledger"
    missing_in_history = "missing_in_history"
    pending = "pending"
    """scheduled in a history whose ledger write has not completed yet (a running workflow)"""


class TimelineEntry(BaseModel):
    """One decision, as history and the ledger show it."""

    decision_id: str
    at: datetime
    kind: DecisionKind
    actor: str
    reason: str | None = None
    seq: int | None = Field(default=None, description="ledger seq, when in the ledger")
    workflow_id: str | None = None
    run_id: str | None = None
    event_id: int | None = Field(default=None, description="its ActivityTaskScheduled event")
    status: EntryStatus
    note: str | None = None


class Breach(BaseModel):
    """A missed task deadline whose clock was still running: a legal deadline (a removal
    order's hour, TCO Art. 3(3)) or a target of the protocol."""

    platform_id: str
    task_id: str
    clock: str
    deadline: Deadline = Deadline.target
    due: str | None = None
    backup_told: bool = False
    escalated: bool = False


class OrderState(OrderRecord):
    """A removal order as its decisions left it (the crisis's own record of it, rebuilt), with
    where its scrutiny stands (TCO Art. 4) and the reinstatement tasks of its content."""

    reinstatements: dict[str, TaskState] = Field(
        default_factory=dict, description="reinstatement task id -> its state (Art. 4(7))"
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def scrutiny(self) -> ScrutinyStage:
        """`stage`, written out with the rest."""
        return self.stage


class IncidentState(BaseModel):
    """The incident as its decisions up to `at` left it."""

    incident_id: str
    at: datetime | None = Field(description="None: after every decision")
    decisions: int
    title: str | None = None
    reporter: str | None = None
    phase: Phase | None = None
    phases: list[PhaseChange] = Field(default_factory=list)
    assessment_overdue: bool = False
    items: int = 0
    tasks: dict[str, dict[TaskState, int]] = Field(
        default_factory=dict, description="platform -> tasks by state"
    )
    open_breaches: list[Breach] = Field(default_factory=list)
    orders: list[OrderState] = Field(
        default_factory=list, description="removal orders issued by authorities, in issue order"
    )
    exercise: bool = Field(default=False, description="a rehearsal of the protocol, not a crisis")
    platforms: list[str] = Field(
        default_factory=list,
        description="the platforms taking part: named at the activation, then brought in",
    )
    suspended: list[str] = Field(
        default_factory=list, description="platforms whose participation is suspended"
    )
    clocks: SlaSettings | None = Field(
        default=None,
        description="the clocks in force, as recorded at the report and at each change; "
        "None when the incident was reported before they were recorded",
    )
    activation_expires: datetime | None = Field(
        default=None, description="when the activation lapses unless renewed"
    )
    linked: list[LinkedProtocol] = Field(
        default_factory=list, description="other protocols' activations for the same event"
    )


class TimelineReport(Report):
    entries: list[TimelineEntry] = Field(default_factory=list)
    anchors_checked: int = Field(
        default=0,
        description="ledger heads recorded in history and found in the ledger as they were",
    )
    state: IncidentState | None = None


# ---- verify, export, list ------------------------------------------------------------------


class VerifyReport(Report):
    chain: ChainReport


class ExportReport(Report):
    path: str
    manifest_sha256: str
    histories: int
    rows: int
    members: int


class IncidentListing(BaseModel):
    """One incident as Temporal's visibility and the ledger know it."""

    incident_id: str
    title: str | None = None
    phase: Phase | None = None
    reporter: str | None = None
    reported_at: datetime | None = None
    closed_at: datetime | None = Field(default=None, description="when it reached a final phase")
    workflow_status: str | None = Field(
        default=None, description="Temporal status of the latest crisis run; None: not in Temporal"
    )
    runs: int = 0
    ledger_rows: int = 0
    exercise: bool = Field(default=False, description="a rehearsal of the protocol, not a crisis")


class ListReport(BaseModel):
    incidents: list[IncidentListing]
    findings: list[Finding] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        return not self.findings

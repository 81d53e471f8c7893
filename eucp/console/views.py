"""What the console's pages show, shaped from the service's reads: pure, no I/O, no clock."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from eucp.console.reads import Listed
from eucp.protocol.decisions import DecisionKind, LedgerRow, is_lapse
from eucp.protocol.incident import PROTOCOL_NAMES, Assessment, Criterion, LinkedProtocol
from eucp.protocol.orders import OrderRecord, ScrutinyStage, in_words
from eucp.protocol.phases import Phase
from eucp.protocol.search import IncidentSearch
from eucp.protocol.state import IncidentStatus, PlatformSummary
from eucp.protocol.tasks import RESOLVED, TaskState, ranges
from eucp.review.figures import TASK_KINDS, PlatformFigures, ReviewFigures, summarise

CRITERIA: dict[str, str] = {
    "real_world_event": "Content stems from an ongoing or recent real-world event",
    "depicts_harm": "It depicts harm to life or physical integrity, or calls for imminent harm",
    "intimidation": "It aims at, or has the effect of, seriously intimidating a population",
    "tve_link": "A link, or a reasonably suspected link, to terrorism or violent extremism",
    "multi_platform_virality": "Exponential, viral spread across multiple services is expected",
}
"""The five checks of an online crisis situation (Europol Reg. as amended by 2022/991)."""

BAR_ORDER = (
    TaskState.removed,
    TaskState.not_found,
    TaskState.declined,
    TaskState.withdrawn,
    TaskState.reinstated,
    TaskState.cannot_comply,
    TaskState.acknowledged,
    TaskState.assigned,
)
"""A platform's progress bar: resolved states first, then the open ones."""


GOVERNANCE: dict[DecisionKind, str] = {
    DecisionKind.situation_updated: "Situational update",
    DecisionKind.imminent_threat_flagged: "Imminent threat to life",
    DecisionKind.activation_renewed: "Activation renewed",
    DecisionKind.activation_expiring: "Activation lapsing",
    DecisionKind.clocks_set: "Clocks set",
    DecisionKind.platform_joined: "Platform brought in",
    DecisionKind.platform_suspended: "Platform suspended",
    DecisionKind.protocol_linked: "Protocol linked",
}
"""The decisions of an incident's course that change no phase, as its situation log names
them (the phase changes are its timeline); with `LAPSED`, the de-escalation of a lapse."""
LAPSED = "Activation lapsed"

SORTS: dict[str, Callable[[IncidentRow], Any]] = {
    "incident": lambda r: r.incident_id,
    "title": lambda r: r.title.lower(),
    "phase": lambda r: list(Phase).index(r.phase) if r.phase else len(Phase),
    "age": lambda r: -(r.reported_at or datetime.max.replace(tzinfo=UTC)).timestamp(),
    "items": lambda r: r.items,
    "open": lambda r: r.open_tasks,
    "breached": lambda r: r.breached,
}
"""The incidents list's sort keys, each ascending (`age`: youngest first)."""


# ---- values as text ------------------------------------------------------------------------


def span(value: timedelta | None) -> str:
    """A duration as people read it: `42s`, `3m 05s`, `2h 07m`, `1d 4h`; `-` for none."""
    if value is None:
        return "-"
    seconds = max(0, int(value.total_seconds()))
    minutes, secs = divmod(seconds, 60)
    hours, mins = divmod(minutes, 60)
    days, hrs = divmod(hours, 24)
    if days:
        return f"{days}d {hrs}h"
    if hours:
        return f"{hours}h {mins:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def when(value: datetime | None) -> str:
    """A time in UTC to the second."""
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# ---- the incidents list --------------------------------------------------------------------


@dataclass(frozen=True)
class IncidentRow:
    incident_id: str
    title: str
    phase: Phase | None  # None: the workflow did not answer its query
    workflow_status: str
    reported_at: datetime | None
    items: int
    platforms: int
    open_tasks: int
    breached: int
    exercise: bool = False


def open_tasks(summary: PlatformSummary) -> int:
    return sum(n for state, n in summary.by_state.items() if state not in RESOLVED)


def incident_row(listed: Listed) -> IncidentRow:
    s = listed.status
    if s is None:
        return IncidentRow(
            listed.incident_id,
            "",
            None,
            listed.workflow_status,
            listed.started_at,
            0,
            0,
            0,
            0,
            listed.exercise,
        )
    c = s.crisis
    return IncidentRow(
        incident_id=listed.incident_id,
        title=c.title,
        phase=c.phase,
        workflow_status=listed.workflow_status,
        reported_at=c.phases[0].at if c.phases else listed.started_at,
        items=c.items,
        platforms=len(c.platforms),
        open_tasks=sum(open_tasks(p) for p in s.platforms.values()),
        breached=sum(len(p.open_breaches) for p in s.platforms.values()),
        exercise=c.exercise,
    )


# the list's exercise filter: its value in the query string -> the exercise flag it keeps
EXERCISES: dict[str, bool] = {"exercise": True, "real": False}


@dataclass(frozen=True)
class ListQuery:
    """How the list is filtered and sorted (the page's query string)."""

    phase: str = ""
    text: str = ""
    breached_only: bool = False
    sort: str = "age"
    descending: bool = False
    exercise: str = ""  # "" any, "exercise" exercises only, "real" no exercise (`EXERCISES`)

    def toggled(self, key: str) -> dict[str, str]:
        """The query string of a column header: sort by it, flipping the order if it is current."""
        descending = not self.descending if key == self.sort else False
        return {
            k: v
            for k, v in {
                "phase": self.phase,
                "q": self.text,
                "breached": "1" if self.breached_only else "",
                "exercise": self.exercise,
                "sort": key,
                "order": "desc" if descending else "",
            }.items()
            if v
        }

    def search(self) -> IncidentSearch:
        """What the visibility store can narrow the list to before any status is read: the
        phase (as indexed: `select` checks it again against the status) and the exercise flag.
        An unreadable incident has no phase to find it by, so that filter reads them all."""
        phase = Phase(self.phase) if self.phase in {p.value for p in Phase} else None
        return IncidentSearch(phase=phase, exercise=EXERCISES.get(self.exercise))


def select(rows: Iterable[IncidentRow], query: ListQuery) -> list[IncidentRow]:
    """The rows the query lets through, in its order."""
    text = query.text.strip().lower()
    kept = [
        r
        for r in rows
        if (not query.phase or (r.phase or "unreadable") == query.phase)
        and (not text or text in r.incident_id.lower() or text in r.title.lower())
        and (not query.breached_only or r.breached > 0)
        and (EXERCISES.get(query.exercise) in (None, r.exercise))
    ]
    key = SORTS.get(query.sort, SORTS["age"])
    return sorted(kept, key=key, reverse=query.descending)


# ---- one incident --------------------------------------------------------------------------


@dataclass(frozen=True)
class CriterionRow:
    name: str
    label: str
    criterion: Criterion


def criteria(assessment: Assessment | None) -> list[CriterionRow]:
    """The five checks with their status and evidence (unknown before any assessment)."""
    current = assessment or Assessment()
    return [CriterionRow(name, label, getattr(current, name)) for name, label in CRITERIA.items()]


@dataclass(frozen=True)
class Segment:
    state: TaskState
    count: int
    percent: float


@dataclass(frozen=True)
class PlatformRow:
    platform_id: str
    tasks: int
    open_tasks: int
    segments: list[Segment]
    acknowledge_median: str
    acknowledge_p90: str
    open_breaches: int
    """tasks with any deadline passed now, legal or target"""
    open_legal: int
    """of those, tasks whose removal-order hour has passed"""
    legal_deadlines_missed: int
    targets_missed: int
    escalations: int
    suspended: Happening | None = None
    """its participation suspended now (the status), with the suspension as recorded"""
    joined: Happening | None = None
    """brought in after the activation, as recorded"""


def platform_rows(
    status: IncidentStatus, review: ReviewFigures | None, course: Sequence[LedgerRow] = ()
) -> list[PlatformRow]:
    """Each participating platform's tasks by state (live, from its workflow), its times to
    acknowledge (from the ledger, as the review report defines them) and how it takes part:
    suspended now (the status says which, the ledger's course why) or brought in later."""
    measured: dict[str, PlatformFigures] = (
        {p.platform_id: p for p in review.platforms} if review else {}
    )
    suspensions: dict[str, Happening] = {}
    joins: dict[str, Happening] = {}
    for row in course:
        platform = str(row.decision.inputs.get("platform", ""))
        if row.decision.kind is DecisionKind.platform_suspended:
            suspensions[platform] = happening(row)  # the latest
        elif row.decision.kind is DecisionKind.platform_joined and not row.decision.inputs.get(
            "back"
        ):
            joins.setdefault(platform, happening(row))
    rows = []
    for platform_id in status.crisis.platforms:
        summary = status.platforms.get(platform_id, PlatformSummary(platform_id=platform_id))
        total = summary.tasks or 1
        ack = measured[platform_id].acknowledge if platform_id in measured else None
        rows.append(
            PlatformRow(
                platform_id=platform_id,
                tasks=summary.tasks,
                open_tasks=open_tasks(summary),
                segments=[
                    Segment(state, n, 100 * n / total)
                    for state in BAR_ORDER
                    if (n := summary.by_state.get(state, 0))
                ],
                acknowledge_median=span(ack.median if ack else None),
                acknowledge_p90=span(ack.p90 if ack else None),
                open_breaches=len(summary.open_breaches),
                open_legal=len(summary.open_legal_deadlines),
                legal_deadlines_missed=summary.legal_deadlines_missed,
                targets_missed=summary.targets_missed,
                escalations=summary.escalations,
                suspended=(
                    suspensions.get(platform_id, Happening.unrecorded(platform_id))
                    if platform_id in status.crisis.suspended
                    else None
                ),
                joined=joins.get(platform_id),
            )
        )
    return rows


@dataclass(frozen=True)
class DecisionRow:
    seq: int
    at: datetime
    kind: str
    actor: str
    reason: str
    summary: str


def decision_rows(rows: Sequence[LedgerRow]) -> list[DecisionRow]:
    """Ledger rows as the decisions list shows them (task-level ones name their task)."""
    out = []
    for row in rows:
        d = row.decision
        summary = str(d.inputs.get("task_id", "")) if d.kind in TASK_KINDS else summarise(row)
        out.append(DecisionRow(row.seq, d.at, d.kind, d.actor.id, d.reason or "", summary))
    return out


# ---- governance: the situation, who takes part, the protocols linked -----------------------


@dataclass(frozen=True)
class Happening:
    """A decision of the situation log: what happened, when, by whom, why."""

    seq: int
    at: datetime | None
    kind: str
    label: str
    by: str
    what: str
    reason: str
    member_states: tuple[str, ...] = ()

    @classmethod
    def unrecorded(cls, platform: str) -> Happening:
        """A suspension the status tells of, its decision past what was read of the ledger."""
        kind = DecisionKind.platform_suspended
        return cls(0, None, kind, GOVERNANCE[kind], "", platform, "")


def happening(row: LedgerRow) -> Happening:
    d = row.decision
    i = d.inputs
    states: tuple[str, ...] = ()
    match d.kind:
        case DecisionKind.situation_updated:
            what = str(i.get("text", ""))
        case DecisionKind.imminent_threat_flagged:
            what = str(i.get("text", ""))
            states = tuple(str(s) for s in i.get("member_states", []))
        case DecisionKind.activation_renewed:
            expires = i.get("expires")
            what = f"until {when(datetime.fromisoformat(expires))}" if expires else ""
        case DecisionKind.clocks_set:
            changes = i.get("changes") or {}
            what = "; ".join(f"{n.replace('_', ' ')}: {t}" for n, t in changes.items())
        case DecisionKind.platform_joined:
            platform = str(i.get("platform", ""))
            what = f"{platform}, back from a suspension" if i.get("back") else platform
        case DecisionKind.platform_suspended:
            what = str(i.get("platform", ""))
        case DecisionKind.protocol_linked:
            link = LinkedProtocol.model_validate(i["link"]) if "link" in i else None
            what = linked_in_words(link) if link else ""
        case DecisionKind.de_escalated:
            what = "the crisis de-escalated by itself"
        case _:  # activation_expiring: its reason says when
            what = ""
    label = LAPSED if is_lapse(row.decision) else GOVERNANCE.get(d.kind, str(d.kind))
    return Happening(row.seq, d.at, d.kind, label, d.actor.id, what, d.reason or "", states)


def situation(course: Sequence[LedgerRow]) -> list[Happening]:
    """The situation log: updates, imminent threats, renewals and lapses, clocks, platforms in
    and out, protocols linked; newest first."""
    return [
        happening(row)
        for row in reversed(course)
        if row.decision.kind in GOVERNANCE or is_lapse(row.decision)
    ]


def linked_in_words(link: LinkedProtocol) -> str:
    name = f" ({link.name})" if link.name else ""
    return f"{PROTOCOL_NAMES[link.protocol]}{name} {link.reference}"


# ---- removal orders ------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderRow:
    """A removal order as the incident page shows it: whom it binds, and its scrutiny."""

    reference: str
    issuing_member_state: str
    issuer: str
    platform: str
    host_member_state: str
    copy_to: list[str]
    items: list[int]
    received_at: datetime
    stage: ScrutinyStage
    scrutiny: str
    """where its scrutiny (TCO Art. 4) stands, in the CLI's words, times as the console's"""
    scrutiny_note: str
    """who asked for scrutiny or decided it, and why"""
    confidential: bool
    clarifications: int
    in_effect: bool

    @property
    def items_text(self) -> str:
        """As people read them: `1-3, 5`."""
        return ranges(self.items)

    @property
    def items_input(self) -> str:
        """As the withdraw content form reads them: `1 2 3 5`."""
        return " ".join(str(n) for n in sorted(self.items))


def scrutiny(order: OrderRecord) -> str:
    """`eucp crisis orders`' words for the order's scrutiny, its times as the console's."""
    return in_words(order, when)


def scrutiny_note(order: OrderRecord) -> str:
    if order.decision is not None:
        return f"decided by {order.decision.by}: {order.decision.reasons}"
    if order.request is not None:
        return f"asked by {order.request.by}: {order.request.reason}"
    return ""


def order_rows(orders: Sequence[OrderRecord]) -> list[OrderRow]:
    """The incident's removal orders, in the order they were issued."""
    return [
        OrderRow(
            reference=o.reference,
            issuing_member_state=o.issuing_member_state,
            issuer=o.issuer,
            platform=o.platform,
            host_member_state=o.host_member_state,
            copy_to=list(o.copy_to),
            items=list(o.items),
            received_at=o.received_at,
            stage=o.stage,
            scrutiny=scrutiny(o),
            scrutiny_note=scrutiny_note(o),
            confidential=o.confidential,
            clarifications=o.clarifications,
            in_effect=o.in_effect,
        )
        for o in orders
    ]

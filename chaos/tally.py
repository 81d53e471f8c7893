"""Pure bookkeeping: what the clients were told was accepted, against what the ledger holds.

A coordinator's or participant's accepted action answers with its decision ids; a platform's
bulk report answers with the tasks it changed, so each changed task counts as the logical
decision (task, kind) its outcome records. A decision is lost when it was accepted but has no
row, wherever it stands in its scope (the last one of a scope included); it is duplicated when
its id, or the logical decision it stands for, has more than one. A decision no client was told
of is missed by its number: below its scope's highest row, or below the count the workflow
itself reports having made, when the caller knows it (the last of a scope included).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from eucp.protocol.decisions import DecisionKind, LedgerRow
from eucp.protocol.participants import ParticipantKind
from eucp.protocol.state import Answer, ReportAnswer
from eucp.protocol.tasks import DECISION_OF_OUTCOME, TaskReport

# decisions an incident takes once at most: a second one is a duplicate whatever its id
ONCE = frozenset(
    {
        DecisionKind.reported,
        DecisionKind.activated,
        DecisionKind.not_activated,
        DecisionKind.review_started,
        DecisionKind.closed,
    }
)
# decisions about one task: at most one of each kind per task (and per clock for SLA rungs)
PER_TASK = frozenset(
    {
        *DECISION_OF_OUTCOME.values(),
        DecisionKind.task_withdrawn,
        DecisionKind.sla_breached,
        DecisionKind.sla_backup_told,
        DecisionKind.sla_escalated,
    }
) - {
    DecisionKind.task_resumed,
    DecisionKind.task_cannot_comply,
}  # a task may pause and resume more than once


def task_key(task_id: str, kind: DecisionKind, clock: str | None = None) -> str:
    """The logical decision `kind` on one task (on one of its clocks for SLA rungs)."""
    return f"{kind}:{task_id}" + (f":{clock}" if clock else "")


def logical_key(row: LedgerRow) -> str | None:
    """What a row decides, independent of its id, when that may be decided only once."""
    d = row.decision
    if d.kind in ONCE:
        return str(d.kind)
    task_id = d.inputs.get("task_id")
    if d.kind in PER_TASK and isinstance(task_id, str):
        clock = d.inputs.get("clock")
        return task_key(task_id, d.kind, clock if isinstance(clock, str) else None)
    return None


@dataclass
class Accepted:
    """Every decision an answer told a client was accepted, as keys a ledger row can match,
    and the content items the answers numbered, each with who brought it in (it is a task for
    every platform but the one that sighted it)."""

    keys: set[str] = field(default_factory=set)
    items: dict[int, str] = field(default_factory=dict)
    answers: int = 0

    def answer(self, answer: Answer, by: str) -> None:
        """`answer` given to participant `by`."""
        self.answers += 1
        self.keys.update(answer.decisions)
        self.items.update(dict.fromkeys(answer.accepted_items, by))

    def reports(self, reports: Sequence[TaskReport], answer: ReportAnswer) -> None:
        self.answers += 1
        outcome = {r.task_id: r.outcome for r in reports}
        self.keys.update(task_key(t, DECISION_OF_OUTCOME[outcome[t]]) for t in answer.changed)


@dataclass(frozen=True)
class Tally:
    """Accepted decisions against ledger rows for one incident (or several, summed)."""

    accepted: int
    in_ledger: int
    lost: list[str]
    duplicated: list[str]
    gaps: list[str]
    """Decision numbers missing from a workflow's 1, 2, 3, ...: a decision lost before any
    client heard of it (the workflow numbers each one before the ledger write)."""
    unanswered: list[str]
    """Participants' decisions in the ledger that no answer accepted: a refused or lost
    request that was recorded all the same."""


def keys_of(row: LedgerRow) -> list[str]:
    keys = [row.decision.decision_id]
    logical = logical_key(row)
    if logical is not None and row.decision.kind not in ONCE:
        keys.append(logical)
    return keys


def tally(
    accepted: Accepted, rows: Iterable[LedgerRow], made: Mapping[str, int] | None = None
) -> Tally:
    """`made`: decisions each scope (`incident/scope`) says it made, where known: a missing
    number up to it is a gap even past the scope's highest row."""
    rows = list(rows)
    stored = {key for row in rows for key in keys_of(row)}
    ids = Counter(row.decision.decision_id for row in rows)
    logical = Counter(
        (row.incident_id, key) for row in rows if (key := logical_key(row)) is not None
    )
    duplicated = sorted(i for i, n in ids.items() if n > 1) + sorted(
        f"{incident}:{key}" for (incident, key), n in logical.items() if n > 1
    )
    return Tally(
        accepted=len(accepted.keys),
        in_ledger=len(rows),
        lost=sorted(accepted.keys - stored),
        duplicated=duplicated,
        gaps=gaps(ids, made or {}),
        unanswered=[
            row.decision.decision_id
            for row in rows
            if _answerable(row) and not set(keys_of(row)) & accepted.keys
        ],
    )


def _answerable(row: LedgerRow) -> bool:
    """A decision some answer must have accepted: a participant's own action on the crisis, or
    a platform's report on its task (not the report that opens the incident, not what the
    system decides, not a task withdrawn as a consequence of a coordinator's decision)."""
    d = row.decision
    scope = d.decision_id.rsplit("/", 2)[-2]
    if d.actor.kind is ParticipantKind.system or d.kind is DecisionKind.reported:
        return False
    return scope == "crisis" or d.actor.kind is ParticipantKind.platform


def gaps(decision_ids: Iterable[str], made: Mapping[str, int]) -> list[str]:
    """`incident/scope/n` ids whose number is missing between 1 and the scope's highest, or
    the number of decisions `made` says the scope made if that is higher."""
    numbered = []
    for decision_id in decision_ids:
        scope, _, number = decision_id.rpartition("/")
        if number.isdigit():
            numbered.append((scope, int(number)))
    return [f"{scope}/{n}" for scope, n in holes(numbered, made)]


def holes(
    numbered: Iterable[tuple[str, int]], made: Mapping[str, int] | None = None
) -> list[tuple[str, int]]:
    """(scope, n) for every n missing between 1 and the highest number seen in its scope, or
    the scope's count in `made` if that is higher (a scope in `made` with nothing seen too)."""
    numbers: dict[str, set[int]] = {scope: set() for scope in made or {}}
    for scope, n in numbered:
        numbers.setdefault(scope, set()).add(n)
    return [
        (scope, n)
        for scope, seen in sorted(numbers.items())
        for n in range(1, max(seen | {(made or {}).get(scope, 0)}) + 1)
        if n not in seen
    ]


def combine(tallies: Sequence[Tally]) -> Tally:
    """Several incidents' tallies as one line."""
    return Tally(
        accepted=sum(t.accepted for t in tallies),
        in_ledger=sum(t.in_ledger for t in tallies),
        lost=[x for t in tallies for x in t.lost],
        duplicated=[x for t in tallies for x in t.duplicated],
        gaps=[x for t in tallies for x in t.gaps],
        unanswered=[x for t in tallies for x in t.unanswered],
    )


def undelivered(delivered: Iterable[str]) -> list[str]:
    """Notifications missing from what the receivers accepted: delivery ids are
    `incident/scope/nK`, numbered 1, 2, 3, ... per scope, and a delivery given up on its
    primary route arrives as `.../nK/backup` instead. Returns `incident/scope/nK` of each
    number below a scope's highest that arrived on neither route."""
    numbered = []
    for delivery_id in delivered:
        scope, _, notice = delivery_id.removesuffix("/backup").rpartition("/")
        if notice.startswith("n") and notice[1:].isdigit():
            numbered.append((scope, int(notice[1:])))
    return [f"{scope}/n{n}" for scope, n in holes(numbered)]

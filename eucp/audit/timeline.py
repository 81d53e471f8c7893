"""Timeline: the decisions rebuilt from history, checked one by one against the ledger.

History holds each `record_decisions` call's input (the decisions) and its result (the ledger
head after the write). So the ledger must hold every decision history says was recorded, with
the same content, no decision history does not know, each workflow's decisions in the order it
made them, and at every head history saw the row with that hash. Pure: no I/O.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from eucp.audit.events import Batch, decision_batches, run_info
from eucp.audit.history import subject
from eucp.audit.models import Check, EntryStatus, Evidence, Finding, TimelineEntry, TimelineReport
from eucp.audit.reconstruct import reconstruct, scope_and_number
from eucp.protocol.decisions import Decision, LedgerRow

_PREVIEW = 80


def build_timeline(evidence: Evidence, at: datetime | None = None) -> TimelineReport:
    """The cross-checked timeline (entries up to `at` if given, findings over everything) and,
    with `at`, the incident's state at that moment."""
    incident_id = evidence.incident_id
    findings = list(evidence.findings)
    findings += [
        Finding(check=Check.ledger, subject=u.where, problem=f"cannot be read: {u.error}")
        for u in evidence.unreadable
    ]
    batches, problems = _batches(evidence)
    findings += problems
    in_history, problems = _history_decisions(batches)
    findings += problems
    entries = _entries(in_history, {r.decision.decision_id: r for r in evidence.rows})
    anchors, problems = _check_anchors(batches, evidence.rows)
    if not evidence.rows and not evidence.unreadable:  # one finding, not one per decision
        findings.append(
            Finding(
                check=Check.ledger,
                subject=incident_id,
                problem="the ledger has no rows for it (all deleted, or the wrong ledger?)",
            )
        )
    elif evidence.histories:  # else `assemble` already says the history is missing
        findings += [f for e in entries if (f := _entry_finding(e)) is not None]
        findings += problems
    findings += _check_order(incident_id, evidence.rows)
    decisions = _best_decisions(in_history, evidence.rows)
    everything = reconstruct(incident_id, decisions)
    findings += [
        Finding(
            check=Check.protocol, subject=decision_id, problem=f"against the protocol: {problem}"
        )
        for decision_id, problem in everything.problems
    ]
    return TimelineReport(
        incident_id=incident_id,
        source=evidence.source,
        findings=findings,
        entries=[e for e in entries if at is None or e.at <= at],
        anchors_checked=anchors,
        state=None if at is None else reconstruct(incident_id, decisions, at).state,
    )


def _batches(evidence: Evidence) -> tuple[list[Batch], list[Finding]]:
    batches: list[Batch] = []
    findings: list[Finding] = []
    for history in evidence.histories:
        found, problems = decision_batches(history)
        batches += found
        run_id = run_info(history).run_id
        findings += [
            Finding(
                check=Check.timeline,
                subject=subject(history.workflow_id, run_id, event_id),
                problem=problem,
            )
            for event_id, problem in problems
        ]
    return batches, findings


def _history_decisions(
    batches: Iterable[Batch],
) -> tuple[dict[str, tuple[Decision, Batch]], list[Finding]]:
    """Each decision id in history with its decision and batch; an id with two contents is a
    finding (replays and retries always send the same decision)."""
    found: dict[str, tuple[Decision, Batch]] = {}
    findings: list[Finding] = []
    for batch in batches:
        for decision in batch.decisions:
            seen = found.setdefault(decision.decision_id, (decision, batch))
            if seen[0] != decision:
                findings.append(
                    Finding(
                        check=Check.timeline,
                        subject=decision.decision_id,
                        problem=f"history holds two different decisions with this id: "
                        f"{_where(seen[1])} and {_where(batch)}",
                    )
                )
    return found, findings


def _entries(
    in_history: dict[str, tuple[Decision, Batch]], in_ledger: dict[str, LedgerRow]
) -> list[TimelineEntry]:
    entries: list[TimelineEntry] = []
    for decision_id in in_history.keys() | in_ledger.keys():
        row = in_ledger.get(decision_id)
        decision, batch = in_history.get(decision_id, (None, None))
        shown = decision or (row.decision if row is not None else None)
        assert shown is not None
        status, note = _compare(decision, batch, row)
        entries.append(
            TimelineEntry(
                decision_id=decision_id,
                at=shown.at,
                kind=shown.kind,
                actor=shown.actor.id,
                reason=shown.reason,
                seq=row.seq if row is not None else None,
                workflow_id=batch.workflow_id if batch else None,
                run_id=batch.run_id if batch else None,
                event_id=batch.event_id if batch else None,
                status=status,
                note=note,
            )
        )
    entries.sort(key=lambda e: (e.at, e.seq if e.seq is not None else sys.maxsize, e.decision_id))
    return entries


def _compare(
    decision: Decision | None, batch: Batch | None, row: LedgerRow | None
) -> tuple[EntryStatus, str | None]:
    if decision is None or batch is None:
        return EntryStatus.missing_in_history, "in the ledger but in no history"
    if row is None:
        if batch.recorded is None:
            return EntryStatus.pending, "its ledger write has not completed in history yet"
        return EntryStatus.missing_in_ledger, f"recorded according to {_where(batch)}"
    differences = _differences(
        decision.model_dump(mode="json"), row.decision.model_dump(mode="json")
    )
    if differences:
        return EntryStatus.differs, "; ".join(differences)
    return EntryStatus.ok, None


def _differences(history: dict[str, Any], ledger: dict[str, Any]) -> list[str]:
    return [
        f"{key}: history {_preview(history.get(key))}, ledger {_preview(ledger.get(key))}"
        for key in sorted(history.keys() | ledger.keys())
        if history.get(key) != ledger.get(key)
    ]


def _entry_finding(entry: TimelineEntry) -> Finding | None:
    seq = f"row {entry.seq}" if entry.seq is not None else "decision"
    problem = {
        EntryStatus.differs: f"{seq} differs from history: {entry.note}",
        EntryStatus.missing_in_ledger: f"missing from the ledger (deleted?), though {entry.note}",
        EntryStatus.missing_in_history: (
            f"{seq} is in the ledger but in no history (inserted, or its history is missing)"
        ),
    }.get(entry.status)
    if problem is None:
        return None
    return Finding(check=Check.timeline, subject=entry.decision_id, problem=problem)


def _check_anchors(
    batches: Iterable[Batch], rows: Iterable[LedgerRow]
) -> tuple[int, list[Finding]]:
    """Every ledger head history saw after a write must still be in the ledger, unchanged: this
    catches a cut-off tail and a chain re-hashed after an edit, which verify alone cannot."""
    by_seq: dict[int, LedgerRow] = {}
    for row in rows:
        by_seq.setdefault(row.seq, row)
    heads: dict[tuple[int, str], Batch] = {}
    for batch in batches:
        if batch.recorded is not None:
            heads.setdefault((batch.recorded.head_seq, batch.recorded.head_hash), batch)
    findings: list[Finding] = []
    for (seq, head_hash), batch in sorted(heads.items()):
        at_seq = by_seq.get(seq)
        if at_seq is None:
            problem = (
                f"missing: history saw it as the ledger head after {_where(batch)} "
                "(deleted, or the tail cut off?)"
            )
        elif at_seq.hash != head_hash:
            problem = (
                f"hash {at_seq.hash[:12]}… is not the head hash {head_hash[:12]}… history "
                f"saw after {_where(batch)} (row replaced, reordered or re-hashed?)"
            )
        else:
            continue
        findings.append(Finding(check=Check.ledger, subject=f"row {seq}", problem=problem))
    return len(heads) - len(findings), findings


def _check_order(incident_id: str, rows: Iterable[LedgerRow]) -> list[Finding]:
    """Each workflow records its decisions one batch at a time, so its decision numbers rise
    with seq; the first place where one does not is a finding."""
    last: dict[str, tuple[int, LedgerRow]] = {}
    broken: dict[str, Finding] = {}
    for row in sorted(rows, key=lambda r: r.seq):
        parsed = scope_and_number(incident_id, row.decision.decision_id)
        if parsed is None:
            continue
        scope, number = parsed
        before = last.get(scope)
        if before is not None and before[0] > number and scope not in broken:
            broken[scope] = Finding(
                check=Check.timeline,
                subject=row.decision.decision_id,
                problem=f"row {row.seq} comes after row {before[1].seq} "
                f"({before[1].decision.decision_id}), which its workflow made later (reordered?)",
            )
        last[scope] = (number, row)
    return list(broken.values())


def _best_decisions(
    in_history: dict[str, tuple[Decision, Batch]], rows: Iterable[LedgerRow]
) -> list[Decision]:
    """Each decision once, as history has it where it can (the replay checks history), else as
    the ledger has it; in ledger order first, so decisions made at the same moment keep it."""
    decisions = {r.decision.decision_id: r.decision for r in sorted(rows, key=lambda r: r.seq)}
    decisions.update((decision_id, d) for decision_id, (d, _) in in_history.items())
    return list(decisions.values())


def _where(batch: Batch) -> str:
    return subject(batch.workflow_id, batch.run_id, batch.event_id)


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _PREVIEW else text[: _PREVIEW - 1] + "…"

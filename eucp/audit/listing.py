"""`eucp audit list`: every incident Temporal's visibility or the ledger knows, closed ones too,
with its phase, reporter and dates rebuilt from its decisions."""

from __future__ import annotations

from collections.abc import Sequence

from temporalio.client import Client, WorkflowExecution

from eucp.audit.events import decision_batches
from eucp.audit.history import crisis_executions, fetch_runs
from eucp.audit.models import Check, Finding, IncidentListing, ListReport
from eucp.audit.reconstruct import reconstruct
from eucp.audit.sources import read_rows
from eucp.protocol.decisions import Decision
from eucp.protocol.phases import FINAL
from eucp.runtime.ledger import Ledger


async def list_incidents(client: Client, ledger: Ledger) -> ListReport:
    """Decisions come from the ledger; from the crisis history for an incident not in it."""
    executions = await crisis_executions(client)
    in_ledger = set(ledger.incidents())
    listings: list[IncidentListing] = []
    findings: list[Finding] = []
    for incident_id in sorted(executions.keys() | in_ledger):
        runs = executions.get(incident_id, [])
        rows, unreadable = read_rows(ledger, incident_id) if incident_id in in_ledger else ([], [])
        findings += [
            Finding(check=Check.ledger, subject=f"{incident_id} {u.where}", problem=u.error)
            for u in unreadable
        ]
        decisions = [r.decision for r in rows]
        if not decisions and runs:
            histories, problems = await fetch_runs(client, incident_id, [r.run_id for r in runs])
            findings += problems
            decisions = [d for h in histories for b in decision_batches(h)[0] for d in b.decisions]
        listings.append(listing(incident_id, decisions, runs, ledger_rows=len(rows)))
    return ListReport(incidents=listings, findings=findings)


def listing(
    incident_id: str,
    decisions: Sequence[Decision],
    runs: Sequence[WorkflowExecution],
    ledger_rows: int,
) -> IncidentListing:
    """One incident's line: the state its decisions lead to, and its latest crisis run."""
    state = reconstruct(incident_id, decisions).state
    latest = max(runs, key=lambda r: r.start_time, default=None)
    reported_at = (
        state.phases[0].at if state.phases else min((r.start_time for r in runs), default=None)
    )
    return IncidentListing(
        incident_id=incident_id,
        title=state.title,
        phase=state.phase,
        reporter=state.reporter,
        reported_at=reported_at,
        closed_at=state.phases[-1].at if state.phase in FINAL else None,
        workflow_status=latest.status.name if latest is not None and latest.status else None,
        runs=len(runs),
        ledger_rows=ledger_rows,
        exercise=state.exercise,
    )

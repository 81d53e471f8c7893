"""Evidence from the live systems: the incident's histories from Temporal, rows from the ledger."""

from __future__ import annotations

from temporalio.client import Client

from eucp.audit.history import fetch_incident
from eucp.audit.models import Evidence, UnreadableRow
from eucp.protocol.decisions import LedgerRow
from eucp.runtime.ledger import Ledger

PAGE = 1000


def read_rows(
    ledger: Ledger, incident_id: str, page: int = PAGE
) -> tuple[list[LedgerRow], list[UnreadableRow]]:
    """All the incident's rows in seq order; a row that no longer decodes is set aside as
    unreadable (the ledger refuses a whole page for it, so that page is re-read row by row)."""
    rows: list[LedgerRow] = []
    unreadable: list[UnreadableRow] = []
    after = 0
    while True:
        try:
            batch = ledger.rows(incident_id, after_seq=after, limit=page)
        except ValueError:
            try:
                batch = ledger.rows(incident_id, after_seq=after, limit=1)
            except ValueError as err:
                where = f"the row after seq {after}" if after else "the first row"
                unreadable.append(UnreadableRow.of(len(rows), where, err))
                after += 1  # seqs are contiguous in an intact chain; a gap shows up in verify
                continue
        if not batch:
            return rows, unreadable
        rows += batch
        after = batch[-1].seq


async def gather(
    incident_id: str,
    client: Client | None = None,
    ledger: Ledger | None = None,
) -> Evidence:
    """The incident's histories (if `client`) and ledger rows (if `ledger`)."""
    source = " and ".join(
        name for name, used in (("temporal", client), ("ledger", ledger)) if used is not None
    )
    evidence = Evidence(incident_id=incident_id, source=source)
    if client is not None:
        evidence.histories, evidence.findings = await fetch_incident(client, incident_id)
    if ledger is not None:
        evidence.rows, evidence.unreadable = read_rows(ledger, incident_id)
    return evidence

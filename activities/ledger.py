"""The ledger activities: `record_decisions` writes a workflow's decisions exactly once;
`read_items` gives platform workflows the content items of recorded decisions.

Workflows fix each decision's id before calling, so a retried attempt finds the rows the
earlier one wrote and adds nothing.
"""

from __future__ import annotations

import structlog
from pydantic import BaseModel, Field
from temporalio import activity

from eucp.protocol.decisions import Decision
from eucp.protocol.tasks import ContentItem, open_items
from eucp.runtime.ledger import Ledger


class RecordDecisions(BaseModel):
    """One batch of decisions, written in one transaction."""

    decisions: list[Decision] = Field(min_length=1)


class Recorded(BaseModel):
    """How many decisions were new, and the row of the batch's last decision (its seq and hash).

    Kept in workflow history, the head hash anchors the chain outside the database.
    """

    count_new: int
    head_seq: int
    head_hash: str


class ReadItems(BaseModel):
    """The content items that recorded decisions (activation, content added, sightings) admitted."""

    decision_ids: list[str] = Field(min_length=1)


class ReadOpenItems(BaseModel):
    """The content an incident's decisions left open, for a platform brought in mid-crisis: all
    of it (first versions), or a page of the items numbered after `after`, of no more than
    `up_to_bytes` (one result must stay under the 2 MB Temporal takes of a payload)."""

    incident_id: str
    after: int = Field(default=0, ge=0)
    up_to_bytes: int | None = Field(default=None, ge=1)


class Items(BaseModel):
    items: list[ContentItem]
    more: bool = Field(default=False, description="a page: more items follow the last")


class LedgerActivities:
    """Ledger writes, bound to one open ledger (sync: the worker runs them in a thread pool)."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    @activity.defn(name="record_decisions")
    def record_decisions(self, batch: RecordDecisions) -> Recorded:
        """Append the batch; decisions already stored are skipped, not written twice."""
        incident_id = batch.decisions[-1].incident_id
        log = structlog.get_logger().bind(incident_id=incident_id, count=len(batch.decisions))
        appended = self._ledger.record(batch.decisions)
        # the batch's own last row: an anchor for these decisions, whatever was written since
        last = appended.rows[-1]
        log.info("decisions recorded", count_new=appended.new, head_seq=last.seq)
        return Recorded(count_new=appended.new, head_seq=last.seq, head_hash=last.hash)

    @activity.defn(name="read_open_items")
    def read_open_items(self, ask: ReadOpenItems) -> Items:
        """Every item the incident admitted and did not take back (`open_items`)."""
        rows = self._ledger.rows(ask.incident_id)
        items = [i for i in open_items([row.decision for row in rows]) if i.no > ask.after]
        if ask.up_to_bytes is None:
            return Items(items=items)
        page: list[ContentItem] = []
        size = 0
        for item in items:
            size += len(item.model_dump_json())
            if page and size > ask.up_to_bytes:
                return Items(items=page, more=True)
            page.append(item)
        return Items(items=page)

    @activity.defn(name="read_items")
    def read_items(self, ask: ReadItems) -> Items:
        """The items of the given decisions, in order: platform workflows fetch their new content
        from the ledger by reference, so the crisis's history does not carry every item to
        every platform."""
        decisions = self._ledger.decisions(ask.decision_ids)
        missing = set(ask.decision_ids) - {d.decision_id for d in decisions}
        if missing:  # recorded before the fan-out; absent means another ledger: retry, loudly
            raise RuntimeError(f"decisions not in the ledger: {sorted(missing)}")
        return Items(
            items=[ContentItem.model_validate(i) for d in decisions for i in d.inputs["items"]]
        )

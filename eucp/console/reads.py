"""What the console reads, composed from the service layer, Temporal's visibility and the ledger.

Every read is one that exists elsewhere (`Incidents.status`, visibility, the ledger's rows, the
review figures); the console only caches what cannot change any more: the status of a crisis
run that has ended, and the figures and course of a ledger whose head has not moved.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime

from temporalio.client import WorkflowExecution, WorkflowExecutionStatus, WorkflowQueryFailedError
from temporalio.service import RPCError, RPCStatusCode

from eucp.audit.sources import read_rows
from eucp.protocol.decisions import COURSE, LedgerRow
from eucp.protocol.search import IncidentSearch
from eucp.protocol.state import IncidentStatus
from eucp.review import figures, render
from eucp.review.figures import ReviewFigures
from eucp.runtime.ledger import Ledger
from eucp.service.incidents import Incidents, is_exercise

QUERIES_AT_ONCE = 8
QUERY_TIMEOUT = 5.0


class NoSuchIncident(Exception):
    """Neither Temporal nor the ledger knows the incident."""


class Unanswered(Exception):
    """The incident's workflows did not answer their queries in time (is a worker running?)."""


@dataclass(frozen=True)
class Listed:
    """One incident of the list: its latest crisis run and, when the query answered, status."""

    incident_id: str
    workflow_status: str
    started_at: datetime | None
    status: IncidentStatus | None
    exercise: bool = False  # its run's memo says so, whether or not the status answered


@dataclass(frozen=True)
class Computed:
    """What is read from an incident's whole ledger: the review figures and the decisions of
    its course (`COURSE`: the phases, the situation, who takes part), oldest first."""

    seq: int  # the ledger head they were computed from
    at: float  # monotonic time they were last known current
    figures: ReviewFigures
    course: list[LedgerRow]


class Reader:
    def __init__(self, incidents: Incidents, ledger: Ledger) -> None:
        self.incidents = incidents
        self.ledger = ledger
        self._ended: dict[tuple[str, str], IncidentStatus] = {}
        self._figures: dict[str, Computed] = {}
        self._computing = threading.Lock()
        self._queries = asyncio.Semaphore(QUERIES_AT_ONCE)

    async def listing(self, search: IncidentSearch | None = None) -> list[Listed]:
        """The crises on this deployment's task queue that the search finds by their search
        attributes (every one without a search), each with its latest run's status: only
        those found are queried."""
        query = self.incidents.search_query(search)
        runs = [run async for run in self.incidents.client.list_workflows(query)]
        return list(await asyncio.gather(*(self._listed(run) for run in runs)))

    async def count(self) -> int:
        """How many crises this deployment has, found or not."""
        query = self.incidents.search_query()
        return (await self.incidents.client.count_workflows(query)).count

    async def _listed(self, run: WorkflowExecution) -> Listed:
        status = run.status.name.lower() if run.status else "unknown"
        try:
            found = await self._status_of(run)
        except (RPCError, WorkflowQueryFailedError, TimeoutError):
            found = None  # shown as unreadable; the page of the incident says why
        return Listed(run.id, status, run.start_time, found, await is_exercise(run))

    async def _status_of(self, run: WorkflowExecution) -> IncidentStatus:
        key = (run.id, run.run_id)
        if key in self._ended:
            return self._ended[key]
        async with self._queries, asyncio.timeout(QUERY_TIMEOUT):  # no worker: no answer
            status = await self.incidents.status(run.id)
        if run.status is not WorkflowExecutionStatus.RUNNING:
            self._ended[key] = status
        return status

    async def status(self, incident_id: str) -> IncidentStatus:
        try:
            async with asyncio.timeout(QUERY_TIMEOUT):
                return await self.incidents.status(incident_id)
        except TimeoutError:
            raise Unanswered(incident_id) from None
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:
                raise NoSuchIncident(incident_id) from None
            raise

    async def decisions(self, incident_id: str, limit: int) -> list[LedgerRow]:
        """The incident's last `limit` decisions in the ledger, newest first."""

        def read() -> list[LedgerRow]:
            head = self.ledger.head(incident_id)
            return self.ledger.rows(incident_id, after_seq=max(0, head.seq - limit))

        return list(reversed(await asyncio.to_thread(read)))

    async def computed(self, incident_id: str, max_age: float = 0.0) -> Computed | None:
        """The review figures and the course of the incident's ledger (None before its first
        row). Those computed less than `max_age` seconds ago do: a busy incident's ledger is
        then read once per `max_age` however many pages follow it. Recomputed only when the
        head has moved."""

        def compute() -> Computed | None:
            with self._computing:
                now = time.monotonic()
                cached = self._figures.get(incident_id)
                if cached is not None and now - cached.at < max_age:
                    return cached
                seq = self.ledger.head(incident_id).seq
                if cached is None or cached.seq != seq:
                    rows, _ = read_rows(self.ledger, incident_id)
                    if not rows:
                        return None
                    course = [r for r in rows if r.decision.kind in COURSE]
                    cached = Computed(rows[-1].seq, now, figures.compute(rows), course)
                self._figures[incident_id] = replace(cached, at=now)
                return cached

        return await asyncio.to_thread(compute)

    async def figures(self, incident_id: str, max_age: float = 0.0) -> ReviewFigures | None:
        """The review figures of the incident's ledger (None before its first row)."""
        computed = await self.computed(incident_id, max_age)
        return computed.figures if computed else None

    async def report_html(self, incident_id: str) -> str:
        """The review report as the audit renders it, from the ledger as it is now."""
        computed = await self.figures(incident_id)
        if computed is None:
            raise NoSuchIncident(incident_id)
        return await asyncio.to_thread(render.to_html, computed)

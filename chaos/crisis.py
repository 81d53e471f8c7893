"""A crisis driven over the real HTTP API the way a careful client drives it under faults: every
request carries an idempotency key and is sent again, with the same key, when no answer came
back (a 5xx, a timeout, a refused connection), so it is applied once. Every accepted answer is
booked; at the end every task is read back, the ledger is read and the auditor's tools are run.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from chaos.results import Result
from chaos.rig import Rig
from chaos.tally import Accepted, Tally, keys_of, tally
from eucp.client import ApiClient, ApiUnavailable
from eucp.demo.presets import AUDITOR as AUDITOR  # re-exported for the scenarios
from eucp.demo.presets import COORDINATOR as COORDINATOR  # re-exported for the scenarios
from eucp.demo.presets import SignedWebhook, compressed_clocks, contact, on_call_desk
from eucp.protocol.actions import Action
from eucp.protocol.clocks import SlaSettings
from eucp.protocol.decisions import DecisionKind, LedgerRow
from eucp.protocol.identifiers import UrlIdentifier
from eucp.protocol.incident import Assessment, Criterion, CriterionStatus, IncidentReport
from eucp.protocol.participants import Backup, Contact, ParticipantKind
from eucp.protocol.refusal import Refusal, RefusalKind
from eucp.protocol.state import Answer, IncidentStatus, ReportAnswer
from eucp.protocol.tasks import Outcome, Task, TaskReport, TaskState
from eucp.runtime.ledger import open_ledger, verify_chain

T = TypeVar("T")
PATIENCE = 120.0  # seconds a client keeps resending one request
BATCH = 100  # task reports per request
# SLA clocks long enough that they fire only where a scenario wants them to
CALM_SLA = compressed_clocks(acknowledge=300, act=600, assessment=600, review=600, deliver=30)
TAKEDOWN = (DecisionKind.task_acknowledged, DecisionKind.task_removed)
FINAL = TaskState.removed  # where every scenario's platforms leave every task in the end
MET = Criterion(status=CriterionStatus.met, evidence="chaos suite")
ALL_MET = Assessment(**dict.fromkeys(Assessment.model_fields, MET))


def url(n: int) -> UrlIdentifier:
    return UrlIdentifier(value=f"https://video.example.test/chaos/{n:06d}")


def staff(coordinators: Sequence[str] = (COORDINATOR,)) -> list[Contact]:
    """Coordinators and the auditor, told on the log channel."""
    return [
        *(contact(c, ParticipantKind.coordinator, c.upper()) for c in coordinators),
        contact(AUDITOR, ParticipantKind.auditor),
    ]


def platform(
    platform_id: str, webhook_url: str | None = None, secret: str = "", desk: Backup | None = None
) -> Contact:
    """A platform told by signed webhook (or on the log); its backup desk on the log unless
    given."""
    webhook = None if webhook_url is None else SignedWebhook(webhook_url, secret)
    return contact(
        platform_id,
        ParticipantKind.platform,
        webhook=webhook,
        backup=desk or on_call_desk(platform_id),
    )


class Desk:
    """One participant's client: resends what got no answer, books what was accepted."""

    def __init__(self, participant_id: str, api: ApiClient, book: Accepted) -> None:
        self.participant_id = participant_id
        self.api = api
        self.book = book
        self.resent = 0

    async def call(self, request: Callable[[str], Awaitable[T]]) -> T:
        """`request(key)` until it answers; an `Refusal` (4xx) is an answer and raised."""
        key = uuid.uuid4().hex
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PATIENCE
        while True:
            try:
                return await request(key)
            except ApiUnavailable:
                pass
            except Refusal as refused:
                if refused.kind != "busy":
                    raise
            if loop.time() > deadline:
                raise TimeoutError(f"no answer after resending for {PATIENCE:.0f}s")
            self.resent += 1
            await asyncio.sleep(0.5)

    async def act(self, request: Callable[[str], Awaitable[Answer]]) -> Answer:
        answer = await self.call(request)
        self.book.answer(answer, self.participant_id)
        return answer

    async def report(self, incident_id: str, reports: Sequence[TaskReport]) -> ReportAnswer:
        answer = await self.call(
            lambda key: self.api.report_tasks(incident_id, reports, idempotency_key=key)
        )
        self.book.reports(reports, answer)
        return answer


class Crisis:
    """One incident, its participants' desks and the book of what they were told."""

    def __init__(self, rig: Rig, platforms: Sequence[str], coordinator: str = COORDINATOR) -> None:
        self.rig = rig
        self.platforms = list(platforms)
        self.book = Accepted()
        self.desks: dict[str, Desk] = {}
        self.coordinator = self.desk(coordinator)
        self.incident_id = ""

    def desk(self, participant_id: str) -> Desk:
        if participant_id not in self.desks:
            self.desks[participant_id] = Desk(
                participant_id, self.rig.client(participant_id), self.book
            )
        return self.desks[participant_id]

    async def report(self, sla: SlaSettings = CALM_SLA, affected: Sequence[str] = ()) -> str:
        iru = self.coordinator
        report = IncidentReport(
            title="Livestreamed attack (chaos)",
            event_started_at=datetime.now(UTC) - timedelta(minutes=30),
            event_place="outside the EU",
            reporter=COORDINATOR,
            affected_member_states=list(affected),
        )
        reported = await iru.call(lambda key: iru.api.report(report, sla=sla, idempotency_key=key))
        self.incident_id = reported.incident_id
        return self.incident_id

    async def assess(self) -> Answer:
        iru, incident = self.coordinator, self.incident_id
        return await iru.act(
            lambda key: iru.api.act(
                incident, Action.assess, assessment=ALL_MET, idempotency_key=key
            )
        )

    async def activate(self, items: int) -> Answer:
        """The activation with `items` URLs for every platform."""
        iru, incident = self.coordinator, self.incident_id
        identifiers = [url(n) for n in range(1, items + 1)]
        return await iru.act(
            lambda key: iru.api.act(
                incident,
                Action.activate,
                reason="all five criteria met; viral spread",
                identifiers=identifiers,
                platforms=self.platforms,
                idempotency_key=key,
            )
        )

    async def add_content(self, first: int, count: int) -> Answer:
        """URLs `first`, `first + 1`, ... for every platform (after the activation)."""
        iru, incident = self.coordinator, self.incident_id
        identifiers = [url(n) for n in range(first, first + count)]
        return await iru.act(
            lambda key: iru.api.act(
                incident, Action.add_content, identifiers=identifiers, idempotency_key=key
            )
        )

    async def task_ids(self, platform_id: str) -> list[str]:
        desk = self.desk(platform_id)

        async def listed(_: str) -> list[str]:
            return [t.task_id async for t in desk.api.iter_tasks(self.incident_id)]

        return await desk.call(listed)

    async def report_tasks(
        self, platform_id: str, outcome: Outcome, task_ids: Sequence[str], batch: int = BATCH
    ) -> list[ReportAnswer]:
        """Reports `outcome` on the tasks, `batch` per request, the requests all at once."""
        desk = self.desk(platform_id)
        reports = [TaskReport(task_id=t, outcome=outcome) for t in task_ids]
        return await asyncio.gather(
            *(
                desk.report(self.incident_id, reports[i : i + batch])
                for i in range(0, len(reports), batch)
            )
        )

    async def take_down(self, platforms: Sequence[str] | None = None, batch: int = BATCH) -> None:
        """Each platform acknowledges, then removes, all its tasks; the platforms at once."""

        async def one(platform_id: str) -> None:
            tasks = await self.task_ids(platform_id)
            await self.report_tasks(platform_id, Outcome.acknowledged, tasks, batch)
            await self.report_tasks(platform_id, Outcome.removed, tasks, batch)

        await asyncio.gather(*(one(p) for p in platforms or self.platforms))

    async def wind_down(self) -> None:
        """De-escalation, review (every platform's input) and closure."""
        iru, incident = self.coordinator, self.incident_id
        await iru.act(
            lambda key: iru.api.act(
                incident, Action.de_escalate, reason="event over", idempotency_key=key
            )
        )
        await iru.act(lambda key: iru.api.act(incident, Action.start_review, idempotency_key=key))
        for platform_id in self.platforms:
            await self._review_input(platform_id)
        await iru.act(
            lambda key: iru.api.act(
                incident, Action.close, reason="debrief held", idempotency_key=key
            )
        )

    async def _review_input(self, platform_id: str) -> Answer:
        api = self.desk(platform_id).api
        return await self.desk(platform_id).act(
            lambda key: api.act(
                self.incident_id, Action.submit_review_input, text="lessons", idempotency_key=key
            )
        )

    async def completed(self, within: float = 90.0) -> bool:
        """Waits until the incident's workflow has completed; False if it has not in time."""
        iru = self.coordinator
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while loop.time() < deadline:
            listing = await iru.call(lambda _: iru.api.incidents())
            if any(i.incident_id == self.incident_id and i.status == "completed" for i in listing):
                return True
            await asyncio.sleep(0.3)
        return False

    async def rows(self) -> list[LedgerRow]:
        def read() -> list[LedgerRow]:
            with open_ledger(self.rig.ledger_url) as ledger:
                return ledger.rows(self.incident_id)

        return await asyncio.to_thread(read)

    def unanswered(self, *kinds: DecisionKind) -> Callable[[LedgerRow], bool]:
        """A row of one of `kinds` that no answer has told a client of yet: recorded, its
        request still in flight."""
        return lambda row: row.decision.kind in kinds and not set(keys_of(row)) & self.book.keys

    async def tasks_of(self, platform_id: str) -> list[Task]:
        """Every task of the platform, as the coordinator reads it (none if it has no part)."""
        iru = self.coordinator

        async def listed(_: str) -> list[Task]:
            try:
                return [t async for t in iru.api.iter_tasks(self.incident_id, platform_id)]
            except Refusal as refused:
                if refused.kind is not RefusalKind.not_found:
                    raise
                return []

        return await iru.call(listed)

    def items_for(self, platform_id: str) -> set[int]:
        """The accepted items that are the platform's tasks: all but those it sighted."""
        return {i for i, by in self.book.items.items() if by != platform_id}

    async def final_tasks(self) -> list[str]:
        """Every task of every platform read back once the crisis is over: exactly one per
        item the clients were told was accepted (but those it sighted itself), each `FINAL`.
        Returns the problems."""
        problems = []
        for platform_id in self.platforms:
            tasks = await self.tasks_of(platform_id)
            items = Counter(t.item_no for t in tasks)
            wanted = self.items_for(platform_id)
            missing = sorted(wanted - set(items))
            extra = sorted(set(items) - wanted)
            doubled = sorted(i for i, n in items.items() if n > 1)
            astray = [f"{t.task_id} {t.state}" for t in tasks if t.state is not FINAL]
            for what, found in (
                ("no task for items", missing),
                ("tasks for items never accepted", extra),
                ("several tasks for items", doubled),
                (f"tasks not {FINAL}", astray),
            ):
                if found:
                    problems.append(f"{platform_id}: {len(found)} {what}: {found[:5]}")
        return problems

    async def made(self) -> dict[str, int]:
        """Decisions the crisis workflow says it made, by scope (its own count, so that a lost
        last decision is a gap too)."""
        iru = self.coordinator
        status = await iru.call(lambda _: iru.api.status(self.incident_id))
        if not isinstance(status, IncidentStatus):
            raise TypeError(f"the coordinator was shown {type(status).__name__}")
        return {f"{self.incident_id}/crisis": status.crisis.decisions}

    async def tally(self) -> Tally:
        return tally(self.book, await self.rows(), await self.made())

    async def checked(self) -> list[str]:
        """The end of every scenario: the crisis completed, every task ended `FINAL`, the
        chain verifies, the audit tools find nothing, no process died unasked. Returns the
        problems."""
        problems = list(self.rig.dead())
        if not await self.completed():
            problems.append(f"{self.incident_id} did not complete")
        problems += await self.final_tasks()
        chain = verify_chain(self.incident_id, await self.rows())
        if not chain.ok:
            problems.append(f"chain of {self.incident_id}: {chain.problem}")
        return problems + await self.rig.audit(self.incident_id)

    async def result(
        self, scenario: str, problems: Sequence[str] = (), notes: Sequence[str] = ()
    ) -> Result:
        """The scenario's result: its own problems, the end checks and the ledger tally."""
        found = [*problems, *await self.checked()]
        resent = sum(d.resent for d in self.desks.values())
        return Result(
            scenario,
            await self.tally(),
            found,
            [
                *notes,
                f"requests resent: {resent}",
                f"{sum(len(self.items_for(p)) for p in self.platforms)} tasks of "
                f"{len(self.platforms)} platforms read back at the end, each {FINAL}",
            ],
        )


Fault = Callable[[], Awaitable[str]]  # strikes; returns the evidence that it struck


class Strike:
    """Runs some work and strikes it with a fault the moment a wanted row is in the ledger,
    then lets the work finish (requests that got no answer resent with their keys)."""

    def __init__(self, crisis: Crisis) -> None:
        self.crisis = crisis
        self.row: LedgerRow | None = None  # the row that set the fault off
        self.answers_before = 0  # answers the clients had when it struck
        self.evidence = ""  # what the fault returned: the killed pid gone, say

    async def when(
        self, wanted: Callable[[LedgerRow], bool], work: Awaitable[object], fault: Fault
    ) -> None:
        running = asyncio.ensure_future(work)
        try:
            self.row = await in_ledger(self.crisis.rig.ledger_url, self.crisis.incident_id, wanted)
            self.answers_before = self.crisis.book.answers
            self.evidence = await fault()
            await running
        finally:
            running.cancel()


async def in_ledger(
    ledger_url: str, incident_id: str, wanted: Callable[[LedgerRow], bool], within: float = 60.0
) -> LedgerRow:
    """The first row of the incident for which `wanted` holds, as soon as it is committed:
    polls the ledger every few milliseconds, so a fault can strike right after the write."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    with open_ledger(ledger_url) as ledger:
        after = 0
        while loop.time() < deadline:
            for row in ledger.rows(incident_id, after_seq=after):
                if wanted(row):
                    return row
                after = row.seq
            await asyncio.sleep(0.003)
    raise TimeoutError(f"no such row in the ledger of {incident_id} after {within:.0f}s")

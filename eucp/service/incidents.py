"""Incidents over Temporal: what the HTTP API, the console, the demo and the tests call to
report, steer and answer a crisis.

Every action of the table (`eucp.protocol.actions`) runs through `act`, as the Update its row
names; a refusal comes back as the protocol's `Refusal`, whatever layer refused it."""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from eucp.protocol.actions import ACTIONS, Action
from eucp.protocol.clocks import SlaSettings
from eucp.protocol.commands import (
    MAX_BATCH,
    Command,
    JoinPlatform,
    ReportSightings,
    ReportTasks,
    SightingRequest,
    SightingsBatch,
)
from eucp.protocol.incident import IncidentReport
from eucp.protocol.orders import OrderRecord
from eucp.protocol.participants import ID_PATTERN, Actor, Participant, ParticipantKind
from eucp.protocol.refusal import Refusal, RefusalKind
from eucp.protocol.search import PHASE as PHASE_ATTRIBUTE
from eucp.protocol.search import IncidentSearch
from eucp.protocol.state import (
    Answer,
    CrisisResult,
    CrisisState,
    CrisisStatus,
    IncidentStatus,
    Listing,
    PlatformSummary,
    ReportAnswer,
    SightingAnswers,
    TaskPage,
    TaskQuery,
)
from eucp.protocol.tasks import Task, TaskReport
from eucp.runtime.registry import RegistryFile
from eucp.runtime.settings import Settings
from eucp.runtime.shared import SharedState
from eucp.service.merge import Merger
from eucp.service.update_queue import UpdateQueue
from workflows.crisis import EXERCISE, CrisisWorkflow
from workflows.errors import MOVING
from workflows.platform import PlatformTasksWorkflow, platform_workflow_id
from workflows.search import EXERCISE as EXERCISE_ATTRIBUTE
from workflows.search import indexed

R = TypeVar("R", bound=BaseModel)
CLOSED = "the incident is closed: it takes no more actions or reports"
# pauses before sending an Update again to a workflow that is continuing as new (~30 s in all)
MOVING_RETRIES = [0.02, 0.05, 0.1, 0.2] + [0.5] * 58
# A platform's task changes across incidents (`Incidents.task_changes`): a change shows once
# `SETTLE` has passed (the clocks of the API and of Temporal may differ by that much), and an
# incident whose task workflow closed is remembered in the checkpoint for `KEEP_CLOSED`.
SETTLE = timedelta(seconds=1)
KEEP_CLOSED = timedelta(hours=1)
FEED_READS = 16  # task workflows described and queried at once
MERGED_BYTES = 1_000_000  # of sighting calls in one merged Update (`_sighting_weight`)
TASK_PAGE = 1000  # tasks per query of a task workflow (TaskQuery's most)


class Incidents:
    def __init__(
        self, client: Client, settings: Settings, shared: SharedState | None = None
    ) -> None:
        """`shared`: the state shared with other API processes; opened from the settings
        when not given."""
        self.client = client
        self.settings = settings
        self.shared = shared or SharedState(settings.shared_state_url)
        self.update_queue = UpdateQueue(self.shared)
        self.registry = RegistryFile(settings.registry_path)
        self.sightings: Merger[SightingRequest, Answer] = Merger(
            self._send_sightings, _sighting_weight, MAX_BATCH
        )

    async def report(
        self,
        incident_id: str,
        report: IncidentReport,
        participants: Sequence[Participant],
        sla: SlaSettings | None = None,
    ) -> None:
        """Starts the incident's workflow; the report is its first recorded decision."""
        if not re.fullmatch(ID_PATTERN, incident_id):
            raise Refusal(
                "incident_id",
                f"use 1-63 of a-z 0-9 . _ - (got {incident_id!r})",
                RefusalKind.invalid,
            )
        kinds = {p.id: p.kind for p in participants}
        if report.reporter not in kinds:
            raise Refusal(
                "reporter",
                f"{report.reporter!r} is not a registered participant",
                RefusalKind.invalid,
            )
        if sla is not None and kinds[report.reporter] is not ParticipantKind.coordinator:
            rule = (
                "only a coordinator sets an incident's clocks; report without them (the "
                "protocol's own apply) and a coordinator may change them later"
            )
            raise Refusal("sla", rule, RefusalKind.forbidden)
        state = CrisisState(
            incident_id=incident_id,
            report=report,
            participants=list(participants),
            sla=sla or self.settings.sla,
            pdq_match_distance=self.settings.pdq_match_distance,
            pdq_min_quality=self.settings.pdq_min_quality,
        )
        await self.client.start_workflow(
            CrisisWorkflow.run,
            state,
            id=incident_id,
            task_queue=self.settings.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            memo={EXERCISE: True} if report.exercise else None,  # lists tell it apart
            search_attributes=indexed(state),  # found by what it is from its start
        )

    def handle(self, incident_id: str) -> WorkflowHandle[CrisisWorkflow, CrisisResult]:
        return self.client.get_workflow_handle_for(CrisisWorkflow.run, incident_id)

    def platform_handle(
        self, incident_id: str, platform_id: str
    ) -> WorkflowHandle[PlatformTasksWorkflow, PlatformSummary]:
        return self.client.get_workflow_handle_for(
            PlatformTasksWorkflow.run, platform_workflow_id(incident_id, platform_id)
        )

    async def took_part(self, incident_id: str, platform_id: str) -> bool:
        """Whether the platform was given tasks in the incident (its task workflow exists).
        Asked of the server, not of the crisis, so that no worker replays an ended incident
        to answer it."""
        try:
            await self.platform_handle(incident_id, platform_id).describe()
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:
                return False
            raise
        return True

    async def task_changes(
        self, platform_id: str, since: str | None = None, limit: int = 500
    ) -> ChangedTasks:
        """The platform's tasks, across its incidents, that changed since the checkpoint `since`
        (every task when None), oldest change first, at most `limit`; with the checkpoint that
        continues after them.

        A task's last change is `changed_at`, the moment its workflow applied it. A change
        becomes visible when that workflow task completes, so the answer stops short of any
        workflow task still pending at the moment of reading (and `SETTLE` before now): no
        change is left behind a checkpoint unseen, and none comes twice. An incident seen for
        the first time is read whole, so one that the visibility store listed late is not
        missed either."""
        mark = FeedMark.decode(since) if since else None
        known = set(mark.known) if mark else set()
        now = datetime.now(UTC)
        runs = await self._task_runs(platform_id)
        gate = asyncio.Semaphore(FEED_READS)
        reads = await asyncio.gather(
            *(
                self._read_run(run, platform_id, gate)
                for run in runs.values()
                if not _settled(run, mark, known)
            )
        )
        upto = min([now - SETTLE] + [r.pending - SETTLE for r in reads if r.pending is not None])
        if mark is not None:
            upto = max(upto, mark.at)  # a known incident's pending task is never older
        found: list[tuple[datetime, str, Task]] = []
        read_now: set[str] = set()
        for read in reads:
            if read.incident_id not in known and read.pending and read.pending - SETTLE < upto:
                continue  # new to this feed and busy: read whole next time
            read_now.add(read.incident_id)
            delivered = mark if read.incident_id in known else None
            for task in read.tasks:
                at = changed_at(task)
                if at > upto or (delivered and delivered.covers(at, read.incident_id, task)):
                    continue
                found.append((at, read.incident_id, task))
        found.sort(key=lambda f: (f[0], f[1], f[2].task_id))
        page, more = found[:limit], len(found) > limit
        last = page[-1] if more else None
        at = last[0] if last else upto
        still = {i for i in (known & set(runs)) | read_now if _remembered(runs[i], at)}
        next_mark = FeedMark(
            at=at,
            incident_id=last[1] if last else None,
            task_id=last[2].task_id if last else None,
            known=sorted(still),
        )
        return ChangedTasks(
            tasks=[(incident_id, task, when) for when, incident_id, task in page],
            checkpoint=next_mark.encode(),
            as_of=at,
            more=more,
        )

    async def _task_runs(self, platform_id: str) -> dict[str, _TaskRun]:
        """The platform's task workflows by incident, from the visibility store: whether each
        still runs (a run continued as new still runs) and when it closed. Those of this
        deployment only (its task queue), which its workers answer."""
        suffix = platform_workflow_id("", platform_id)
        runs: dict[str, _TaskRun] = {}
        query = (
            f"WorkflowType = 'PlatformTasksWorkflow' AND TaskQueue = '{self.settings.task_queue}'"
        )
        async for found in self.client.list_workflows(query):
            if not found.id.endswith(suffix):
                continue
            incident_id = found.id.removesuffix(suffix)
            run = runs.setdefault(incident_id, _TaskRun(incident_id))
            if found.status not in (
                WorkflowExecutionStatus.RUNNING,
                WorkflowExecutionStatus.CONTINUED_AS_NEW,
            ):
                run.closed_at = found.close_time or found.start_time
        return runs

    async def _read_run(
        self, run: _TaskRun, platform_id: str, gate: asyncio.Semaphore
    ) -> _TaskRead:
        """Every task of a task workflow, and the earliest time at which a workflow task of
        it still pending was scheduled (its changes are not visible yet): described first,
        then queried, so that anything it does after the description comes later than that."""
        async with gate:
            pending: datetime | None = None
            if run.closed_at is None:
                described = await self.platform_handle(run.incident_id, platform_id).describe()
                raw = described.raw_description
                if described.status is not WorkflowExecutionStatus.RUNNING:
                    run.closed_at = described.close_time or _now()
                elif raw.HasField("pending_workflow_task"):
                    task = raw.pending_workflow_task
                    times = [
                        stamp.ToDatetime(tzinfo=UTC)
                        for name in ("scheduled_time", "original_scheduled_time", "started_time")
                        if task.HasField(name) and (stamp := getattr(task, name)).ToNanoseconds()
                    ]
                    pending = min(times, default=_now())
            for _ in range(3):  # a task moved while paging (a return after suspension): again
                tasks = await self._every_task(run.incident_id, platform_id)
                if len({t.task_id for t in tasks}) == len(tasks):
                    break
            unique = {t.task_id: t for t in tasks}
            mine = [t for t in unique.values() if t.platform_id == platform_id]
            return _TaskRead(run.incident_id, pending, mine)

    async def _every_task(self, incident_id: str, platform_id: str) -> list[Task]:
        tasks: list[Task] = []
        offset: int | None = 0
        while offset is not None:
            page = await self.tasks(
                incident_id, platform_id, TaskQuery(offset=offset, limit=TASK_PAGE)
            )
            tasks += page.tasks
            offset = page.next_offset
        return tasks

    async def listings(self, search: IncidentSearch | None = None) -> list[Listing]:
        """The incidents of this deployment (its task queue) that the search finds, in the
        visibility store's order (running first, then the latest closed), read from it alone:
        by the search attributes every crisis run carries (`workflows.search`), so a platform's
        list (`search.platform`) costs what its own incidents cost, whatever the others. Its
        plain list also holds its incidents among runs from before the attributes
        (`_unindexed`)."""
        query = self.search_query(search)
        listings = [await _listing(found) async for found in self.client.list_workflows(query)]
        if (
            search is not None
            and search.platform
            and search == IncidentSearch(platform=search.platform)
        ):
            listings += await self._unindexed(search.platform)
        return listings

    async def _unindexed(self, platform_id: str) -> list[Listing]:
        """A platform's incidents among the runs that carry no search attributes: those started
        by an eucp before them, still running in the run they started in (the workflow indexes
        itself from its next continue-as-new) or closed within the namespace's retention.
        Whether the platform took part is asked of each one's task workflow (`took_part`);
        once no such run is left, this costs one empty query."""
        query = f"{self.search_query()} AND {PHASE_ATTRIBUTE} IS NULL"
        found = [run async for run in self.client.list_workflows(query)]
        gate = asyncio.Semaphore(FEED_READS)

        async def took_part(incident_id: str) -> bool:
            async with gate:
                return await self.took_part(incident_id, platform_id)

        parts = await asyncio.gather(*(took_part(run.id) for run in found))
        return [await _listing(run) for run, part in zip(found, parts, strict=True) if part]

    async def listings_for(
        self,
        actor: Actor,
        phase: str | None = None,
        platform: str | None = None,
        reporter: str | None = None,
        exercise: bool | None = None,
    ) -> list[Listing]:
        """The incidents `actor` may read (`GET /v1/incidents/{id}`), and no other, that the
        search in these words finds: coordinators and auditors any, a platform those it was
        given a part in (by phase or exercise: `IncidentSearch.by_platform`), anyone else
        none. A phase or an id that cannot be is refused (422), whoever asks."""
        search = IncidentSearch.of(phase, platform, reporter, exercise)
        if actor.kind in (ParticipantKind.coordinator, ParticipantKind.auditor):
            return await self.listings(search)
        if actor.kind is ParticipantKind.platform:
            return await self.listings(search.by_platform(actor.id))
        return []

    def search_query(self, search: IncidentSearch | None = None) -> str:
        """The visibility query of the crisis runs a search finds: of this deployment, the
        latest run of each incident (one continued as new gave way to the next), and every
        condition of the search."""
        conditions = [
            "WorkflowType = 'CrisisWorkflow'",
            f"TaskQueue = '{self.settings.task_queue}'",
            "ExecutionStatus != 'ContinuedAsNew'",
            *(search.conditions() if search else []),
        ]
        return " AND ".join(conditions)

    async def status(self, incident_id: str) -> IncidentStatus:
        crisis = await self.handle(incident_id).query(CrisisWorkflow.status)
        summaries = await asyncio.gather(
            *(
                self.platform_handle(incident_id, p).query(PlatformTasksWorkflow.summary)
                for p in crisis.platforms
                if p not in crisis.finals
            )
        )
        platforms = dict(crisis.finals) | {s.platform_id: s for s in summaries}
        return IncidentStatus(crisis=crisis, platforms=platforms)

    def _registered(self, participant_id: str) -> Participant | None:
        """A participant as the registry file has it now: one registered since the worker
        or the API started counts at once."""
        public = {p.id: p for p in self.registry.current().public()}
        return public.get(participant_id)

    async def view(self, incident_id: str, viewer: Actor) -> CrisisStatus | None:
        """The incident as a Member State's authority may read it; None if it has no part."""
        return await self.handle(incident_id).query(CrisisWorkflow.view, viewer)

    async def orders(self, incident_id: str, viewer: Actor) -> list[OrderRecord]:
        """The removal orders of the incident that `viewer` may see (`orders_seen_by`)."""
        return await self.handle(incident_id).query(CrisisWorkflow.orders, viewer)

    async def tasks(
        self, incident_id: str, platform_id: str, query: TaskQuery | None = None
    ) -> TaskPage:
        return await self.platform_handle(incident_id, platform_id).query(
            PlatformTasksWorkflow.tasks, query or TaskQuery()
        )

    async def result(self, incident_id: str) -> CrisisResult:
        return await self.handle(incident_id).result()

    def as_participant(
        self, incident_id: str, actor: Actor, request_id: str | None = None
    ) -> Participation:
        return Participation(self, incident_id, actor, request_id)

    async def act(
        self, incident_id: str, action: Action, cmd: Command, request_id: str | None = None
    ) -> Answer:
        """Runs the action's Update on the crisis; sighting reports go merged with the
        concurrent ones (one ledger batch and one fan-out), each still answered on its own."""
        row = ACTIONS[action]
        if not isinstance(cmd, row.command):
            raise TypeError(f"{action} takes {row.command.__name__}, not {type(cmd).__name__}")
        if isinstance(cmd, ReportSightings):
            return await self.sightings.submit(
                incident_id, SightingRequest(cmd=cmd, request_id=request_id)
            )
        if isinstance(cmd, JoinPlatform):  # the registry as it is now, never the caller's word
            cmd = cmd.model_copy(update={"registered": self._registered(cmd.platform)})
        update = getattr(CrisisWorkflow, row.update)  # the Update method: its types decode
        return await self.execute(self.handle(incident_id), update, cmd, Answer, request_id)

    async def _send_sightings(
        self, incident_id: str, requests: list[SightingRequest]
    ) -> list[Answer | BaseException]:
        handle = self.handle(incident_id)
        try:
            answers = await self.execute(
                handle,
                CrisisWorkflow.report_sightings_batch,
                SightingsBatch(requests=requests),
                SightingAnswers,
            )
        except Refusal as refused:
            if len(requests) == 1:
                return [refused]
            # one call in the batch is refused: each goes alone and hears its own answer
            alone = await asyncio.gather(
                *(self._send_sightings(incident_id, [r]) for r in requests)
            )
            return [result for [result] in alone]
        return [
            o.answer
            if o.answer is not None
            else o.rejection.as_refusal()
            if o.rejection is not None
            else Refusal("requests", "the workflow gave no answer")
            for o in answers.outcomes
        ]

    async def execute(
        self,
        handle: WorkflowHandle[Any, Any],
        update: Any,
        cmd: BaseModel,
        rtype: type[R],
        update_id: str | None = None,
    ) -> R:
        """Runs an Update, at most `MAX_IN_FLIGHT` at once per workflow (Temporal allows 10);
        the same `update_id` twice gives the first call's answer, never a second change."""
        async with self.update_queue.slot(handle.id):
            try:
                result = await self._update(handle, update, cmd, update_id)
            except WorkflowUpdateFailedError as err:
                refusal = Refusal.from_application_error(err.cause)
                if refusal is None:
                    raise
                raise refusal from None
            except RPCError as err:
                if err.status is RPCStatusCode.NOT_FOUND and await self._ended(handle):
                    raise Refusal("incident", CLOSED) from None
                raise
        assert isinstance(result, rtype)
        return result

    async def _update(
        self, handle: WorkflowHandle[Any, Any], update: Any, cmd: BaseModel, update_id: str | None
    ) -> Any:
        """`execute_update`, sent again while the workflow drains for continue-as-new (it
        refuses new Updates then, changing nothing, until its next run takes them)."""
        for wait in MOVING_RETRIES:
            try:
                return await handle.execute_update(update, cmd, id=update_id)
            except WorkflowUpdateFailedError as err:
                cause = err.cause
                if not (isinstance(cause, ApplicationError) and cause.type == MOVING):
                    raise
            await asyncio.sleep(wait)
        return await handle.execute_update(update, cmd, id=update_id)

    async def _ended(self, handle: WorkflowHandle[Any, Any]) -> bool:
        """Whether the workflow exists and has ended (Updates to it are NOT_FOUND either way)."""
        try:
            described = await handle.describe()
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:
                return False
            raise
        return described.status is not WorkflowExecutionStatus.RUNNING


async def _listing(run: WorkflowExecution) -> Listing:
    return Listing(
        incident_id=run.id,
        status=run.status.name.lower() if run.status else "unknown",
        started_at=run.start_time.isoformat() if run.start_time else None,
        exercise=await is_exercise(run),
    )


async def is_exercise(run: WorkflowExecution) -> bool:
    """Whether a crisis run is an exercise's: its search attribute says, or for a run started
    before there were any, its memo."""
    flag = run.typed_search_attributes.get(EXERCISE_ATTRIBUTE)
    if flag is None:
        memo = await run.memo() if run.raw_info.memo.fields else {}
        flag = bool(memo.get(EXERCISE))
    return flag


def _sighting_weight(request: SightingRequest) -> int:
    """A sighting call's share of one merged Update: its identifiers out of `MAX_BATCH`, or
    its bytes out of `MERGED_BYTES`, whichever is more. Temporal takes 2 MB of one Update's
    input, and 1,000 URLs of 2,048 characters are 2.2 MB."""
    size = len(request.cmd.model_dump_json())
    return max(len(request.cmd.identifiers), -(-size * MAX_BATCH // MERGED_BYTES))


class Participation:
    """One participant taking part in one incident: the actions of the table, in its name."""

    def __init__(
        self, incidents: Incidents, incident_id: str, actor: Actor, request_id: str | None = None
    ) -> None:
        self.incidents = incidents
        self.incident_id = incident_id
        self.actor = actor
        self.request_id = request_id

    async def act(self, action: Action, **fields: Any) -> Answer:
        """Takes `action` with its command's `fields` (all but the actor, which is this
        participant); a field its command does not know, or one of the wrong shape, is a
        pydantic `ValidationError` before anything is sent."""
        cmd = ACTIONS[action].command(actor=self.actor, **fields)
        return await self.incidents.act(self.incident_id, action, cmd, self.request_id)

    # ---- a platform's own tasks -----------------------------------------------------------

    async def report_tasks(
        self, reports: Sequence[TaskReport], platform_id: str | None = None
    ) -> ReportAnswer:
        """Reports on many tasks in one Update; `platform_id` defaults to the actor's own."""
        handle = self.incidents.platform_handle(self.incident_id, platform_id or self.actor.id)
        cmd = ReportTasks(actor=self.actor, reports=list(reports))
        return await self.incidents.execute(
            handle, PlatformTasksWorkflow.report, cmd, ReportAnswer, self.request_id
        )

    async def my_tasks(self, query: TaskQuery | None = None) -> TaskPage:
        if self.actor.kind is not ParticipantKind.platform:
            raise Refusal(
                "actor.kind", "only a platform has tasks of its own", RefusalKind.forbidden
            )
        return await self.incidents.tasks(self.incident_id, self.actor.id, query)


# ---- a platform's task changes across incidents ---------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def changed_at(task: Task) -> datetime:
    """When the task last changed: each change of state sets one of these times to the moment
    its workflow applied it (a reinstatement, or a task given again after a suspension, is
    assigned anew). Only a resumption under the first version's rule sets none."""
    times = (
        task.assigned_at,
        task.acknowledged_at,
        task.resolved_at,
        task.paused_since,
        task.hour_restarted_at,
    )
    return max(t for t in times if t is not None)


class FeedMark(BaseModel):
    """Where a platform's feed of task changes stands, given to it as an opaque checkpoint:
    of the `known` incidents, every change up to (`at`, `incident_id`, `task_id`) was
    delivered (every change at `at` when `incident_id` is None); of any other incident,
    nothing yet."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    at: datetime
    incident_id: str | None = None
    task_id: str | None = None
    known: list[str] = Field(default_factory=list)

    def covers(self, at: datetime, incident_id: str, task: Task) -> bool:
        """Whether a change of a known incident at `at` was delivered already."""
        if at != self.at:
            return at < self.at
        return self.incident_id is None or (incident_id, task.task_id) <= (
            self.incident_id,
            self.task_id or "",
        )

    def encode(self) -> str:
        return base64.urlsafe_b64encode(self.model_dump_json().encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> FeedMark:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            return cls.model_validate_json(raw)
        except (binascii.Error, ValueError, ValidationError):
            rule = "not a checkpoint this API gave: send the last `checkpoint`, or none"
            raise Refusal("since", rule, RefusalKind.invalid) from None


@dataclass(frozen=True)
class ChangedTasks:
    """A page of a platform's task changes: (incident, task, when it changed), oldest first;
    the checkpoint after them; the moment up to which changes are complete; whether more are
    waiting already."""

    tasks: list[tuple[str, Task, datetime]]
    checkpoint: str
    as_of: datetime
    more: bool


@dataclass
class _TaskRun:
    incident_id: str
    closed_at: datetime | None = None


@dataclass(frozen=True)
class _TaskRead:
    incident_id: str
    pending: datetime | None
    tasks: list[Task]


def _remembered(run: _TaskRun, at: datetime) -> bool:
    """Whether the checkpoint at `at` keeps the incident among those it knows."""
    return run.closed_at is None or run.closed_at > at - KEEP_CLOSED


def _settled(run: _TaskRun, mark: FeedMark | None, known: set[str]) -> bool:
    """Whether a task workflow cannot hold a change the feed has not delivered: it closed
    before the checkpoint and the feed knows it, or closed so long before that the feed has
    forgotten it."""
    if mark is None or run.closed_at is None:
        return False
    if run.incident_id in known:
        return run.closed_at < mark.at
    return run.closed_at <= mark.at - KEEP_CLOSED

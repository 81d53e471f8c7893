"""The service layer over Temporal: what the CLI, the demo, the tests (and later the HTTP API)
call to report, steer and answer a crisis. Rejections come back as `Rejected(field, rule)`."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from eucp.protocol.clocks import SlaSettings
from eucp.protocol.commands import (
    MAX_BATCH,
    Activate,
    AddContent,
    Assess,
    Command,
    DeEscalate,
    ReportFalsePositive,
    ReportSightings,
    ReportTasks,
    SightingRequest,
    SightingsBatch,
    SubmitReviewInput,
    WithdrawContent,
)
from eucp.protocol.identifiers import AnyIdentifier
from eucp.protocol.incident import Assessment, IncidentReport
from eucp.protocol.participants import ID_PATTERN, Actor, Participant, ParticipantKind
from eucp.protocol.phases import Refusal
from eucp.protocol.state import (
    Answer,
    CrisisResult,
    CrisisState,
    IncidentStatus,
    PlatformSummary,
    ReportAnswer,
    SightingAnswers,
    TaskPage,
    TaskQuery,
)
from eucp.protocol.tasks import LegalBasis, TaskReport, VoluntaryReferral
from eucp.runtime.settings import Settings
from eucp.service.merge import Merger
from eucp.service.update_gate import UpdateGate
from workflows.crisis import CrisisWorkflow
from workflows.errors import MOVING
from workflows.platform import PlatformTasksWorkflow, platform_workflow_id

R = TypeVar("R", bound=BaseModel)
VOLUNTARY = VoluntaryReferral()
CLOSED = "the incident is closed: it takes no more actions or reports"
# pauses before sending an Update again to a workflow that is continuing as new (~30 s in all)
MOVING_RETRIES = [0.02, 0.05, 0.1, 0.2] + [0.5] * 58


class Rejected(Exception):
    """The protocol refused an action; nothing changed. `field` is the input at fault."""

    def __init__(self, field: str, rule: str, refusal: Refusal = Refusal.conflict) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule
        self.refusal = refusal


class Incidents:
    def __init__(self, client: Client, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self.gate = UpdateGate()
        self.sightings: Merger[SightingRequest, Answer] = Merger(
            self._send_sightings, lambda r: len(r.cmd.identifiers), MAX_BATCH
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
            raise Rejected(
                "incident_id", f"use 1-63 of a-z 0-9 . _ - (got {incident_id!r})", Refusal.invalid
            )
        if report.reporter not in {p.id for p in participants}:
            raise Rejected(
                "reporter", f"{report.reporter!r} is not a registered participant", Refusal.invalid
            )
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
        )

    def handle(self, incident_id: str) -> WorkflowHandle[CrisisWorkflow, CrisisResult]:
        return self.client.get_workflow_handle_for(CrisisWorkflow.run, incident_id)

    def platform_handle(
        self, incident_id: str, platform_id: str
    ) -> WorkflowHandle[PlatformTasksWorkflow, PlatformSummary]:
        return self.client.get_workflow_handle_for(
            PlatformTasksWorkflow.run, platform_workflow_id(incident_id, platform_id)
        )

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
    ) -> Session:
        return Session(self, incident_id, actor, request_id)

    async def act(
        self, incident_id: str, update: Any, cmd: Command, request_id: str | None = None
    ) -> Answer:
        """Runs a participant's Update on the crisis; sighting reports go merged with the
        concurrent ones (one ledger batch and one fan-out), each still answered on its own."""
        if isinstance(cmd, ReportSightings):
            return await self.sightings.submit(
                incident_id, SightingRequest(cmd=cmd, request_id=request_id)
            )
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
        except Rejected as refused:
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
            else Rejected(o.rejection.field, o.rejection.rule, o.rejection.refusal)
            if o.rejection is not None
            else Rejected("requests", "the workflow gave no answer", Refusal.conflict)
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
        async with self.gate.slot(handle.id):
            try:
                result = await self._update(handle, update, cmd, update_id)
            except WorkflowUpdateFailedError as err:
                cause = err.cause
                if isinstance(cause, ApplicationError) and cause.type == "Rejected":
                    d = cause.details[0]
                    raise Rejected(d["field"], d["rule"], Refusal(d["refusal"])) from None
                raise
            except RPCError as err:
                if err.status is RPCStatusCode.NOT_FOUND and await self._ended(handle):
                    raise Rejected("incident", CLOSED) from None
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


class Session:
    """One participant acting on one incident: the protocol's verbs, in its words."""

    def __init__(
        self, incidents: Incidents, incident_id: str, actor: Actor, request_id: str | None = None
    ) -> None:
        self.incidents = incidents
        self.incident_id = incident_id
        self.actor = actor
        self.request_id = request_id

    async def _crisis(self, update: Any, cmd: Command) -> Answer:
        return await self.incidents.act(self.incident_id, update, cmd, self.request_id)

    async def assess(self, assessment: Assessment, reason: str | None = None) -> Answer:
        return await self._crisis(
            CrisisWorkflow.assess, Assess(actor=self.actor, reason=reason, assessment=assessment)
        )

    async def activate(
        self,
        reason: str,
        identifiers: Sequence[AnyIdentifier] = (),
        platforms: list[str] | None = None,
        basis: LegalBasis = VOLUNTARY,
    ) -> Answer:
        cmd = Activate(
            actor=self.actor,
            reason=reason,
            identifiers=list(identifiers),
            platforms=platforms,
            basis=basis,
        )
        return await self._crisis(CrisisWorkflow.activate, cmd)

    async def decline(self, reason: str | None) -> Answer:
        return await self._crisis(CrisisWorkflow.decline, Command(actor=self.actor, reason=reason))

    async def add_content(
        self, identifiers: Sequence[AnyIdentifier], basis: LegalBasis = VOLUNTARY
    ) -> Answer:
        cmd = AddContent(actor=self.actor, identifiers=list(identifiers), basis=basis)
        return await self._crisis(CrisisWorkflow.add_content, cmd)

    async def withdraw_content(self, items: list[int], reason: str) -> Answer:
        cmd = WithdrawContent(actor=self.actor, items=items, reason=reason)
        return await self._crisis(CrisisWorkflow.withdraw_content, cmd)

    async def report_sightings(self, identifiers: Sequence[AnyIdentifier]) -> Answer:
        cmd = ReportSightings(actor=self.actor, identifiers=list(identifiers))
        return await self._crisis(CrisisWorkflow.report_sightings, cmd)

    async def report_false_positive(self, item: int, reason: str) -> Answer:
        cmd = ReportFalsePositive(actor=self.actor, item=item, reason=reason)
        return await self._crisis(CrisisWorkflow.report_false_positive, cmd)

    async def de_escalate(self, reason: str | None, withdraw_open_tasks: bool = False) -> Answer:
        cmd = DeEscalate(actor=self.actor, reason=reason, withdraw_open_tasks=withdraw_open_tasks)
        return await self._crisis(CrisisWorkflow.de_escalate, cmd)

    async def re_escalate(self, reason: str | None) -> Answer:
        return await self._crisis(
            CrisisWorkflow.re_escalate, Command(actor=self.actor, reason=reason)
        )

    async def start_review(self, reason: str | None = None) -> Answer:
        return await self._crisis(
            CrisisWorkflow.start_review, Command(actor=self.actor, reason=reason)
        )

    async def submit_review_input(self, text: str) -> Answer:
        cmd = SubmitReviewInput(actor=self.actor, text=text)
        return await self._crisis(CrisisWorkflow.submit_review_input, cmd)

    async def close(self, reason: str | None = None) -> Answer:
        return await self._crisis(CrisisWorkflow.close, Command(actor=self.actor, reason=reason))

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
            raise Rejected("actor.kind", "only a platform has tasks of its own", Refusal.forbidden)
        return await self.incidents.tasks(self.incident_id, self.actor.id, query)

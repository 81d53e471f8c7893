"""The eucp HTTP API: coordinators steer, platforms answer their own tasks, auditors read.

Each action is the Temporal Update of the protocol core and answers with its result. The
caller's identity comes from its bearer token, never from the body.
"""

import hashlib
import json
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated

import structlog
from fastapi import APIRouter, Body, Depends, FastAPI, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ValidationError
from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError

from eucp import console
from eucp.api import errors
from eucp.api.auth import Gatekeeper, require
from eucp.api.limits import FAILED_SIGN_IN_BURST, BodyLimit, RateLimiter
from eucp.api.metrics import ApiMetrics, MeasureRequests
from eucp.api.openapi import Api
from eucp.api.wire import (
    PlatformView,
    Reported,
    ReportIncident,
    TaskChange,
    TaskChanges,
    TaskReports,
    TimelineEntry,
    body_of,
)
from eucp.protocol.actions import ACTIONS, ActionRow
from eucp.protocol.decisions import COURSE, DecisionKind, LedgerRow
from eucp.protocol.orders import OrderRecord
from eucp.protocol.participants import ID_PATTERN, Actor, ParticipantKind
from eucp.protocol.phases import Phase
from eucp.protocol.refusal import Refusal, RefusalKind
from eucp.protocol.state import Answer, IncidentStatus, Listing, ReportAnswer, TaskPage, TaskQuery
from eucp.protocol.tasks import Task, TaskState
from eucp.runtime import logs
from eucp.runtime.ledger import Ledger, open_ledger
from eucp.runtime.registry import Registry, RegistryFile
from eucp.runtime.settings import Settings
from eucp.runtime.shared import SharedState
from eucp.runtime.temporal import connect
from eucp.runtime.tokens import TokenStore
from eucp.service.incidents import Incidents

FORBIDDEN = RefusalKind.forbidden
log = structlog.get_logger("eucp.api")
STAFF = (ParticipantKind.coordinator, ParticipantKind.auditor)
MAX_SEQ = 2**63 - 1  # the ledger's seq is a signed 64-bit integer in SQLite and PostgreSQL
# a feed's checkpoint is base64url; the longest that fits a request's head, which uvicorn (h11)
# takes up to 16 KiB, with the rest of the request line and the headers
CHECKPOINT_PATTERN = r"^[A-Za-z0-9_-]*$"
MAX_CHECKPOINT = 15_000


class Context:
    """What every request needs, opened once per process."""

    def __init__(
        self, settings: Settings, client: Client, ledger: Ledger, shared: SharedState
    ) -> None:
        self.settings = settings
        self.shared = shared
        self.incidents = Incidents(client, settings, shared)
        self._registry_file = RegistryFile(settings.registry_path)
        self.gatekeeper = Gatekeeper(
            TokenStore(settings.tokens_path),
            failures=RateLimiter(
                shared,
                "failed-sign-ins",
                rate=settings.api_failed_auth_per_minute / 60,
                burst=FAILED_SIGN_IN_BURST,
            ),
            requests=RateLimiter(
                shared,
                "requests",
                rate=settings.api_requests_per_second,
                burst=settings.api_request_burst,
            ),
        )
        self.ledger = ledger

    @property
    def registry(self) -> Registry:
        """The registry file as it is now: participants added or changed while the API runs
        count at once (the file is re-read when it changes)."""
        return self._registry_file.current()


def context(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


# declares the bearer token in the OpenAPI document; the gatekeeper reads the header itself
BEARER = HTTPBearer(
    scheme_name="bearer",
    description="a participant's token (`eucp token issue`): it says who calls",
    auto_error=False,
)


def caller(
    request: Request,
    ctx: Annotated[Context, Depends(context)],
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
) -> Actor:
    return ctx.gatekeeper.authenticate(request, ctx.registry)


Ctx = Annotated[Context, Depends(context)]
Caller = Annotated[Actor, Depends(caller)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="the same key again returns the first answer and changes nothing",
    ),
]


def request_id(actor: Actor, key: str | None) -> str | None:
    """The Update id for an idempotent request: Temporal deduplicates Updates by id."""
    return None if key is None else f"{actor.id}:{key}"


def _number(text: str) -> float | int:
    """A JSON number with a fraction: an integer when it has none, as JSON Schema reads it
    (`2.0` is an `integer`)."""
    value = float(text)
    return int(value) if value.is_integer() else value


def strictly(model: type[BaseModel], raw: bytes) -> None:
    """The body checked against its JSON Schema's types, as the OpenAPI document states them:
    FastAPI validates the parsed JSON in pydantic's lax mode, which takes `0` for `false`,
    `false` for `0` and a number of seconds for a date-time. pydantic's strict JSON mode
    takes JSON's own types only (and ISO 8601 text for dates and durations)."""
    if not raw:
        return
    try:
        typed = json.dumps(json.loads(raw, parse_float=_number))
    except ValueError:  # not JSON, though FastAPI took it: no types to check
        return
    try:
        model.model_validate_json(typed, strict=True)
    except ValidationError as err:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in err.errors()]
        ) from None


router = APIRouter(prefix="/v1", responses=errors.REFUSALS)


def _action_route(row: ActionRow) -> None:
    body_model = body_of(row.command, row.reason_required)

    async def act(
        incident_id: str,
        body: BaseModel,
        actor: Caller,
        ctx: Ctx,
        request: Request,
        key: IdempotencyKey = None,
    ) -> Answer:
        strictly(body_model, await request.body())
        try:  # the body's shape is checked already; the command's own rules are checked here
            cmd = row.command.model_validate({**body.model_dump(), "actor": actor})
        except ValidationError as err:
            errors_in_body = [{**e, "loc": ("body", *e["loc"])} for e in err.errors()]
            raise RequestValidationError(errors_in_body) from None
        try:
            return await ctx.incidents.act(incident_id, row.action, cmd, request_id(actor, key))
        except Refusal as refused:
            if actor.kind not in STAFF and (
                refused.field == "actor.id"
                # closed: only those who took part may learn it existed
                or (
                    refused.field == "incident"
                    and not await ctx.incidents.took_part(incident_id, actor.id)
                )
            ):
                raise errors.unknown_incident() from None  # not one of its participants
            raise

    optional = all(not f.is_required() for f in body_model.model_fields.values())
    # a command whose fields all have defaults may be sent without a body
    act.__annotations__["body"] = (
        Annotated[body_model, Body(default_factory=body_model)] if optional else body_model
    )
    act.__doc__ = f"{row.title}: the {row.update} Update; the phase machine decides who may."
    # an action that needs a reason needs a body to give it in, though the protocol's own
    # order of refusals (who, when, then why) is kept for a request without one
    required = {"requestBody": {"required": True}} if optional and row.reason_required else None
    router.add_api_route(
        f"/incidents/{{incident_id}}/{row.path}",
        act,
        methods=["POST"],
        response_model=Answer,
        name=row.path,
        summary=row.path.replace("-", " "),
        openapi_extra=required,
    )


for _row in ACTIONS.values():
    _action_route(_row)


@router.post(
    "/incidents",
    status_code=201,
    response_model=Reported,
    responses={200: {"model": Reported, "description": "the same `Idempotency-Key` again"}},
)
async def report_incident(
    body: ReportIncident,
    actor: Caller,
    ctx: Ctx,
    request: Request,
    response: Response,
    key: IdempotencyKey = None,
) -> Reported:
    """A participant reports a potential crisis, under its own name."""
    strictly(ReportIncident, await request.body())
    if actor.kind is ParticipantKind.auditor:
        raise Refusal("Authorization", "auditors read; they do not report", FORBIDDEN)
    if body.report.reporter != actor.id:
        rule = f"you report as {actor.id}, not {body.report.reporter}"
        raise Refusal("report.reporter", rule, FORBIDDEN)
    incident_id = body.incident_id
    if incident_id is None:
        seed = f"{actor.id}:{key}" if key else None
        incident_id = "inc-" + (
            hashlib.sha256(seed.encode()).hexdigest()[:16] if seed else secrets.token_hex(8)
        )
    try:
        sla = (
            None
            if body.sla is None
            else ctx.settings.sla.model_copy(update=body.sla.model_dump(exclude_unset=True))
        )  # what the body leaves out keeps this process's EUCP_SLA__* values
        await ctx.incidents.report(incident_id, body.report, ctx.registry.public(), sla)
    except WorkflowAlreadyStartedError:
        if key is None:
            raise Refusal("incident_id", f"{incident_id} already exists") from None
        response.status_code = 200  # the retried request: same incident, nothing new
    return Reported(incident_id=incident_id)


@router.get("/incidents", response_model=list[Listing])
async def list_incidents(
    actor: Caller,
    ctx: Ctx,
    phase: Annotated[Phase | None, Query(description="only incidents in this phase")] = None,
    platform: Annotated[
        str | None,
        Query(
            pattern=ID_PATTERN,
            description="only those this platform was given a part in (suspended since too)",
        ),
    ] = None,
    reporter: Annotated[
        str | None,
        Query(pattern=ID_PATTERN, description="only those this participant reported"),
    ] = None,
    exercise: Annotated[
        bool | None, Query(description="true: only exercises; false: no exercise")
    ] = None,
) -> list[Listing]:
    """The incidents the caller may read with `GET /v1/incidents/{id}`, and no other, that the
    filters find: coordinators and auditors any, a platform those it was given a part in, by
    phase or exercise (403 naming another platform or a reporter), anyone else none. Read from
    the visibility store alone, by the search attributes of each incident (422 for a phase or
    an id that cannot be)."""
    return await ctx.incidents.listings_for(actor, phase, platform, reporter, exercise)


@router.get("/incidents/{incident_id}", response_model=IncidentStatus | PlatformView)
async def incident(incident_id: str, actor: Caller, ctx: Ctx) -> IncidentStatus | PlatformView:
    status = await ctx.incidents.status(incident_id)
    if actor.kind in STAFF:
        return status
    if actor.kind is ParticipantKind.platform and actor.id in status.platforms:
        c = status.crisis
        return PlatformView(
            incident_id=incident_id, title=c.title, phase=c.phase, tasks=status.platforms[actor.id]
        )
    if actor.kind is ParticipantKind.member_state:
        # an authority the incident concerns reads it, without others' orders
        view = await ctx.incidents.view(incident_id, actor)
        if view is not None:  # each platform's figures, without task ids: those are its own
            figures = {
                platform: summary.model_copy(
                    update={"open_breaches": [], "open_legal_deadlines": [], "open_targets": []}
                )
                for platform, summary in status.platforms.items()
            }
            return IncidentStatus(crisis=view, platforms=figures)
    raise errors.unknown_incident()


@router.get("/incidents/{incident_id}/timeline", response_model=list[TimelineEntry])
async def timeline(incident_id: str, actor: Caller, ctx: Ctx) -> list[TimelineEntry]:
    """The incident's course, decision by decision: for staff, the platforms taking part and
    the Member States it concerns."""
    if actor.kind not in STAFF:
        allowed = (
            await ctx.incidents.took_part(incident_id, actor.id)
            if actor.kind is ParticipantKind.platform
            else actor.kind is ParticipantKind.member_state
            and await ctx.incidents.view(incident_id, actor) is not None
        )
        if not allowed:
            raise errors.unknown_incident()
    return [
        TimelineEntry(
            at=d.at,
            kind=d.kind,
            by=d.actor.id,
            reason=d.reason,
            # an update is for everyone who reads the course; a threat's text only for those
            # it was sent to
            text=d.inputs.get("text") if d.kind is DecisionKind.situation_updated else None,
        )
        for d in (row.decision for row in ctx.ledger.rows(incident_id))
        if d.kind in COURSE
        # a platform reads of its own joining or suspension, not of another's
        and not (
            actor.kind is ParticipantKind.platform
            and d.inputs.get("platform") not in (None, actor.id)
        )
    ]


Platform = Annotated[
    str | None,
    Query(
        pattern=ID_PATTERN,
        description="the platform whose tasks to read: coordinators and auditors must name one "
        "(422 without it); a platform reads its own and may leave it out (403 for another's)",
    ),
]


def whose_tasks(actor: Actor, platform: str | None) -> str:
    """The platform whose tasks a caller reads: a platform its own; coordinators and auditors
    name it."""
    if actor.kind is ParticipantKind.platform:
        if platform not in (None, actor.id):
            raise Refusal("platform", "a platform sees its own tasks only", FORBIDDEN)
        return actor.id
    require(actor, *STAFF)
    if platform is None:
        raise Refusal("platform", "name the platform whose tasks to list", RefusalKind.invalid)
    return platform


@router.get("/incidents/{incident_id}/tasks", response_model=TaskPage)
async def tasks(
    incident_id: str,
    actor: Caller,
    ctx: Ctx,
    platform: Platform = None,
    state: TaskState | None = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> TaskPage:
    """A platform lists its own tasks; coordinators and auditors name the platform."""
    platform = whose_tasks(actor, platform)
    if not await ctx.incidents.took_part(incident_id, platform):
        if actor.kind is ParticipantKind.platform:  # as for no such incident: tell nothing
            raise errors.unknown_incident()
        await ctx.incidents.handle(incident_id).describe()  # 404 if there is no such incident
        rule = f"{platform} has no tasks in {incident_id}"
        raise Refusal("platform", rule, RefusalKind.not_found)
    return await ctx.incidents.tasks(
        incident_id, platform, TaskQuery(state=state, offset=offset, limit=limit)
    )


@router.get("/tasks", response_model=TaskChanges)
async def task_changes(
    actor: Caller,
    ctx: Ctx,
    since: Annotated[
        str | None,
        Query(
            max_length=MAX_CHECKPOINT,
            pattern=CHECKPOINT_PATTERN,
            description="the `checkpoint` of an earlier answer, as it came (422 for any other)",
        ),
    ] = None,
    platform: Platform = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> TaskChanges:
    """A platform's tasks across its incidents that changed since the checkpoint `since`
    (every one without it), oldest change first, and the checkpoint to continue from: a hash
    matcher follows its tasks with it. A platform reads its own; coordinators and auditors
    name the platform. A withdrawn task whose item had been reported as a false positive is
    marked `false_positive`."""
    platform = whose_tasks(actor, platform)
    found = await ctx.incidents.task_changes(platform, since, limit)
    withdrawn = {i for i, task, _ in found.tasks if task.state is TaskState.withdrawn}
    reported = {i: false_positives(ctx.ledger, i) for i in sorted(withdrawn)}
    return TaskChanges(
        changes=[
            TaskChange(
                incident_id=incident_id,
                task=task,
                changed_at=at,
                false_positive=confirmed_false_positive(task, reported.get(incident_id, {})),
            )
            for incident_id, task, at in found.tasks
        ],
        checkpoint=found.checkpoint,
        as_of=found.as_of,
        more=found.more,
    )


def false_positives(ledger: Ledger, incident_id: str) -> dict[int, datetime]:
    """When each item of the incident was first reported as a false positive, from its ledger."""
    first: dict[int, datetime] = {}
    for row in ledger.rows(incident_id):
        d = row.decision
        if d.kind is DecisionKind.false_positive_reported:
            first.setdefault(int(d.inputs["item"]), d.at)
    return first


def confirmed_false_positive(task: Task, reported: dict[int, datetime]) -> bool:
    """A task withdrawn after its item was reported as a false positive."""
    at = reported.get(task.item_no)
    return (
        task.state is TaskState.withdrawn
        and at is not None
        and task.resolved_at is not None
        and at <= task.resolved_at
    )


@router.get("/incidents/{incident_id}/orders", response_model=list[OrderRecord])
async def orders(incident_id: str, actor: Caller, ctx: Ctx) -> list[OrderRecord]:
    """The incident's removal orders the caller may see: all for staff, its own for a
    platform, those it issued or its Member State hosts for an authority."""
    if actor.kind is ParticipantKind.platform and not await ctx.incidents.took_part(
        incident_id, actor.id
    ):
        raise errors.unknown_incident()
    if actor.kind not in (*STAFF, ParticipantKind.platform, ParticipantKind.member_state):
        raise errors.unknown_incident()
    return await ctx.incidents.orders(incident_id, actor)


@router.post("/incidents/{incident_id}/tasks/reports", response_model=ReportAnswer)
async def report_tasks(
    incident_id: str,
    body: TaskReports,
    actor: Caller,
    ctx: Ctx,
    request: Request,
    key: IdempotencyKey = None,
) -> ReportAnswer:
    """A platform reports on many of its tasks at once (acknowledged, removed, declined...)."""
    strictly(TaskReports, await request.body())
    require(actor, ParticipantKind.platform)
    if not await ctx.incidents.took_part(incident_id, actor.id):
        raise errors.unknown_incident()
    participation = ctx.incidents.as_participant(incident_id, actor, request_id(actor, key))
    answer = await participation.report_tasks(body.reports)
    log.info(
        "tasks reported",
        incident_id=incident_id,
        platform=actor.id,
        changed=answer.changed,
        refused=sorted(answer.refused),
    )
    return answer


@router.get("/incidents/{incident_id}/decisions", response_model=list[LedgerRow])
async def decisions(
    incident_id: str,
    actor: Caller,
    ctx: Ctx,
    after: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[LedgerRow]:
    """The incident's decisions as recorded in the ledger, in order."""
    require(actor, *STAFF)
    return ctx.ledger.rows(incident_id, after_seq=after, limit=limit)


def from_environment() -> FastAPI:
    """The API as each process of `eucp api` serves it: its settings from EUCP_*."""
    return create_app(logs.configured_settings())


def create_app(settings: Settings, client: Client | None = None) -> FastAPI:
    """The API over a Temporal client (connected at start-up when not given)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        connected = client or await connect(settings)
        shared = SharedState(settings.shared_state_url)
        with open_ledger(settings.ledger_url) as ledger:
            app.state.ctx = Context(settings, connected, ledger, shared)
            app.state.console = console.Console(shared)
            yield
        shared.close()

    app = Api(
        title="eucp",
        version="1",
        summary="The EU Crisis Protocol: coordinators steer, platforms answer, auditors read.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/v1/openapi.json",
    )
    errors.install(app)
    app.include_router(router)
    console.install(app)
    metrics = ApiMetrics()
    app.add_route("/metrics", metrics.render, include_in_schema=False)
    app.add_middleware(BodyLimit, limit=settings.api_max_body_bytes)
    app.add_middleware(MeasureRequests, metrics=metrics)
    return app

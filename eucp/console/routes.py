"""The console's HTTP layer: sign-in, the incidents list, an incident's page with its live
sections and its actions, and the review report.

Thin on purpose: pages read through `Reader` (the service layer, visibility, the ledger) and
act through the service's `Participation`; who may do what is the table of actions' answer.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Protocol
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from eucp.api.auth import Gatekeeper
from eucp.console import actions, views
from eucp.console.csrf import FIELD, Csrf
from eucp.console.reads import Reader
from eucp.console.session import (
    COOKIE,
    ConsoleSession,
    Notice,
    Sessions,
    SignInRefused,
    authenticate,
    new_cookie,
)
from eucp.protocol.actions import Action, allowed_actions
from eucp.protocol.incident import PROTOCOL_NAMES, CriterionStatus
from eucp.protocol.phases import Phase
from eucp.protocol.refusal import Refusal, RefusalKind
from eucp.protocol.state import CrisisStatus
from eucp.runtime.ledger import Ledger
from eucp.runtime.registry import Registry
from eucp.runtime.settings import Settings
from eucp.runtime.shared import SharedState
from eucp.service.incidents import Incidents

PREFIX = "/console"
HERE = Path(__file__).parent
DECISIONS_SHOWN = 50
POLL_MS = 2000  # an incident's page
POLL_LIST_MS = 5000  # the list: one query per running incident each time
FIGURES_MAX_AGE = 5.0  # s: times to acknowledge on a live page may lag the ledger this much
LIVE_SECTIONS = (
    "summary",
    "timeline",
    "governance",
    "criteria",
    "platforms",
    "orders",
    "decisions",
    "actions",
)
PAGE_CSP = (
    "default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"

templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters["span"] = views.span
templates.env.filters["when"] = views.when


class Backend(Protocol):
    """What the console needs of the API's per-process context (`eucp.api.app.Context`)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def incidents(self) -> Incidents: ...
    @property
    def ledger(self) -> Ledger: ...
    @property
    def gatekeeper(self) -> Gatekeeper: ...
    @property
    def registry(self) -> Registry: ...


class Console:
    """The console's own state in the API process: sessions, the CSRF key, the read caches."""

    def __init__(self, state: SharedState) -> None:
        self.sessions = Sessions(state)
        self.csrf = Csrf(state.secret("console-csrf"))
        self._reader: Reader | None = None

    def reader(self, backend: Backend) -> Reader:
        if self._reader is None:
            self._reader = Reader(backend.incidents, backend.ledger)
        return self._reader


class SignInNeeded(Exception):
    """No live session: pages go to the sign-in form, live updates answer 401."""


class Refused(Exception):
    """A console request refused with a page saying why."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message


@dataclass
class Visit:
    """One request: the browser's cookie (new if it had none) and its session, if signed in."""

    request: Request
    backend: Backend
    console: Console
    cookie: str
    new_cookie: bool
    session: ConsoleSession | None

    @property
    def csrf_token(self) -> str:
        return self.console.csrf.token(self.cookie)

    def signed_in(self) -> ConsoleSession:
        if self.session is None:
            raise SignInNeeded
        return self.session

    async def form(self) -> dict[str, str]:
        """The posted form, its CSRF token checked against this browser's cookie."""
        data = {k: v for k, v in (await self.request.form()).items() if isinstance(v, str)}
        sent_with_cookie = None if self.new_cookie else self.cookie
        self.console.csrf.check(sent_with_cookie, data.get(FIELD))
        return data

    @property
    def reader(self) -> Reader:
        return self.console.reader(self.backend)


def visit(request: Request) -> Visit:
    backend: Backend = request.app.state.ctx
    console: Console = request.app.state.console
    cookie = request.cookies.get(COOKIE)
    session = None
    if cookie:
        try:
            session = console.sessions.find(request, cookie, backend.gatekeeper, backend.registry)
        except SignInRefused as refused:
            raise Refused(refused.status, "Too many requests", refused.message) from None
    return Visit(request, backend, console, cookie or new_cookie(), not cookie, session)


Browser = Annotated[Visit, Depends(visit)]
router = APIRouter(prefix=PREFIX, include_in_schema=False)


# ---- responses -----------------------------------------------------------------------------


def secured(v: Visit, response: Response, csp: str = PAGE_CSP) -> Response:
    """Every console answer: no caching, a strict CSP, and the console cookie if it is new."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = csp
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    if v.new_cookie:
        set_cookie(v.request, response, v.cookie)
    return response


def set_cookie(request: Request, response: Response, value: str) -> None:
    response.set_cookie(
        COOKIE,
        value,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def page(v: Visit, name: str, status: int = 200, **context: Any) -> Response:
    base = {
        "session": v.session,
        "csrf_field": FIELD,
        "csrf": v.csrf_token,
        "prefix": PREFIX,
        "now": datetime.now(UTC),
    }
    response = templates.TemplateResponse(v.request, name, base | context, status_code=status)
    return secured(v, response)


def redirect(v: Visit, path: str) -> Response:
    return secured(v, RedirectResponse(f"{PREFIX}{path}", status_code=303))


# ---- sign-in -------------------------------------------------------------------------------


@router.get("")
async def home(v: Browser) -> Response:
    return redirect(v, "/incidents" if v.session else "/sign-in")


@router.get("/sign-in")
async def sign_in_form(v: Browser) -> Response:
    return page(v, "sign_in.html")


@router.post("/sign-in")
async def sign_in(v: Browser) -> Response:
    data = await v.form()
    try:
        actor = authenticate(
            v.request, data.get("token", "").strip(), v.backend.gatekeeper, v.backend.registry
        )
    except SignInRefused as refused:
        return page(v, "sign_in.html", status=refused.status, error=refused.message)
    v.console.sessions.close(v.cookie)
    response = redirect(v, "/incidents")
    set_cookie(v.request, response, v.console.sessions.open(actor, data["token"].strip()))
    return response


@router.post("/sign-out")
async def sign_out(v: Browser) -> Response:
    await v.form()
    v.console.sessions.close(v.cookie)
    response = redirect(v, "/sign-in")
    set_cookie(v.request, response, new_cookie())
    return response


# ---- the incidents list --------------------------------------------------------------------


def list_query(request: Request) -> views.ListQuery:
    q = request.query_params
    return views.ListQuery(
        phase=q.get("phase", ""),
        text=q.get("q", ""),
        breached_only=q.get("breached") == "1",
        sort=q.get("sort", "age") if q.get("sort") in views.SORTS else "age",
        descending=q.get("order") == "desc",
        exercise=q.get("exercise", "") if q.get("exercise") in views.EXERCISES else "",
    )


async def list_context(v: Visit) -> dict[str, Any]:
    query = list_query(v.request)
    search = query.search()
    listed = await v.reader.listing(search)
    rows = views.select((views.incident_row(x) for x in listed), query)
    narrowed = bool(search.conditions()) and not rows  # "none matches": of how many in all?
    return {
        "query": query,
        "rows": rows,
        "total": await v.reader.count() if narrowed else len(listed),
        "phases": [*Phase, "unreadable"],
        "urlencode": urlencode,
    }


@router.get("/incidents")
async def incidents(v: Browser) -> Response:
    v.signed_in()
    context = await list_context(v)
    live = f"{PREFIX}/incidents/_live?{v.request.url.query}"
    return page(v, "incidents.html", live=live, poll_ms=POLL_LIST_MS, **context)


@router.get("/incidents/_live")  # "_": never an incident id
async def incidents_live(v: Browser) -> Response:
    v.signed_in()
    context = await list_context(v)
    return live_sections(v, {"rows": "_incident_rows.html"}, context)


# ---- one incident --------------------------------------------------------------------------


async def incident_context(v: Visit, incident_id: str) -> dict[str, Any]:
    session = v.signed_in()
    reader = v.reader
    status, computed, rows = await asyncio.gather(
        reader.status(incident_id),
        reader.computed(incident_id, max_age=FIGURES_MAX_AGE),
        reader.decisions(incident_id, DECISIONS_SHOWN),
    )
    crisis = status.crisis
    allowed = allowed_actions(crisis.phase, session.actor.kind)
    forms = actions.offered(allowed) if session.may_act else []
    review, course = (computed.figures, computed.course) if computed else (None, [])
    settings = v.backend.settings
    return {
        "incident_id": incident_id,
        "crisis": crisis,
        "criteria": views.criteria(crisis.assessment),
        "platforms": views.platform_rows(status, review, course),
        "situation": views.situation(course),
        "orders": views.order_rows(crisis.orders),
        # an order's items are withdrawn with the withdraw content form, prefilled
        "withdraw": next((f for f in forms if f.action is Action.withdraw_content), None),
        "decisions": views.decision_rows(rows),
        **form_context(crisis),
        "forms": forms,
        "workflow_url": f"{settings.temporal_ui_url.rstrip('/')}/namespaces/"
        f"{quote(settings.temporal_namespace)}/workflows/{quote(incident_id)}",
    }


def form_context(crisis: CrisisStatus) -> dict[str, Any]:
    """What the action forms' inputs show besides the values they are given (`_form.html`)."""
    return {
        "criterion_states": list(CriterionStatus),
        "protocols": PROTOCOL_NAMES,
        "platforms_offered": actions.platforms_offered(crisis),
    }


@router.get("/incidents/{incident_id}")
async def incident(incident_id: str, v: Browser) -> Response:
    context = await incident_context(v, incident_id)
    notice = v.console.sessions.take_notice(v.signed_in(), incident_id)
    live = f"{PREFIX}/incidents/{quote(incident_id)}/live"
    return page(v, "incident.html", live=live, poll_ms=POLL_MS, notice=notice, **context)


@router.get("/incidents/{incident_id}/live")
async def incident_live(incident_id: str, v: Browser) -> Response:
    context = await incident_context(v, incident_id)
    return live_sections(v, {s: f"_{s}.html" for s in LIVE_SECTIONS}, context)


def live_sections(v: Visit, parts: Mapping[str, str], context: dict[str, Any]) -> Response:
    """The page's live sections rendered alone, for the page's script to swap in."""
    full: dict[str, Any] = {"session": v.session, "csrf_field": FIELD, "csrf": v.csrf_token}
    full |= {"prefix": PREFIX, "now": datetime.now(UTC), **context}
    html = {k: templates.get_template(name).render(full) for k, name in parts.items()}
    return secured(v, JSONResponse({"sections": html}))


# ---- actions -------------------------------------------------------------------------------


@router.post("/incidents/{incident_id}/actions/{action}")
async def act(incident_id: str, action: str, v: Browser) -> Response:
    """First the confirmation page (the inputs checked, the phase machine asked); on confirm,
    the Update, whose answer (or refusal with its rule) the incident page then shows."""
    session = v.signed_in()
    if not session.may_act:
        raise Refused(403, "Read only", "Auditors read; only coordinators act on an incident.")
    data = await v.form()
    form = next((f for a, f in actions.FORMS.items() if a == action), None)
    if form is None:
        raise Refused(404, "No such action", f"The console has no action {action!r}.")
    if data.get("confirmed") != "yes":
        status = await v.reader.status(incident_id)
        sub = actions.read(form, data, status.crisis.phase, session.actor)
        return page(
            v,
            "confirm.html",
            status=200 if sub.ok else 422,
            incident_id=incident_id,
            crisis=status.crisis,
            sub=sub,
            values=sub.echo(),
            nonce=secrets.token_urlsafe(16),
            criteria=views.criteria(sub.assessment),
            **form_context(status.crisis),
        )
    sub = actions.read(form, data, None, session.actor)
    notice = await answer_of(v, session, incident_id, sub, data.get("nonce"))
    v.console.sessions.keep_notice(session, incident_id, notice)
    return redirect(v, f"/incidents/{quote(incident_id)}#answer")


async def answer_of(
    v: Visit, session: ConsoleSession, incident_id: str, sub: actions.Submission, nonce: str | None
) -> Notice:
    """The Update's answer, or why nothing was sent or changed, to show on the incident page.
    The confirmation's nonce is the Update id: a form sent twice changes the crisis once."""
    label = sub.form.label
    if not sub.ok:
        return Notice(False, f"Not sent: {label}", tuple(sub.problems))
    request_id = f"{session.actor.id}:console:{nonce}" if nonce else None
    participation = v.backend.incidents.as_participant(incident_id, session.actor, request_id)
    try:
        answer = await actions.execute(participation, sub)
    except Refusal as refused:
        if refused.kind is RefusalKind.busy:  # nothing was sent
            return Notice(False, f"Not sent: {label}", (refused.rule,))
        return Notice(
            False,
            f"Refused: {label}",
            (f"rule: {refused.rule}", f"field: {refused.field}", f"refusal: {refused.kind}"),
        )
    except ValidationError as err:
        return Notice(False, f"Not sent: {label}", tuple(e["msg"] for e in err.errors()))
    lines = [f"phase: {answer.phase}", f"decisions recorded: {len(answer.decisions)}"]
    if sub.form.identifiers:
        lines.append(
            f"items accepted: {len(answer.accepted_items)}, duplicates: {answer.duplicates},"
            f" low quality: {answer.low_quality}"
        )
    return Notice(True, f"Accepted: {label}", tuple(lines))


# ---- the review report ---------------------------------------------------------------------


@router.get("/incidents/{incident_id}/report")
async def report(incident_id: str, v: Browser) -> Response:
    v.signed_in()
    return page(v, "report.html", incident_id=incident_id)


@router.get("/incidents/{incident_id}/report.html")
async def report_html(incident_id: str, v: Browser) -> Response:
    v.signed_in()
    html = await v.reader.report_html(incident_id)
    return secured(v, HTMLResponse(html), csp=REPORT_CSP)

"""One error shape for every refusal: `{"error": {"field", "rule", "refusal"}}`.

Every refusal is the protocol's `Refusal`, whoever raised it (the phase machine in the
workflow, the service, authentication, the routes); FastAPI's own validation errors, unknown
paths and an unreachable Temporal answer in the same shape. `REFUSALS` declares them, with
their headers, for every route of the OpenAPI document (the wire model `ErrorBody`).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from temporalio.service import RPCError, RPCStatusCode

from eucp.api.wire import ErrorBody, RefusalDetails
from eucp.protocol.refusal import Refusal, RefusalKind

TEMPORAL_RETRY_AFTER = 5  # s
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _refused(
    description: str, headers: dict[str, tuple[str, dict[str, Any]]] | None = None
) -> dict[str, Any]:
    """A refusal's response: its description, the error body and the headers it always has."""
    declared = {
        name: {"description": what, "required": True, "schema": schema}
        for name, (what, schema) in (headers or {}).items()
    }
    return {"model": ErrorBody, "description": description} | (
        {"headers": declared} if declared else {}
    )


_RETRY_AFTER = ("whole seconds to wait before trying again", {"type": "integer", "minimum": 1})

# What any route may answer besides its own result, in the error body: declared once for the
# API's router. Which a route gives depends on the caller and the incident's state (a refused
# action is 409, an incident the caller may not see 404), so every route declares them all.
REFUSALS: dict[int | str, dict[str, Any]] = {
    401: _refused(
        "`unauthenticated`: no bearer token, or one that is unknown or rotated",
        {"WWW-Authenticate": ("`Bearer`", {"type": "string"})},
    ),
    403: _refused("`forbidden`: the caller's kind of participant may not do this"),
    404: _refused("`not_found`: no such incident, or one the caller may not see (the same answer)"),
    409: _refused("`conflict`: the protocol refuses this now (its phase, the task's state)"),
    413: _refused("`too_large`: the request body is over the API's limit"),
    422: _refused("`invalid`: an input breaks a rule; for the request's form, `errors` too"),
    429: _refused(
        "`busy`: over the caller's request rate, too many failed sign-ins, or the incident is busy",
        {"Retry-After": _RETRY_AFTER},
    ),
    503: _refused(
        "`unavailable`: the workflow service did not answer", {"Retry-After": _RETRY_AFTER}
    ),
}


def unknown_incident() -> Refusal:
    """The one answer for an incident that does not exist and for one the caller may not see,
    so that guessing ids tells nothing."""
    return Refusal("incident_id", "no such incident", RefusalKind.not_found)


def response(refusal: Refusal) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if refusal.kind is RefusalKind.unauthenticated else {}
    if refusal.retry_after is not None:
        headers["Retry-After"] = str(refusal.retry_after)
    return JSONResponse(refusal.body(), refusal.status, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(Refusal)
    async def refused(_: Request, refusal: Refusal) -> JSONResponse:
        return response(refusal)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": ".".join(str(p) for p in e["loc"]), "rule": e["msg"]} for e in err.errors()
        ]
        first = problems[0] if problems else {"field": "body", "rule": "invalid"}
        return response(
            Refusal(first["field"], first["rule"], RefusalKind.invalid, problems=problems)
        )

    @app.exception_handler(RPCError)
    async def rpc(_: Request, err: RPCError) -> JSONResponse:
        if err.status == RPCStatusCode.NOT_FOUND:
            return response(unknown_incident())
        rule = f"the workflow service did not answer: {err.message}"
        error = RefusalDetails(field="temporal", rule=rule, refusal="unavailable")
        body = ErrorBody(error=error).model_dump(mode="json", exclude_defaults=True)
        return JSONResponse(body, 503, headers={"Retry-After": str(TEMPORAL_RETRY_AFTER)})

    @app.exception_handler(StarletteHTTPException)
    async def http(request: Request, err: StarletteHTTPException) -> JSONResponse:
        if err.status_code == 400:  # FastAPI could not read the body (not UTF-8): as bad JSON
            return response(Refusal("body", str(err.detail), RefusalKind.invalid))
        kind = RefusalKind.not_found if err.status_code == 404 else RefusalKind.invalid
        answer = response(Refusal("path", str(err.detail), kind, status=err.status_code))
        answer.headers.update(err.headers or {})
        if err.status_code == 405:  # RFC 9110 15.5.6: every method the path has, not one route's
            answer.headers["Allow"] = ", ".join(allowed_methods(request))
        return answer


def allowed_methods(request: Request) -> list[str]:
    """The methods of every route at the request's path (Starlette's own 405 names those of the
    first route it found there only: `POST` for `/v1/incidents`, which also has `GET`), asked
    of each route as the router asks it, method by method."""
    routes = request.app.router.routes
    return [
        method
        for method in METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    ]

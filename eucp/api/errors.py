"""One error shape for every refusal: `{"error": {"field", "rule", "refusal"}}`.

Every refusal is the protocol's `Refusal`, whoever raised it (the phase machine in the
workflow, the service, authentication, the routes); FastAPI's own validation errors, unknown
paths and an unreachable Temporal answer in the same shape.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.service import RPCError, RPCStatusCode

from eucp.protocol.refusal import Refusal, RefusalKind

TEMPORAL_RETRY_AFTER = 5  # s


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
        body = {"error": {"field": "temporal", "rule": rule, "refusal": "unavailable"}}
        return JSONResponse(body, 503, headers={"Retry-After": str(TEMPORAL_RETRY_AFTER)})

    @app.exception_handler(StarletteHTTPException)
    async def http(_: Request, err: StarletteHTTPException) -> JSONResponse:
        kind = RefusalKind.not_found if err.status_code == 404 else RefusalKind.invalid
        return response(Refusal("path", str(err.detail), kind, status=err.status_code))

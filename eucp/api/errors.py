"""One error shape for every refusal: `{"error": {"field", "rule", "refusal"}}`."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.service import RPCError, RPCStatusCode

from eucp.protocol.phases import Refusal
from eucp.service.incidents import Rejected
from eucp.service.update_gate import Busy

STATUS = {
    Refusal.invalid: 422,
    Refusal.forbidden: 403,
    Refusal.not_found: 404,
    Refusal.conflict: 409,
}


class ApiError(Exception):
    def __init__(self, status: int, field: str, rule: str, retry_after: int | None = None) -> None:
        super().__init__(f"{field}: {rule}")
        self.status = status
        self.field = field
        self.rule = rule
        self.retry_after = retry_after


def unknown_incident() -> ApiError:
    """The one answer for an incident that does not exist and for one the caller may not see,
    so that guessing ids tells nothing."""
    return ApiError(404, "incident_id", "no such incident")


def body(field: str, rule: str, refusal: str) -> dict[str, dict[str, str]]:
    return {"error": {"field": field, "rule": rule, "refusal": refusal}}


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, err: ApiError) -> JSONResponse:
        refusal = {
            401: "unauthenticated",
            403: Refusal.forbidden,
            404: Refusal.not_found,
            409: Refusal.conflict,
            413: "too_large",
            429: "busy",
        }.get(err.status, Refusal.invalid)
        headers = {"WWW-Authenticate": "Bearer"} if err.status == 401 else {}
        if err.retry_after is not None:
            headers["Retry-After"] = str(err.retry_after)
        return JSONResponse(body(err.field, err.rule, refusal), err.status, headers=headers)

    @app.exception_handler(Rejected)
    async def rejected(_: Request, err: Rejected) -> JSONResponse:
        return JSONResponse(body(err.field, err.rule, err.refusal), STATUS[err.refusal])

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": ".".join(str(p) for p in e["loc"]), "rule": e["msg"]} for e in err.errors()
        ]
        first = problems[0] if problems else {"field": "body", "rule": "invalid"}
        content = body(first["field"], first["rule"], Refusal.invalid) | {"errors": problems}
        return JSONResponse(content, 422)

    @app.exception_handler(Busy)
    async def busy(_: Request, err: Busy) -> JSONResponse:
        headers = {"Retry-After": str(err.retry_after)}
        return JSONResponse(body("incident", str(err), "busy"), 429, headers=headers)

    @app.exception_handler(RPCError)
    async def rpc(request: Request, err: RPCError) -> JSONResponse:
        if err.status == RPCStatusCode.NOT_FOUND:
            return await api_error(request, unknown_incident())
        headers = {"Retry-After": "5"}
        return JSONResponse(
            body("temporal", f"the workflow service did not answer: {err.message}", "unavailable"),
            503,
            headers=headers,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http(_: Request, err: StarletteHTTPException) -> JSONResponse:
        refusal = {404: Refusal.not_found, 405: Refusal.invalid}.get(err.status_code, "invalid")
        return JSONResponse(body("path", str(err.detail), refusal), err.status_code)

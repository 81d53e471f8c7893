"""The coordinator console: the API process serves it under `/console`.

Coordinators watch an incident move and act on it; auditors see the same pages read-only.
Pages are server-rendered (Jinja2) with one small script of our own for live updates; nothing
is loaded from anywhere else. See docs/console.md.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from eucp.console.csrf import CsrfRefused
from eucp.console.reads import NoSuchIncident, Unanswered
from eucp.console.routes import HERE, PREFIX, Console, Refused, SignInNeeded, page, router, visit

__all__ = ["Console", "install"]


def install(app: FastAPI) -> None:
    """Adds the console's pages, its static files and its refusal pages to the API app; its
    lifespan opens the `Console` (`app.state.console`) over the processes' shared state."""
    app.include_router(router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="console-static")

    @app.exception_handler(SignInNeeded)
    async def sign_in_needed(request: Request, _: SignInNeeded) -> Response:
        if "application/json" in request.headers.get("accept", ""):
            return JSONResponse({"signed_out": True}, 401)  # the page's script says so
        return RedirectResponse(f"{PREFIX}/sign-in", 303, headers={"Cache-Control": "no-store"})

    @app.exception_handler(Refused)
    async def refused(request: Request, err: Refused) -> Response:
        return _refusal(request, err.status, err.title, err.message)

    @app.exception_handler(CsrfRefused)
    async def csrf(request: Request, err: CsrfRefused) -> Response:
        message = f"Refused: {err}. Reload the page and submit the form again."
        return _refusal(request, 403, "Form refused", message)

    @app.exception_handler(NoSuchIncident)
    async def unknown(request: Request, err: NoSuchIncident) -> Response:
        return _refusal(request, 404, "No such incident", f"No incident {err} is known.")

    @app.exception_handler(Unanswered)
    async def unanswered(request: Request, err: Unanswered) -> Response:
        message = f"The workflows of {err} did not answer in time: is a worker running?"
        return _refusal(request, 503, "No answer", message)


def _refusal(request: Request, status: int, title: str, message: str) -> Response:
    try:
        v = visit(request)
    except Refused:
        return Response(message, status, media_type="text/plain")
    return page(v, "refused.html", status=status, title=title, message=message)

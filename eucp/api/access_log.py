"""One structured log line per API request: who (the participant the token resolved to), which
incident, which route, the status and how long it took, so that a crisis's requests can be
followed by incident id in the JSON logs. Never the token, the query string or the body."""

from __future__ import annotations

import time

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger("eucp.api")

PARTICIPANT = "participant"  # where authentication leaves the caller's id in the request state


class LogRequests:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sent(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sent)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            params = scope.get("path_params") or {}
            log.info(
                "request",
                method=scope["method"],
                route=route,
                status=status,
                ms=round((time.perf_counter() - started) * 1000, 1),
                participant=scope.get("state", {}).get(PARTICIPANT),
                incident_id=params.get("incident_id"),
            )

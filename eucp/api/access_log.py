"""One structured log line per API request: who (the participant the token resolved to), which
incident, which route, the status, how long it took and which API process answered, so that a
crisis's requests can be followed by incident id in the JSON logs. Never the token, the query
string or the body."""

from __future__ import annotations

import os

import structlog
from starlette.types import Scope

log = structlog.get_logger("eucp.api")

PARTICIPANT = "participant"  # where authentication leaves the caller's id in the request state


def log_request(scope: Scope, route: str, status: int, seconds: float) -> None:
    """Logs an answered request (`eucp.api.metrics.MeasureRequests` calls it)."""
    log.info(
        "request",
        method=scope["method"],
        route=route,
        status=status,
        ms=round(seconds * 1000, 1),
        participant=scope.get("state", {}).get(PARTICIPANT),
        incident_id=(scope.get("path_params") or {}).get("incident_id"),
        process=os.getpid(),
    )

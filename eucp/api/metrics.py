"""Prometheus metrics of the API process: requests by route and status, their latencies, and
the refusals that matter during a crisis (429s, failed sign-ins); for a coordinator's or
auditor's scrape also the open incidents' tasks by platform and state and their open SLA
breaches, read from the platform workflows at scrape time."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.client import Client

from eucp.api.access_log import log_request
from eucp.api.auth import require
from eucp.api.middleware import HttpMiddleware
from eucp.protocol.participants import ParticipantKind
from eucp.protocol.state import PlatformSummary
from workflows.platform import PlatformTasksWorkflow

# Per-platform figures are for the coordination's staff: a platform, which can reach the API,
# must not learn another platform's workload from them.
TASK_READERS = (ParticipantKind.coordinator, ParticipantKind.auditor)
RUNNING_PLATFORMS = "WorkflowType = 'PlatformTasksWorkflow' AND ExecutionStatus = 'Running'"
SUMMARY_TIMEOUT = timedelta(seconds=2)
SCRAPE_BUDGET = timedelta(seconds=5)  # below Prometheus' default scrape timeout of 10 s
PARALLEL_QUERIES = 16


class ApiMetrics:
    """One registry per app, so several apps in one process (tests) keep their own counts."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "eucp_api_requests",
            "HTTP requests answered",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "eucp_api_request_seconds",
            "time to answer a request",
            ["route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )

    def observe(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    async def render(self, request: Request) -> Response:
        """The API's own metrics to anyone; with a coordinator's or auditor's bearer token
        (Prometheus `authorization.credentials_file`) the task gauges as well."""
        text = generate_latest(self.registry)
        if "authorization" in request.headers:
            ctx = request.app.state.ctx
            require(ctx.gatekeeper.authenticate(request, ctx.registry), *TASK_READERS)
            text += await task_metrics(ctx.incidents.client)
        return Response(text, media_type=CONTENT_TYPE_LATEST)


async def task_metrics(client: Client) -> bytes:
    """Tasks by platform and state, and open SLA breaches by platform, summed over the running
    platform workflows (the open incidents), read at scrape time: nothing is kept between
    scrapes, so the figures are never stale. Exercises are left out: they are not real."""
    registry = CollectorRegistry()
    tasks = Gauge(
        "eucp_tasks",
        "tasks of open incidents by platform and state",
        ["platform", "state"],
        registry=registry,
    )
    breaches = Gauge(
        "eucp_sla_open_breaches",
        "tasks of open incidents past an SLA deadline now, by platform",
        ["platform"],
        registry=registry,
    )
    unanswered = Gauge(
        "eucp_task_summaries_unanswered",
        "running platform workflows whose summary did not come in this scrape (workers busy "
        "or down)",
        registry=registry,
    )
    summaries, missing = await _summaries(client)
    unanswered.set(missing)
    for found in (s for s in summaries if not s.exercise):
        breaches.labels(found.platform_id).inc(len(found.open_breaches))
        for state, count in found.by_state.items():
            tasks.labels(found.platform_id, state.value).inc(count)
    return generate_latest(registry)


async def _summaries(client: Client) -> tuple[list[PlatformSummary], int]:
    """Each running platform workflow's summary, and how many did not answer: one visibility
    listing, then one query per workflow, 16 at a time. A query that takes over 2 s, or is
    still waiting when the scrape's 5 s are up, counts as unanswered, so that a scrape answers
    in time even with the workers down."""
    limit = asyncio.Semaphore(PARALLEL_QUERIES)

    async def summary(workflow_id: str) -> PlatformSummary:
        handle = client.get_workflow_handle_for(PlatformTasksWorkflow.run, workflow_id)
        async with limit:
            return await handle.query(PlatformTasksWorkflow.summary, rpc_timeout=SUMMARY_TIMEOUT)

    ids = {wf.id async for wf in client.list_workflows(RUNNING_PLATFORMS)}
    if not ids:
        return [], 0
    queries = [asyncio.create_task(summary(i)) for i in ids]
    done, late = await asyncio.wait(queries, timeout=SCRAPE_BUDGET.total_seconds())
    for query in late:
        query.cancel()
    answered = [q.result() for q in done if q.exception() is None]
    return answered, len(ids) - len(answered)


class MeasureRequests(HttpMiddleware):
    """Counts every answer by its route template (never the incident id: bounded labels), and
    logs it."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        super().__init__(app)
        self.metrics = metrics

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
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
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            seconds = time.perf_counter() - started
            self.metrics.observe(template, status, seconds)
            log_request(scope, template, status, seconds)

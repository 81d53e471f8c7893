"""What to watch during a crisis: a worker serves the SDK's metrics and eucp's own counters (SLA
ladder rungs reached, notifications given up) for Prometheus; the API serves its requests and,
to a coordinator's or auditor's scrape, the open incidents' tasks by platform and state."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from eucp.api.metrics import SCRAPE_BUDGET
from eucp.protocol.clocks import SlaSettings
from eucp.runtime.ledger import Ledger
from eucp.runtime.settings import Settings
from eucp.runtime.temporal import connect
from tests.conftest import AUDITOR, COORDINATOR, FASTBOOK, Protocol, start_dev_env
from tests.http_steps import Api, free_port, issue_tokens, serving
from tests.protocol_steps import activated, url
from tests.test_api import an_active_incident
from tests.test_delivery import backup_desk, fastbook_down  # noqa: F401  (the fixtures)
from worker import running_worker


@asynccontextmanager
async def measuring(
    env: WorkflowEnvironment, settings: Settings, ledger: Ledger
) -> AsyncIterator[tuple[Protocol, str]]:
    """A worker exporting its metrics on a free port; yields the protocol and the scrape URL."""
    address = f"127.0.0.1:{free_port()}"
    measured_settings = settings.model_copy(
        update={
            "metrics_address": address,
            "temporal_address": env.client.service_client.config.target_host,
        }
    )
    client = await connect(measured_settings, with_metrics=True)
    async with running_worker(client, measured_settings):
        yield Protocol(env, measured_settings, ledger), f"http://{address}/metrics"


@pytest.fixture
async def measured(
    skipping_env: WorkflowEnvironment, settings: Settings, ledger: Ledger
) -> AsyncIterator[tuple[Protocol, str]]:
    async with measuring(skipping_env, settings, ledger) as measured:
        yield measured


@pytest.fixture
async def measured_with_fastbook_down(
    skipping_env: WorkflowEnvironment,
    fastbook_down: Settings,  # noqa: F811
    ledger: Ledger,
) -> AsyncIterator[tuple[Protocol, str]]:
    async with measuring(skipping_env, fastbook_down, ledger) as measured:
        yield measured


async def scraped(url: str) -> str:
    async with httpx.AsyncClient() as http:
        return (await http.get(url)).text


async def test_a_missed_deadline_shows_in_the_worker_metrics(
    measured: tuple[Protocol, str],
) -> None:
    eucp, scrape = measured
    incident = await eucp.report()
    await activated(eucp.incidents.as_participant(incident, COORDINATOR), url(1))
    await eucp.env.sleep(timedelta(minutes=16))  # nobody acknowledges within 15 minutes
    await eucp.incidents.status(incident)
    text = await scraped(scrape)
    misses = [line for line in text.splitlines() if line.startswith("eucp_sla_misses")]
    assert any('rung="reminded"' in line and 'platform="slowtube"' in line for line in misses)
    assert "temporal_workflow_task" in text or "temporal_request" in text  # the SDK's own


async def test_a_notification_given_up_shows_in_the_worker_metrics(
    measured_with_fastbook_down: tuple[Protocol, str],
) -> None:
    eucp, scrape = measured_with_fastbook_down
    incident = await eucp.report(sla=SlaSettings(deliver_within=timedelta(seconds=3)))
    await activated(eucp.incidents.as_participant(incident, COORDINATOR), url(1))
    await eucp.env.sleep(timedelta(minutes=1))  # fastbook's webhook is down throughout
    await eucp.incidents.status(incident)
    failures = [
        line
        for line in (await scraped(scrape)).splitlines()
        if line.startswith("eucp_notification_failures") and 'route="primary"' in line
    ]
    assert any('kind="task_assigned"' in line for line in failures), failures


# ---- the API ----------------------------------------------------------------------------------


@pytest.fixture
async def server_alone() -> AsyncIterator[WorkflowEnvironment]:
    """A Temporal server of the test's own: the task gauges sum every open incident on the
    server, so no other test's incidents may be there."""
    env = await start_dev_env()
    yield env
    await env.shutdown()


@pytest.fixture
async def api_alone(server_alone: WorkflowEnvironment, settings: Settings) -> AsyncIterator[Api]:
    """The API and a worker on a server of their own."""
    async with serving(settings, server_alone.client) as base:
        api = Api(base, issue_tokens(settings))
        async with running_worker(server_alone.client, settings):
            yield api
        await api.close()


def gauges(text: str, name: str) -> dict[str, float]:
    """`{labels: value}` of one metric in a Prometheus text exposition."""
    found = re.findall(rf"^{name}\{{(.*?)\}} (\S+)$", text, re.MULTILINE)
    return {labels: float(value) for labels, value in found}


async def test_the_open_tasks_by_platform_and_state_for_staff_only(api_alone: Api) -> None:
    api = api_alone
    incident = await an_active_incident(api, n=3)
    fastbook = api.as_(FASTBOOK.id)
    for outcome in ("acknowledged", "removed"):
        answer = await fastbook.post(
            f"/v1/incidents/{incident}/tasks/reports",
            json={"reports": [{"task_id": "fastbook-000001", "outcome": outcome}]},
        )
        assert answer.status_code == 200, answer.text

    for staff in (COORDINATOR.id, AUDITOR.id):
        text = (await api.as_(staff).get("/metrics")).text
        assert gauges(text, "eucp_tasks") == {
            'platform="fastbook",state="assigned"': 2,
            'platform="fastbook",state="removed"': 1,
            'platform="slowtube",state="assigned"': 3,
            'platform="choosy",state="assigned"': 3,
        }
        assert gauges(text, "eucp_sla_open_breaches") == {
            f'platform="{p}"': 0 for p in ("fastbook", "slowtube", "choosy")
        }
        assert "eucp_task_summaries_unanswered 0.0" in text
        assert "eucp_api_requests_total" in text

    async with api.anonymous() as anyone:
        public = (await anyone.get("/metrics")).text
    assert "eucp_api_requests_total" in public
    assert "eucp_tasks" not in public  # per-platform figures only to the coordination's staff
    refused = await fastbook.get("/metrics")
    assert refused.status_code == 403
    assert "eucp_tasks" not in refused.text


async def test_with_the_workers_down_a_scrape_still_answers_in_time(
    server_alone: WorkflowEnvironment, settings: Settings
) -> None:
    async with serving(settings, server_alone.client) as base:
        api = Api(base, issue_tokens(settings))
        async with running_worker(server_alone.client, settings):
            await an_active_incident(api)
        started = time.monotonic()  # no worker answers the platform workflows' queries now
        text = (await api.as_(AUDITOR.id).get("/metrics")).text
        assert time.monotonic() - started < SCRAPE_BUDGET.total_seconds() + 2
        assert "eucp_task_summaries_unanswered 3.0" in text
        assert gauges(text, "eucp_tasks") == {}
        await api.close()

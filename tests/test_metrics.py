"""What to watch during a crisis: a worker serves the SDK's metrics and eucp's own counters
(SLA ladder rungs reached) for Prometheus."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from eucp.ledger import Ledger
from eucp.settings import Settings
from eucp.temporal import connect
from tests.conftest import COORDINATOR, Protocol
from tests.http_steps import free_port
from tests.protocol_steps import activated, url
from worker import running_worker


@pytest.fixture
async def measured(
    skipping_env: WorkflowEnvironment, settings: Settings, ledger: Ledger
) -> AsyncIterator[tuple[Protocol, str]]:
    address = f"127.0.0.1:{free_port()}"
    measured_settings = settings.model_copy(
        update={
            "metrics_address": address,
            "temporal_address": skipping_env.client.service_client.config.target_host,
        }
    )
    client = await connect(measured_settings, with_metrics=True)
    async with running_worker(client, measured_settings):
        yield Protocol(skipping_env, measured_settings, ledger), f"http://{address}/metrics"


async def test_a_missed_deadline_shows_in_the_worker_metrics(
    measured: tuple[Protocol, str],
) -> None:
    eucp, scrape = measured
    incident = await eucp.report()
    await activated(eucp.incidents.as_participant(incident, COORDINATOR), url(1))
    await eucp.env.sleep(timedelta(minutes=16))  # nobody acknowledges within 15 minutes
    await eucp.incidents.status(incident)
    async with httpx.AsyncClient() as http:
        text = (await http.get(scrape)).text
    misses = [line for line in text.splitlines() if line.startswith("eucp_sla_misses")]
    assert any('rung="reminded"' in line and 'platform="slowtube"' in line for line in misses)
    assert "temporal_workflow_task" in text or "temporal_request" in text  # the SDK's own

"""Continue-as-new keeps histories bounded; nothing is lost across it. The server here suggests
continue-as-new after 60 events (4,096 by default), so a small crisis crosses it many times."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from temporalio.testing import WorkflowEnvironment

from eucp.protocol.actions import Action
from eucp.protocol.decisions import DecisionKind
from eucp.protocol.tasks import Outcome, TaskReport, TaskState
from eucp.runtime.ledger import Ledger
from eucp.runtime.settings import Settings
from eucp.service.incidents import Participation
from tests.conftest import COORDINATOR, PLATFORMS, Protocol, protocol_on, start_dev_env
from tests.protocol_steps import activated, eventually, url
from workflows.platform import platform_workflow_id

THRESHOLD = 60


@pytest.fixture
async def low_threshold_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await start_dev_env(
        "--dynamic-config-value", f"limit.historyCount.suggestContinueAsNew={THRESHOLD}"
    )
    yield env
    await env.shutdown()


@pytest.fixture
async def eucp_small_histories(
    low_threshold_env: WorkflowEnvironment, settings: Settings, ledger: Ledger
) -> AsyncIterator[Protocol]:
    async for p in protocol_on(low_threshold_env, settings, ledger):
        yield p


async def runs_of(env: WorkflowEnvironment, workflow_id: str) -> int:
    return len([w async for w in env.client.list_workflows(f'WorkflowId = "{workflow_id}"')])


async def all_assigned(session: Participation, tasks: int) -> bool:
    return (await session.my_tasks()).total == tasks


async def test_a_long_crisis_continues_as_new_and_loses_nothing(
    eucp_small_histories: Protocol,
) -> None:
    eucp = eucp_small_histories
    incident = await eucp.report()
    iru = eucp.incidents.as_participant(incident, COORDINATOR)
    await activated(iru, url(0))
    for wave in range(1, 7):
        answer = await iru.act(
            Action.add_content, identifiers=[url(wave * 10 + i) for i in range(5)]
        )
        assert len(answer.accepted_items) == 5
    for platform in PLATFORMS:
        session = eucp.incidents.as_participant(incident, eucp.actor(platform))
        await eventually(lambda s=session: all_assigned(s, 31))  # signals follow the answers
        tasks = (await session.my_tasks()).tasks
        for outcome in (Outcome.acknowledged, Outcome.removed):
            for task in tasks:  # one Update per task: many events per platform history
                await session.report_tasks([TaskReport(task_id=task.task_id, outcome=outcome)])
    await iru.act(Action.de_escalate, reason="over")
    await iru.act(Action.start_review)
    await iru.act(Action.close, reason="done")
    result = await eucp.incidents.result(incident)

    assert result.items == 31
    for platform in PLATFORMS:
        assert result.platforms[platform].by_state == {TaskState.removed: 31}
        assert await runs_of(eucp.env, platform_workflow_id(incident, platform)) > 1
    assert await runs_of(eucp.env, incident) > 1

    for workflow_id in [incident, *(platform_workflow_id(incident, p) for p in PLATFORMS)]:
        async for run in eucp.env.client.list_workflows(f'WorkflowId = "{workflow_id}"'):
            # handlers in flight finish before a run continues as new: a little past the mark
            assert (run.history_length or 0) <= THRESHOLD * 5, run.run_id

    rows = eucp.ledger.rows(incident)
    assert eucp.ledger.verify(incident).ok
    per_task = Counter((r.decision.inputs.get("task_id"), r.decision.kind) for r in rows)
    assert per_task[(None, DecisionKind.content_added)] == 6
    assert all(n == 1 for key, n in per_task.items() if key[0] is not None)
    assert sum(1 for r in rows if r.decision.kind is DecisionKind.task_removed) == 31 * 3


async def test_a_steady_stream_of_sightings_cannot_hold_a_run_open(
    eucp_small_histories: Protocol,
) -> None:
    """While a run drains for continue-as-new it refuses new Updates and the service sends
    them again, so the run ends even though calls never stop; none is lost or doubled."""
    eucp = eucp_small_histories
    incident = await eucp.report()
    await activated(eucp.incidents.as_participant(incident, COORDINATOR), url(0))
    fastbook = eucp.incidents.as_participant(incident, eucp.actor(PLATFORMS[0]))

    async def sight(n: int) -> list[int]:
        await asyncio.sleep(n * 0.02)  # a call every 20 ms, overlapping the previous ones
        return (
            await fastbook.act(Action.report_sightings, identifiers=[url(1000 + n)])
        ).accepted_items

    accepted = await asyncio.gather(*(sight(n) for n in range(120)))

    assert sorted(no for items in accepted for no in items) == list(range(2, 122))
    assert await runs_of(eucp.env, incident) > 2
    async for run in eucp.env.client.list_workflows(f'WorkflowId = "{incident}"'):
        assert (run.history_length or 0) <= THRESHOLD * 5, run.run_id
    sighted = [
        r for r in eucp.ledger.rows(incident) if r.decision.kind is DecisionKind.sighting_reported
    ]
    assert len(sighted) == 120 and len({r.decision.decision_id for r in sighted}) == 120

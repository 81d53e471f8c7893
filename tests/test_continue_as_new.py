"""Continue-as-new keeps histories bounded; nothing is lost across it. The server here suggests
continue-as-new after 60 events (4,096 by default), so a small crisis crosses it many times."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from pydantic import BaseModel, Field, ValidationError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from eucp.protocol.actions import Action
from eucp.protocol.clocks import SlaSettings
from eucp.protocol.decisions import DecisionKind
from eucp.protocol.identifiers import KEY_HELD_AS_IS, IdentifierIndex, IndexSnapshot, Verdict
from eucp.protocol.state import PlatformStart, PlatformState
from eucp.protocol.tasks import ContentItem, Outcome, TaskReport, TaskState
from eucp.runtime.ledger import Ledger
from eucp.runtime.settings import Settings
from eucp.service.incidents import Participation
from tests.conftest import COORDINATOR, PLATFORMS, Protocol, protocol_on, start_dev_env
from tests.protocol_steps import activated, eventually, url
from tests.test_large_items import long_url
from worker import WORKFLOWS
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


async def test_ten_thousand_tasks_cross_continue_as_new(eucp_small_histories: Protocol) -> None:
    """A crisis of 10,000 items (what the design asks to hold): each platform's tasks are 5.4
    MB as JSON, past the 2 MB Temporal takes of one payload, and the first versions' platform
    workflows failed their continue-as-new for good. They go to the next run packed."""
    eucp = eucp_small_histories
    incident = await eucp.report()
    iru = eucp.incidents.as_participant(incident, COORDINATOR)
    await activated(iru)
    for wave in range(10):
        await iru.act(Action.add_content, identifiers=[url(wave * 1000 + i) for i in range(1000)])
    platform = PLATFORMS[0]
    fastbook = eucp.incidents.as_participant(incident, eucp.actor(platform))
    await eventually(lambda: all_assigned(fastbook, 10_000), within=120)
    run_id = platform_workflow_id(incident, platform)
    runs_before = await runs_of(eucp.env, run_id)

    page = await fastbook.my_tasks()
    for task in page.tasks[:40]:  # one Update each: the platform's history passes the mark
        await fastbook.report_tasks([TaskReport(task_id=task.task_id, outcome=Outcome.removed)])

    async def moved_on() -> bool:
        return await runs_of(eucp.env, run_id) > runs_before

    await eventually(moved_on, within=30)
    status = await eucp.incidents.status(incident)
    assert status.platforms[platform].tasks == 10_000
    assert status.platforms[platform].by_state == {
        TaskState.removed: 40,
        TaskState.assigned: 9_960,
    }
    # the run that started from packed tasks replays on the code that wrote it
    history = await eucp.env.client.get_workflow_handle(run_id).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes.input.payloads[0]
    assert json.loads(started.data)["packed"]
    assert len(started.data) < 500_000
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)
    await replayer.replay_workflow(history)


async def test_a_crisis_of_long_urls_continues_as_new(eucp_small_histories: Protocol) -> None:
    """The crisis carries what it has received (to tell a repeat) to its next run: 1,500 URLs
    of 2,048 characters were 3 MB of it, past what one payload may be, and the crisis failed
    its continue-as-new for good. Long identifiers are kept as their digests."""
    eucp = eucp_small_histories
    incident = await eucp.report()
    iru = eucp.incidents.as_participant(incident, COORDINATOR)
    await activated(iru)
    for wave in range(3):  # 500 a call: 1.1 MB, under the 2 MB of one Update's input
        urls = [long_url(wave * 500 + n) for n in range(500)]
        await iru.act(Action.add_content, identifiers=urls)
    runs_before = await runs_of(eucp.env, incident)
    for n in range(10):  # Updates enough to pass the mark
        await iru.act(Action.post_update, text=f"situation {n}")

    async def moved_on() -> bool:
        return await runs_of(eucp.env, incident) > runs_before

    await eventually(moved_on, within=30)
    # and a repeat is still a repeat in the next run
    again = await iru.act(Action.add_content, identifiers=[long_url(7), long_url(1500)])
    assert len(again.accepted_items) == 1
    assert again.duplicates == 1


def test_an_index_carried_by_an_earlier_version_still_knows_its_long_urls() -> None:
    """Earlier versions carried long keys as they are: restored, they are held as digests, and
    a repeat of one is still a repeat."""
    earlier = IndexSnapshot(exact=[long_url(1).key])
    index = IdentifierIndex.restore(earlier, pdq_distance=31, pdq_min_quality=50)
    assert index.classify(long_url(1)) is Verdict.duplicate
    assert index.classify(long_url(2)) is Verdict.new
    assert all(len(key) <= KEY_HELD_AS_IS for key in index.snapshot().exact)


def test_a_packed_input_is_refused_by_an_earlier_version_not_taken_empty() -> None:
    """An earlier worker that gets a run's packed input fails to read it (its `state` is
    required) and the run waits for a worker of this version, instead of starting without
    its tasks, as an input with the tasks alone packed would have made it."""

    class EarlierPlatformStart(BaseModel):  # as versions before the packing read it
        state: PlatformState
        items: list[ContentItem] = Field(default_factory=list)
        decisions: list[str] = Field(default_factory=list)
        joined: bool = False

    state = PlatformState(
        incident_id="inc-1",
        platform_id=PLATFORMS[0],
        coordinators=[COORDINATOR.id],
        sla=SlaSettings(),
    )
    packed = PlatformStart.carrying(state).model_dump_json()
    with pytest.raises(ValidationError, match="state"):
        EarlierPlatformStart.model_validate_json(packed)
    assert PlatformStart.model_validate_json(packed).unpacked() == state

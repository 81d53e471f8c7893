"""Long identifiers to many platforms, on the real dev server: every platform gets every item.

Temporal takes at most 4 MB of one workflow task's completion and 2 MB of one payload. A URL
may have 2,048 characters and an add-content call up to a megabyte of them, so the crisis
must not count items alone when it decides what goes inline: 100 long URLs to each of 30
platforms are 6.6 MB of signals, which first versions sent in one workflow task, and the
crisis failed. The platforms fetch what does not fit from the ledger instead
(`workflows/outbox.py`, patch `inline-items-bounded-in-bytes`).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from eucp.demo import presets
from eucp.protocol.actions import Action
from eucp.protocol.identifiers import UrlIdentifier
from eucp.protocol.participants import Actor, ParticipantKind
from eucp.protocol.state import TaskQuery
from eucp.runtime.ledger import open_ledger
from eucp.service.incidents import Participation
from tests.conftest import COORDINATOR, Protocol, a_report, protocol_on, settings_in
from tests.protocol_steps import ALL_MET, assigned, eventually
from worker import WORKFLOWS
from workflows.effects import OPEN_ITEMS_PAGED
from workflows.outbox import BYTES_BOUNDED
from workflows.platform import NOTICES_BOUNDED, platform_workflow_id

PLATFORMS = [f"platform-{n:02d}" for n in range(30)]
REGISTRY = presets.registry(dict.fromkeys(PLATFORMS))  # told on the log
PLATFORM = ParticipantKind.platform


def patches_in(history: WorkflowHistory) -> set[str]:
    """The ids of the `workflow.patched` markers in a history."""
    return {
        json.loads(payload.data)["id"]
        for event in history.events
        if event.marker_recorded_event_attributes.marker_name == "core_patch"
        for payload in event.marker_recorded_event_attributes.details["patch-data"].payloads
    }


def long_url(n: int) -> UrlIdentifier:
    """A URL of 2,048 characters, the longest the protocol takes."""
    head = f"https://video.example.test/watch/{n:06d}?t="
    return UrlIdentifier(value=head + "x" * (2048 - len(head)))


@pytest.fixture
async def thirty_platforms(dev_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Protocol]:
    settings = settings_in(tmp_path)
    REGISTRY.save(settings.registry_path)
    with open_ledger(settings.ledger_url) as ledger:
        async for protocol in protocol_on(dev_env, settings, ledger):
            yield protocol


async def test_long_identifiers_reach_thirty_platforms(thirty_platforms: Protocol) -> None:
    eucp = thirty_platforms
    incident = f"inc-{uuid.uuid4().hex[:10]}"
    await eucp.incidents.report(incident, a_report(), REGISTRY.public())
    coordinator = Participation(eucp.incidents, incident, COORDINATOR)
    await coordinator.act(Action.assess, assessment=ALL_MET)

    # 60 x 30 = 1,800 copies: under the activation's count of copies, 3.9 MB of them
    await coordinator.act(
        Action.activate, reason="all five met", identifiers=[long_url(n) for n in range(60)]
    )
    await assigned(coordinator)

    # 100 to each platform, no more than a signal's count of items, 6.6 MB in all
    await coordinator.act(
        Action.add_content, reason="re-uploads", identifiers=[long_url(n) for n in range(60, 160)]
    )
    await assigned(coordinator)

    status = await eucp.incidents.status(incident)
    assert status.crisis.items == 160
    assert {p: s.tasks for p, s in status.platforms.items()} == dict.fromkeys(PLATFORMS, 160)

    # the new rule is behind its patch, and the history replays on the code that wrote it
    history = await eucp.env.client.get_workflow_handle(incident).fetch_history()
    assert BYTES_BOUNDED in patches_in(history)
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)
    await replayer.replay_workflow(history)


async def test_a_platform_brought_in_late_reads_a_large_backlog(thirty_platforms: Protocol) -> None:
    """The open content a latecomer is given is read from the ledger in pages: 1,000 URLs of
    2,048 characters are 2.3 MB, more than one activity's result may be."""
    eucp = thirty_platforms
    incident = f"inc-{uuid.uuid4().hex[:10]}"
    await eucp.incidents.report(incident, a_report(), REGISTRY.public())
    coordinator = Participation(eucp.incidents, incident, COORDINATOR)
    await coordinator.act(Action.assess, assessment=ALL_MET)
    first, latecomer = PLATFORMS[:2], PLATFORMS[2]
    await coordinator.act(Action.activate, reason="all five met", platforms=first)
    for wave in range(2):  # 500 a call: 1.1 MB, under the 2 MB of one Update's input
        await coordinator.act(
            Action.add_content,
            reason="re-uploads",
            identifiers=[long_url(wave * 500 + n) for n in range(500)],
        )
    await coordinator.act(Action.join_platform, reason="copies found there", platform=latecomer)

    async def given_everything() -> bool:
        status = await eucp.incidents.status(incident)
        held = status.platforms.get(latecomer)
        return held is not None and held.tasks == 1000

    await eventually(given_everything, within=30)
    # asked for all 1,000 at once, it answers in pages of up to 1 MB that say where to go on
    listed: list[str] = []
    query = TaskQuery(limit=1000)
    while True:
        page = await eucp.incidents.tasks(incident, latecomer, query)
        assert page.total == 1000 and 0 < len(page.tasks) < 1000
        listed += [task.task_id for task in page.tasks]
        if page.next_offset is None:
            break
        query = TaskQuery(offset=page.next_offset, limit=1000)
    assert len(listed) == len(set(listed)) == 1000
    # read in pages and told in more than one notice, behind their patches (the first run;
    # so much content moves it on to a next run at once, from its packed tasks); all replay
    workflow_id = platform_workflow_id(incident, latecomer)
    histories = [
        await eucp.env.client.get_workflow_handle(workflow_id, run_id=run.run_id).fetch_history()
        async for run in eucp.env.client.list_workflows(f'WorkflowId = "{workflow_id}"')
    ]
    assert {OPEN_ITEMS_PAGED, NOTICES_BOUNDED} <= set().union(*map(patches_in, histories))
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)
    for history in histories:
        await replayer.replay_workflow(history)


async def test_a_burst_of_long_sightings_is_merged_within_a_payload(
    thirty_platforms: Protocol,
) -> None:
    """Concurrent sightings go to the crisis merged into one Update of up to 1,000
    identifiers, and of up to 1 MB: ten calls of 100 URLs of 2,048 characters (2.3 MB) would
    not fit one Update's input."""
    eucp = thirty_platforms
    incident = f"inc-{uuid.uuid4().hex[:10]}"
    await eucp.incidents.report(incident, a_report(), REGISTRY.public())
    coordinator = Participation(eucp.incidents, incident, COORDINATOR)
    await coordinator.act(Action.assess, assessment=ALL_MET)
    await coordinator.act(Action.activate, reason="all five met", platforms=PLATFORMS[:3])
    finder = Participation(eucp.incidents, incident, Actor(id=PLATFORMS[0], kind=PLATFORM))

    async def sight(call: int) -> list[int]:
        answer = await finder.act(
            Action.report_sightings,
            identifiers=[long_url(call * 100 + n) for n in range(100)],
        )
        return answer.accepted_items

    accepted = await asyncio.gather(*(sight(call) for call in range(10)))

    assert sorted(no for items in accepted for no in items) == list(range(1, 1001))

    async def the_others_hold_them() -> bool:
        status = await eucp.incidents.status(incident)
        return {p: s.tasks for p, s in status.platforms.items()} == {
            PLATFORMS[0]: 0,  # its own finds are no tasks for it
            PLATFORMS[1]: 1000,
            PLATFORMS[2]: 1000,
        }

    await eventually(the_others_hold_them, within=30)

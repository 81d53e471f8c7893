"""Long identifiers to many platforms, on the real dev server: every platform gets every item.

Temporal takes at most 4 MB of one workflow task's completion and 2 MB of one payload. A URL
may have 2,048 characters and an add-content call up to a megabyte of them, so the crisis
must not count items alone when it decides what goes inline: 100 long URLs to each of 30
platforms are 6.6 MB of signals, which first versions sent in one workflow task, and the
crisis failed. The platforms fetch what does not fit from the ledger instead
(`workflows/outbox.py`, patch `inline-items-bounded-in-bytes`).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from eucp.demo import presets
from eucp.protocol.actions import Action
from eucp.protocol.identifiers import UrlIdentifier
from eucp.runtime.ledger import open_ledger
from eucp.service.incidents import Participation
from tests.conftest import COORDINATOR, Protocol, a_report, protocol_on, settings_in
from tests.protocol_steps import ALL_MET, assigned
from worker import WORKFLOWS
from workflows.outbox import BYTES_BOUNDED

PLATFORMS = [f"platform-{n:02d}" for n in range(30)]
REGISTRY = presets.registry(dict.fromkeys(PLATFORMS))  # told on the log


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
    patches = [
        payload.data
        for event in history.events
        if event.marker_recorded_event_attributes.marker_name == "core_patch"
        for details in event.marker_recorded_event_attributes.details.values()
        for payload in details.payloads
    ]
    assert any(BYTES_BOUNDED.encode() in data for data in patches)
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)
    await replayer.replay_workflow(history)

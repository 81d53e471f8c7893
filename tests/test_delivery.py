"""A platform's webhook is down: eucp keeps retrying, then tells the platform's backup contact,
and nothing the platform should know is lost."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import pytest
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from eucp.protocol.clocks import SlaSettings
from eucp.protocol.participants import Backup, Channel
from eucp.runtime.ledger import Ledger
from eucp.runtime.registry import Registry
from eucp.runtime.settings import Settings
from tests.conftest import COORDINATOR, FASTBOOK, REGISTRY, Protocol, protocol_on
from tests.http_steps import free_port
from tests.protocol_steps import activated, url
from tests.receivers import SECRET, Receiver


@pytest.fixture
def backup_desk() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


@pytest.fixture
def fastbook_down(settings: Settings, backup_desk: Receiver) -> Settings:
    """fastbook's webhook points at a closed port; its backup desk listens on a live one."""
    contacts = []
    for contact in REGISTRY.participants:
        if contact.id == FASTBOOK.id:
            contact = contact.model_copy(
                update={
                    "channels": [Channel.webhook],
                    "webhook_url": f"http://127.0.0.1:{free_port()}/down",
                    "webhook_secret": SecretStr(SECRET),
                    "backup": Backup(
                        name="fastbook trust & safety on call",
                        channels=[Channel.webhook],
                        webhook_url=backup_desk.url,
                        webhook_secret=SecretStr(SECRET),
                    ),
                }
            )
        contacts.append(contact)
    Registry(participants=contacts).save(settings.registry_path)
    return settings


@pytest.fixture
async def eucp_with_fastbook_down(
    dev_env: WorkflowEnvironment, fastbook_down: Settings, ledger: Ledger
) -> AsyncIterator[Protocol]:
    async for p in protocol_on(dev_env, fastbook_down, ledger):
        yield p


async def test_a_task_notice_that_cannot_be_delivered_reaches_the_backup_contact(
    eucp_with_fastbook_down: Protocol, backup_desk: Receiver
) -> None:
    eucp = eucp_with_fastbook_down
    incident = await eucp.report(sla=SlaSettings(deliver_within=timedelta(seconds=3)))
    await activated(eucp.incidents.as_participant(incident, COORDINATOR), url(1), url(2))

    async def backup_notices(kind: str) -> list[dict[str, Any]]:
        while True:
            notices = [json.loads(r.body) for r in backup_desk.requests]
            if any(n["kind"] == kind for n in notices):
                return notices
            await asyncio.sleep(0.2)

    notices = await asyncio.wait_for(backup_notices("task_assigned"), timeout=30)
    [assigned] = [n for n in notices if n["kind"] == "task_assigned"]
    assert assigned["route"] == "backup"
    assert assigned["recipient_id"] == FASTBOOK.id
    assert str(assigned["delivery_id"]).endswith("/backup")
    tasks = assigned["data"]["tasks"]
    assert [t["task_id"] for t in tasks] == ["fastbook-000001", "fastbook-000002"]
    backup_desk.requests[0].verify()
    # the platform's tasks stand, whatever happened to the notice
    assert (await eucp.incidents.status(incident)).platforms[FASTBOOK.id].tasks == 2

"""Steps shared by the protocol tests: the assessment, identifiers, and history checks."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

from eucp.protocol.actions import Action
from eucp.protocol.identifiers import AnyIdentifier, HashAlgorithm, HashIdentifier, UrlIdentifier
from eucp.protocol.incident import Assessment, Criterion, CriterionStatus
from eucp.protocol.tasks import OrderDetails, RemovalOrder
from eucp.service.incidents import Participation

MET = Criterion(status=CriterionStatus.met, evidence="seen by the EU IRU")
ALL_MET = Assessment(
    real_world_event=MET,
    depicts_harm=MET,
    intimidation=MET,
    tve_link=MET,
    multi_platform_virality=MET,
)
VIDEO = HashIdentifier(
    algorithm=HashAlgorithm.pdq,
    value="3304eabff53606fcdedeb8e9e457fb723d45caed210393fad290662bc87c8b2d",
    quality=95,
)
# the same video re-encoded: 8 bits away, within PDQ's match distance of 31
VIDEO_REENCODED = VIDEO.model_copy(
    update={"value": "cc04eabff53606fcdedeb8e9e457fb723d45caed210393fad290662bc87c8b2d"}
)
MANIFESTO = HashIdentifier(algorithm=HashAlgorithm.md5, value="671b321f45e14e7b8806cdfa0e3e3ee4")


def url(n: int) -> UrlIdentifier:
    return UrlIdentifier(value=f"https://video.example.test/watch/{n:06d}")


async def activated(coordinator: Participation, *identifiers: AnyIdentifier) -> None:
    """The coordinator assesses (all five criteria met) and activates with these identifiers;
    returns once every platform holds its tasks."""
    await coordinator.act(Action.assess, assessment=ALL_MET)
    await coordinator.act(
        Action.activate, reason="all five criteria met", identifiers=list(identifiers)
    )
    await assigned(coordinator)


async def holds(platform: Participation, tasks: int) -> None:
    """Waits until the platform holds this many tasks."""

    async def held() -> bool:
        return (await platform.my_tasks()).total == tasks

    await eventually(held)


async def assigned(session: Participation) -> None:
    """Waits until every participating platform holds a task for each item: platforms read
    their new items from the ledger a moment after the coordinator's answer."""

    async def every_item_everywhere() -> bool:
        status = await session.incidents.status(session.incident_id)
        return all(s.tasks == status.crisis.items for s in status.platforms.values())

    await eventually(every_item_everywhere)


async def update_events(handle: WorkflowHandle[Any, Any]) -> int:
    """How many Updates the workflow's history has accepted."""
    history = await handle.fetch_history()
    return sum(
        1
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    )


AN_ORDER = RemovalOrder(
    issuing_member_state="FR",
    issuing_authority="OCLCTIC",
    addressee="Choosy Ltd",
    platform="choosy",
    contact_point="legal@choosy.example.test",
    host_member_state="IE",
    issued_at=datetime(2026, 3, 15, 2, 0, tzinfo=UTC),
    reference="FR-2026-0001",
    reasons="terrorist content within the meaning of Art. 2(7)",
)
# the same order as its authority (MEMBER_STATE, FR) sends it: the issuing State is its own
ORDER_DETAILS = OrderDetails(
    **AN_ORDER.model_dump(exclude={"kind", "issuing_member_state", "issuer", "received_at"})
)


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 15.0) -> None:
    """Waits until `check()` holds: platforms apply what the crisis signals them after their
    ledger write, a moment after the coordinator's answer."""
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"still not true after {within}s")
        await asyncio.sleep(0.1)

"""A removal order after its issue, over HTTP on the real dev server (issue 12, TCO Art. 3-4,
Annexes II-III): the host Member State scrutinises a cross-border order and upholds it, or
finds an infringement and the content is reinstated; the issuer clarifies an order and the
hour starts again; a pause that lasts alerts the coordinators and the issuer.

The French authority (fr-pharos) orders choosy, established in Ireland, to remove content;
Ireland's authority (ie-cnam) takes part. Each participant has its own webhook receiver, so
every notice is seen where it lands. The 72- and 48-hour windows at their real lengths are
in tests/test_order_windows.py, on the time-skipping server.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from eucp.demo import presets
from eucp.protocol.clocks import SlaSettings
from eucp.protocol.decisions import DecisionKind
from eucp.protocol.identifiers import UrlIdentifier
from eucp.protocol.participants import Actor
from eucp.protocol.tasks import OrderDetails
from eucp.runtime.ledger import open_ledger
from eucp.runtime.registry import Registry
from tests.conftest import (
    ACTORS,
    CHOOSY,
    COORDINATOR,
    FASTBOOK,
    HOST_AUTHORITY,
    MEMBER_STATE,
    Protocol,
    protocol_on,
    settings_in,
)
from tests.http_steps import Api, issue_tokens, serving
from tests.protocol_steps import ALL_MET, ORDER_DETAILS, eventually, url
from tests.receivers import SECRET, Receiver

TOLD = [COORDINATOR, MEMBER_STATE, HOST_AUTHORITY, FASTBOOK, CHOOSY]
COUNTRY = {MEMBER_STATE.id: "FR", HOST_AUTHORITY.id: "IE"}
HOSTED = [
    UrlIdentifier(value=f"https://choosy.example.test/p/{n}", platform=CHOOSY.id) for n in (1, 2)
]


@pytest.fixture
def receivers() -> Iterator[dict[str, Receiver]]:
    with ExitStack() as stack:
        opened = {actor.id: stack.enter_context(Receiver()) for actor in TOLD}
        yield opened
    # need-to-know: whatever became of choosy's orders, fastbook heard nothing of them
    for request in opened[FASTBOOK.id].requests:
        body = request.body.decode()
        assert ORDER_DETAILS.reference not in body and "choosy.example.test" not in body, body


@pytest.fixture
async def told(
    dev_env: WorkflowEnvironment, tmp_path: Path, receivers: dict[str, Receiver]
) -> AsyncIterator[Protocol]:
    """eucp where the coordinator, both authorities and two platforms have webhooks."""
    settings = settings_in(tmp_path)
    contacts = [
        presets.contact(
            actor.id,
            actor.kind,
            webhook=presets.SignedWebhook(receivers[actor.id].url, SECRET)
            if actor.id in receivers
            else None,
            country=COUNTRY.get(actor.id),
        )
        for actor in ACTORS
    ]
    Registry(participants=contacts).save(settings.registry_path)
    with open_ledger(settings.ledger_url) as ledger:
        async for protocol in protocol_on(dev_env, settings, ledger):
            yield protocol


@pytest.fixture
async def api(told: Protocol) -> AsyncIterator[Api]:
    async with serving(told.settings, told.env.client) as base:
        client = Api(base, issue_tokens(told.settings))
        try:
            yield client
        finally:
            await client.close()


class Crisis:
    """One incident over HTTP, each participant with its own token."""

    def __init__(self, api: Api, incident: str) -> None:
        self.api = api
        self.incident = incident

    async def post(self, actor: Actor, path: str, body: dict[str, Any]) -> httpx.Response:
        return await self.api.as_(actor.id).post(f"/v1/incidents/{self.incident}/{path}", json=body)

    async def ok(self, actor: Actor, path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = await self.post(actor, path, body)
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    async def get(self, actor: Actor, path: str) -> Any:
        answer = await self.api.as_(actor.id).get(f"/v1/incidents/{self.incident}/{path}")
        assert answer.status_code == 200, answer.text
        return answer.json()

    async def tasks(self, platform: Actor) -> dict[str, dict[str, Any]]:
        page = await self.get(platform, "tasks")
        return {task["task_id"]: task for task in page["tasks"]}

    async def report(self, platform: Actor, **report: Any) -> dict[str, Any]:
        return await self.ok(platform, "tasks/reports", {"reports": [report]})

    async def order(self, identifiers: list[UrlIdentifier], **changes: Any) -> dict[str, Any]:
        """The French authority orders choosy to remove `identifiers`."""
        order = ORDER_DETAILS.model_copy(update=changes)
        body = {
            "identifiers": [i.model_dump(mode="json") for i in identifiers],
            "order": order.model_dump(mode="json"),
        }
        return await self.ok(MEMBER_STATE, "removal-orders", body)

    async def ordered(self, identifier: UrlIdentifier) -> str:
        """Orders choosy to remove one identifier; returns its task once choosy holds it."""
        [item] = (await self.order([identifier]))["accepted_items"]
        task = f"{CHOOSY.id}-{item:06d}"

        async def held() -> bool:
            return task in await self.tasks(CHOOSY)

        await eventually(held)
        return task


async def a_crisis(told: Protocol, api: Api, sla: SlaSettings | None = None) -> Crisis:
    """Reported and activated by the coordinator with one referral for every platform."""
    incident = await told.report(sla=sla)
    crisis = Crisis(api, incident)
    await crisis.ok(COORDINATOR, "assessment", {"assessment": ALL_MET.model_dump(mode="json")})
    await crisis.ok(
        COORDINATOR,
        "activation",
        {"reason": "criteria met", "identifiers": [url(1).model_dump(mode="json")]},
    )
    return crisis


def notices(receiver: Receiver, kind: str) -> list[dict[str, Any]]:
    bodies = [json.loads(request.body) for request in receiver.requests]
    return [body for body in bodies if body["kind"] == kind]


async def told_of(receiver: Receiver, kind: str) -> dict[str, Any]:
    async def arrived() -> bool:
        return bool(notices(receiver, kind))

    await eventually(arrived)
    return notices(receiver, kind)[-1]


def kinds_recorded(told: Protocol, incident: str) -> list[DecisionKind]:
    return [row.decision.kind for row in told.ledger.rows(incident)]


async def test_the_host_state_is_sent_a_copy_and_upholds_the_order_its_addressee_questioned(
    told: Protocol, api: Api, receivers: dict[str, Receiver]
) -> None:
    crisis = await a_crisis(told, api)
    await crisis.order(HOSTED[:1])
    copy = await told_of(receivers[HOST_AUTHORITY.id], "scrutiny_copy")
    assert copy["data"]["order"]["reference"] == ORDER_DETAILS.reference
    assert copy["data"]["identifiers"][0]["value"] == HOSTED[0].value
    [order] = await crisis.get(HOST_AUTHORITY, "orders")
    assert (order["platform"], order["copy_to"]) == (CHOOSY.id, [HOST_AUTHORITY.id])

    # choosy asks for scrutiny within its 48 hours; Ireland and the issuer are told
    await crisis.ok(
        CHOOSY,
        "scrutiny-requests",
        {"reference": ORDER_DETAILS.reference, "reason": "the video is news reporting"},
    )
    asked = await told_of(receivers[HOST_AUTHORITY.id], "scrutiny_requested")
    assert asked["data"]["reason"] == "the video is news reporting"
    await told_of(receivers[MEMBER_STATE.id], "scrutiny_requested")
    again = await crisis.post(
        CHOOSY, "scrutiny-requests", {"reference": ORDER_DETAILS.reference, "reason": "again"}
    )
    assert (again.status_code, again.json()["error"]["field"]) == (409, "reference")

    # the issuing State may not scrutinise its own order; the host State decides
    own = await crisis.post(
        MEMBER_STATE,
        "scrutiny-decisions",
        {"reference": ORDER_DETAILS.reference, "outcome": "upheld", "reason": "ours"},
    )
    assert (own.status_code, own.json()["error"]["field"]) == (403, "actor")
    await crisis.ok(
        HOST_AUTHORITY,
        "scrutiny-decisions",
        {
            "reference": ORDER_DETAILS.reference,
            "outcome": "upheld",
            "reason": "no serious or manifest infringement",
        },
    )
    for party in (MEMBER_STATE, CHOOSY, COORDINATOR):
        decided = await told_of(receivers[party.id], "scrutiny_decided")
        assert decided["data"]["outcome"] == "upheld"
    [order] = await crisis.get(CHOOSY, "orders")
    assert order["decision"]["outcome"] == "upheld"
    assert await crisis.get(FASTBOOK, "orders") == []  # not its order: not even that it exists
    recorded = kinds_recorded(told, crisis.incident)
    assert recorded.index(DecisionKind.scrutiny_requested) < recorded.index(
        DecisionKind.scrutiny_decided
    )
    for other in (FASTBOOK,):
        assert not [n for n in notices(receivers[other.id], "scrutiny_decided")], (
            "another platform heard of the order"
        )


async def test_an_order_that_infringes_loses_effect_and_its_removed_content_is_reinstated(
    told: Protocol, api: Api, receivers: dict[str, Receiver]
) -> None:
    crisis = await a_crisis(told, api)
    answer = await crisis.order(HOSTED)
    removed, still_open = (f"{CHOOSY.id}-{no:06d}" for no in answer["accepted_items"])

    async def both_held() -> bool:
        return {removed, still_open} <= set(await crisis.tasks(CHOOSY))

    await eventually(both_held)
    await crisis.report(CHOOSY, task_id=removed, outcome="removed")
    await crisis.ok(
        HOST_AUTHORITY,
        "scrutiny-decisions",
        {
            "reference": ORDER_DETAILS.reference,
            "outcome": "infringes",
            "reason": "the content is protected journalism (Art. 1(3) TCO)",
        },
    )
    lost = await told_of(receivers[CHOOSY.id], "order_lost_effect")
    assert lost["data"]["withdrawn"] == [still_open]
    [reinstate] = lost["data"]["reinstate"]
    assert reinstate["task_id"] == f"{removed}-reinstate"

    async def reinstatement_held() -> bool:
        return reinstate["task_id"] in await crisis.tasks(CHOOSY)

    await eventually(reinstatement_held)
    tasks = await crisis.tasks(CHOOSY)
    assert tasks[still_open]["state"] == "withdrawn"
    assert tasks[removed]["state"] == "removed"  # what was done stays on the record
    assert tasks[reinstate["task_id"]]["reinstates"] == removed
    # a removal task takes no reinstatement, nor a reinstatement task a removal
    wrong = await crisis.post(
        CHOOSY, "tasks/reports", {"reports": [{"task_id": removed, "outcome": "reinstated"}]}
    )
    assert wrong.status_code == 409
    assert "reinstated is for reinstatement tasks" in wrong.json()["error"]["rule"]
    await crisis.report(CHOOSY, task_id=reinstate["task_id"], outcome="reinstated")
    assert (await crisis.tasks(CHOOSY))[reinstate["task_id"]]["state"] == "reinstated"
    # an order without effect is clarified no more
    late = await crisis.post(
        MEMBER_STATE, "clarifications", {"reference": ORDER_DETAILS.reference, "reason": "x"}
    )
    assert late.status_code == 409 and "lost its legal effect" in late.json()["error"]["rule"]
    recorded = kinds_recorded(told, crisis.incident)
    assert {
        DecisionKind.scrutiny_decided,
        DecisionKind.task_withdrawn,
        DecisionKind.reinstatement_assigned,
        DecisionKind.task_reinstated,
    } <= set(recorded)


async def test_the_issuers_clarification_restarts_the_hour(
    told: Protocol, api: Api, receivers: dict[str, Receiver]
) -> None:
    crisis = await a_crisis(told, api)
    task = await crisis.ordered(HOSTED[0])
    await crisis.report(
        CHOOSY,
        task_id=task,
        outcome="cannot_comply",
        cannot_comply="insufficient_information",
        reason="the URL leads to a channel of 400 videos: which one?",
    )
    asked = await told_of(receivers[MEMBER_STATE.id], "clarification_requested")
    [request] = asked["data"]["tasks"]
    assert (request["task_id"], request["cannot_comply"]) == (task, "insufficient_information")
    # only the clarification ends this pause (TCO Art. 3(8))
    resumed = await crisis.post(
        CHOOSY, "tasks/reports", {"reports": [{"task_id": task, "outcome": "resumed"}]}
    )
    assert resumed.status_code == 409 and "Art. 3(8)" in resumed.json()["error"]["rule"]
    clarified_at = datetime.now(UTC)
    await crisis.ok(
        MEMBER_STATE,
        "clarifications",
        {"reference": ORDER_DETAILS.reference, "reason": "the video posted at 01:52 UTC"},
    )
    received = await told_of(receivers[CHOOSY.id], "clarification_received")
    assert received["data"]["clarification"] == "the video posted at 01:52 UTC"
    [restarted] = received["data"]["tasks"]
    act_by = datetime.fromisoformat(restarted["act_by"])
    hour = SlaSettings().act_within
    assert (
        clarified_at + hour - timedelta(seconds=5)
        < act_by
        < clarified_at + hour + timedelta(seconds=30)
    )  # a full hour from the clarification's arrival
    assert (await crisis.tasks(CHOOSY))[task]["state"] == "acknowledged"
    # another authority cannot clarify an order it did not issue
    foreign = await crisis.post(
        HOST_AUTHORITY, "clarifications", {"reference": ORDER_DETAILS.reference, "reason": "x"}
    )
    assert foreign.status_code == 404


async def test_a_task_paused_too_long_alerts_the_coordinators_and_the_issuer(
    told: Protocol, api: Api, receivers: dict[str, Receiver]
) -> None:
    sla = SlaSettings(pause_alert_after=timedelta(seconds=2))
    crisis = await a_crisis(told, api, sla)
    task = await crisis.ordered(HOSTED[0])
    await crisis.report(
        CHOOSY,
        task_id=task,
        outcome="cannot_comply",
        cannot_comply="technical_impossibility",
        reason="our takedown service is down",
    )
    for party in (COORDINATOR, MEMBER_STATE):
        alert = await told_of(receivers[party.id], "pause_alert")
        [paused] = alert["data"]["tasks"]
        assert (paused["task_id"], paused["cannot_comply"]) == (task, "technical_impossibility")
    assert not notices(receivers[HOST_AUTHORITY.id], "pause_alert")
    assert DecisionKind.pause_alerted in kinds_recorded(told, crisis.incident)
    # the platform itself resumes once the impossibility has ceased (Art. 3(7))
    resumed = await crisis.report(CHOOSY, task_id=task, outcome="resumed")
    assert resumed["changed"] == [task]


async def test_what_a_platform_and_an_authority_cannot_do_with_an_order(
    told: Protocol, api: Api
) -> None:
    crisis = await a_crisis(told, api)
    await crisis.order(HOSTED[:1])
    # another platform's order answers as an order that does not exist
    theirs, none = [
        await crisis.post(FASTBOOK, "scrutiny-requests", {"reference": ref, "reason": "probe"})
        for ref in (ORDER_DETAILS.reference, "FR-NO-SUCH-ORDER")
    ]
    assert theirs.status_code == none.status_code == 404
    assert theirs.json() == none.json()
    # an order's reference is its own
    again = await api.as_(MEMBER_STATE.id).post(
        f"/v1/incidents/{crisis.incident}/removal-orders",
        json={
            "identifiers": [url(9).model_dump(mode="json") | {"platform": CHOOSY.id}],
            "order": ORDER_DETAILS.model_dump(mode="json"),
        },
    )
    assert (again.status_code, again.json()["error"]["field"]) == (409, "order.reference")
    # a domestic order is not scrutinised under Art. 4
    domestic = OrderDetails(
        **ORDER_DETAILS.model_dump() | {"host_member_state": "FR", "reference": "FR-DOM-1"}
    )
    await crisis.order([url(10)], **domestic.model_dump())
    refused = await crisis.post(
        CHOOSY, "scrutiny-requests", {"reference": "FR-DOM-1", "reason": "please"}
    )
    assert refused.status_code == 409 and "Art. 9" in refused.json()["error"]["rule"]

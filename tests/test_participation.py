"""Who takes part, and who is told (issue 13), over HTTP on the real dev server: a platform
brought in mid-crisis gets exactly the open identifiers meant for it, from a registry entry
written after the incident began (no restart); a suspended platform gets nothing more; an
affected Member State reads its incident and nothing it should not; an imminent threat to
life reaches the Member States concerned at once; situational updates and linked protocols
are recorded; an exercise says so in every notice.

The EU IRU coordinates; fastbook and slowtube take part from the activation, a latecomer
("copies.example") is registered and brought in later; the French authority (affected) and
the Irish one (not) are both registered.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from eucp.demo import presets
from eucp.protocol.decisions import DecisionKind
from eucp.protocol.identifiers import UrlIdentifier
from eucp.protocol.participants import Actor, ParticipantKind
from eucp.runtime.ledger import open_ledger
from eucp.runtime.registry import Registry
from eucp.runtime.tokens import TokenStore
from tests.conftest import (
    ACTORS,
    CHOOSY,
    COORDINATOR,
    FASTBOOK,
    HOST_AUTHORITY,
    MEMBER_STATE,
    SLOWTUBE,
    Protocol,
    a_report,
    protocol_on,
    settings_in,
)
from tests.http_steps import Api, serving
from tests.protocol_steps import ALL_MET, ORDER_DETAILS, eventually, url
from tests.receivers import SECRET, Receiver

LATECOMER = Actor(id="copies-example", kind=ParticipantKind.platform)
TOLD = [COORDINATOR, MEMBER_STATE, HOST_AUTHORITY, FASTBOOK, SLOWTUBE, LATECOMER]
COUNTRY = {MEMBER_STATE.id: "FR", HOST_AUTHORITY.id: "IE"}


@pytest.fixture
def receivers() -> Iterator[dict[str, Receiver]]:
    with ExitStack() as stack:
        yield {actor.id: stack.enter_context(Receiver()) for actor in TOLD}


@pytest.fixture
async def told(
    dev_env: WorkflowEnvironment, tmp_path: Path, receivers: dict[str, Receiver]
) -> AsyncIterator[Protocol]:
    """eucp where everyone but the latecomer is registered, each told on its webhook."""
    settings = settings_in(tmp_path)
    Registry(participants=[contact(actor, receivers) for actor in ACTORS]).save(
        settings.registry_path
    )
    with open_ledger(settings.ledger_url) as ledger:
        async for protocol in protocol_on(dev_env, settings, ledger):
            yield protocol


def contact(actor: Actor, receivers: dict[str, Receiver]) -> Any:
    hook = receivers.get(actor.id)
    return presets.contact(
        actor.id,
        actor.kind,
        webhook=presets.SignedWebhook(hook.url, SECRET) if hook else None,
        country=COUNTRY.get(actor.id),
    )


@pytest.fixture
async def api(told: Protocol) -> AsyncIterator[Api]:
    store = TokenStore(told.settings.tokens_path)
    tokens = {actor.id: store.issue(actor.id) for actor in [*ACTORS, LATECOMER]}
    async with serving(told.settings, told.env.client) as base:
        client = Api(base, tokens)
        try:
            yield client
        finally:
            await client.close()


class Crisis:
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

    async def items_held(self, platform: Actor) -> list[int]:
        answer = await self.api.as_(platform.id).get(f"/v1/incidents/{self.incident}/tasks")
        if answer.status_code != 200:
            return []
        return sorted(task["item_no"] for task in answer.json()["tasks"])


async def reported(api: Api, **changes: Any) -> Crisis:
    report = a_report(**{"affected_member_states": ["FR"], **changes}).model_dump(mode="json")
    answer = await api.as_(COORDINATOR.id).post("/v1/incidents", json={"report": report})
    assert answer.status_code == 201, answer.text
    return Crisis(api, answer.json()["incident_id"])


async def activated(api: Api, *identifiers: UrlIdentifier, **changes: Any) -> Crisis:
    crisis = await reported(api, **changes)
    await crisis.ok(COORDINATOR, "assessment", {"assessment": ALL_MET.model_dump(mode="json")})
    await crisis.ok(
        COORDINATOR,
        "activation",
        {
            "reason": "criteria met",
            "platforms": [FASTBOOK.id, SLOWTUBE.id],
            "identifiers": [i.model_dump(mode="json") for i in identifiers],
        },
    )
    return crisis


def kinds(receiver: Receiver) -> list[str]:
    return [json.loads(request.body)["kind"] for request in receiver.requests]


def recorded(told: Protocol, incident: str, kind: DecisionKind) -> list[Any]:
    return [row.decision for row in told.ledger.rows(incident) if row.decision.kind is kind]


async def settled(check: Any) -> None:
    await eventually(check, within=20)


# ---- participation that changes ------------------------------------------------------------


async def test_a_platform_brought_in_mid_crisis_gets_exactly_the_open_identifiers_meant_for_it(
    told: Protocol, api: Api, receivers: dict[str, Receiver]
) -> None:
    on_slowtube = UrlIdentifier(value="https://slowtube.example.test/v/2", platform=SLOWTUBE.id)
    crisis = await activated(api, url(1), on_slowtube)  # items 1 (all) and 2 (slowtube's)
    order = ORDER_DETAILS.model_copy(update={"platform": FASTBOOK.id})
    await crisis.ok(  # item 3: fastbook's order
        MEMBER_STATE,
        "removal-orders",
        {"identifiers": [url(3).model_dump(mode="json")], "order": order.model_dump(mode="json")},
    )
    await crisis.ok(COORDINATOR, "content", {"identifiers": [url(4).model_dump(mode="json")]})
    await crisis.ok(COORDINATOR, "withdrawals", {"items": [4], "reason": "a false positive"})
    await crisis.ok(FASTBOOK, "sightings", {"identifiers": [url(5).model_dump(mode="json")]})

    # the latecomer registers after the incident began: the running API and worker honour it
    registry = Registry.load(told.settings.registry_path)
    Registry(participants=[*registry.participants, contact(LATECOMER, receivers)]).save(
        told.settings.registry_path
    )
    await crisis.ok(
        COORDINATOR, "participants", {"platform": LATECOMER.id, "reason": "copies moved there"}
    )

    async def holds_the_open_ones() -> bool:
        return await crisis.items_held(LATECOMER) == [1, 5]  # not 2, 3 (others'), 4 (withdrawn)

    await settled(holds_the_open_ones)
    latecomer = receivers[LATECOMER.id]

    async def told_of_its_tasks() -> bool:  # on the webhook the registry gave it after the start
        return "task_assigned" in kinds(latecomer)

    await settled(told_of_its_tasks)
    assert "phase_changed" not in kinds(latecomer)  # nothing from before it joined
    await crisis.ok(COORDINATOR, "de-escalation", {"reason": "copies fell"})

    async def told_from_now_on() -> bool:
        return "phase_changed" in kinds(latecomer)

    await settled(told_from_now_on)
    [joined] = recorded(told, crisis.incident, DecisionKind.platform_joined)
    assert joined.inputs["platform"] == LATECOMER.id and joined.reason == "copies moved there"
    for body in (r.body.decode() for r in latecomer.requests):
        assert ORDER_DETAILS.reference not in body and "slowtube.example.test" not in body


async def test_a_platform_not_registered_or_already_in_cannot_be_brought_in(
    told: Protocol, api: Api
) -> None:
    crisis = await activated(api, url(1))
    unknown = await crisis.post(COORDINATOR, "participants", {"platform": "nobody", "reason": "x"})
    assert (unknown.status_code, unknown.json()["error"]["field"]) == (422, "platform")
    already = await crisis.post(
        COORDINATOR, "participants", {"platform": FASTBOOK.id, "reason": "x"}
    )
    assert (already.status_code, already.json()["error"]["field"]) == (409, "platform")
    by_platform = await crisis.post(
        FASTBOOK, "participants", {"platform": CHOOSY.id, "reason": "x"}
    )
    assert by_platform.status_code == 403


async def test_a_suspended_platform_gets_no_new_tasks_and_no_notices(
    told: Protocol, api: Api, receivers: dict[str, Receiver]
) -> None:
    crisis = await activated(api, url(1))

    async def both_hold_item_1() -> bool:
        return await crisis.items_held(SLOWTUBE) == [1]

    await settled(both_hold_item_1)
    no_reason = await crisis.post(COORDINATOR, "suspensions", {"platform": SLOWTUBE.id})
    assert (no_reason.status_code, no_reason.json()["error"]["field"]) == (422, "reason")
    await crisis.ok(
        COORDINATOR, "suspensions", {"platform": SLOWTUBE.id, "reason": "its contact is down"}
    )

    async def withdrawn() -> bool:
        page = await api.as_(SLOWTUBE.id).get(f"/v1/incidents/{crisis.incident}/tasks")
        return [t["state"] for t in page.json()["tasks"]] == ["withdrawn"]

    await settled(withdrawn)
    heard = len(receivers[SLOWTUBE.id].requests)
    await crisis.ok(COORDINATOR, "content", {"identifiers": [url(2).model_dump(mode="json")]})
    await crisis.ok(COORDINATOR, "de-escalation", {"reason": "copies fell"})

    async def fastbook_holds_2() -> bool:
        return await crisis.items_held(FASTBOOK) == [1, 2]

    await settled(fastbook_holds_2)
    assert await crisis.items_held(SLOWTUBE) == [1]
    later = [json.loads(r.body)["kind"] for r in receivers[SLOWTUBE.id].requests[heard:]]
    assert set(later) <= {"tasks_withdrawn"}, later  # its suspension's own notice, if late
    [suspended] = recorded(told, crisis.incident, DecisionKind.platform_suspended)
    assert suspended.reason == "its contact is down"


# ---- Member States in their role -----------------------------------------------------------


async def test_an_affected_member_state_reads_its_incident_and_nothing_it_should_not(
    told: Protocol, api: Api, receivers: dict[str, Receiver]
) -> None:
    crisis = await activated(api, url(1))  # France is affected, Ireland is not
    other = ORDER_DETAILS.model_copy(update={"platform": FASTBOOK.id, "reference": "FR-OTHER"})
    await crisis.ok(
        MEMBER_STATE,
        "removal-orders",
        {"identifiers": [url(2).model_dump(mode="json")], "order": other.model_dump(mode="json")},
    )
    france = await api.as_(MEMBER_STATE.id).get(f"/v1/incidents/{crisis.incident}")
    assert france.status_code == 200, france.text
    view = france.json()
    assert view["crisis"]["phase"] == "active"
    assert [o["reference"] for o in view["crisis"]["orders"]] == ["FR-OTHER"]  # its own only
    ireland = await api.as_(HOST_AUTHORITY.id).get(f"/v1/incidents/{crisis.incident}")
    assert ireland.status_code == 200  # the host of France's order: it reads the incident too
    assert [o["reference"] for o in ireland.json()["crisis"]["orders"]] == ["FR-OTHER"]
    timeline = await api.as_(MEMBER_STATE.id).get(f"/v1/incidents/{crisis.incident}/timeline")
    assert timeline.status_code == 200, timeline.text
    seen = {entry["kind"] for entry in timeline.json()}
    assert {"reported", "assessed", "activated"} <= seen
    assert not seen & {"task_acknowledged", "sighting_reported"}  # platforms' own business
    assert "phase_changed" in kinds(receivers[MEMBER_STATE.id])
    await crisis.ok(MEMBER_STATE, "sightings", {"identifiers": [url(9).model_dump(mode="json")]})

    other_incident = await reported(api, affected_member_states=["DE"])
    stranger = await api.as_(HOST_AUTHORITY.id).get(f"/v1/incidents/{other_incident.incident}")
    assert stranger.status_code == 404  # neither affected nor concerned by an order
    assert "phase_changed" not in kinds(receivers[HOST_AUTHORITY.id]) or all(
        other_incident.incident not in r.body.decode()
        for r in receivers[HOST_AUTHORITY.id].requests
    )


# ---- imminent threat, situational updates, linked protocols --------------------------------


async def test_an_imminent_threat_reaches_the_member_states_concerned_at_once(
    told: Protocol, api: Api, receivers: dict[str, Receiver]
) -> None:
    crisis = await activated(api, url(1))
    await crisis.ok(
        FASTBOOK,
        "imminent-threats",
        {"member_states": ["IE"], "text": "a post announces a second attack in Dublin tonight"},
    )
    for concerned in (HOST_AUTHORITY, COORDINATOR):

        async def alerted(receiver: Receiver = receivers[concerned.id]) -> bool:
            return "imminent_threat" in kinds(receiver)

        await settled(alerted)
    assert "imminent_threat" not in kinds(receivers[SLOWTUBE.id])
    [flag] = recorded(told, crisis.incident, DecisionKind.imminent_threat_flagged)
    assert flag.inputs["member_states"] == ["IE"] and flag.actor.id == FASTBOOK.id


async def test_updates_and_linked_protocols_are_recorded_and_reach_the_participants(
    told: Protocol, api: Api, receivers: dict[str, Receiver]
) -> None:
    crisis = await reported(api)
    await crisis.ok(
        COORDINATOR,
        "linked-protocols",
        {
            "protocol": "gifct_cip",
            "reference": "CIP-2026-03",
            "activated_at": "2026-03-15T02:10:00+00:00",
        },
    )
    await crisis.ok(COORDINATOR, "assessment", {"assessment": ALL_MET.model_dump(mode="json")})
    await crisis.ok(COORDINATOR, "activation", {"reason": "criteria met"})
    await crisis.ok(COORDINATOR, "updates", {"text": "the attacker is in custody"})

    async def updated() -> bool:
        return "situation_update" in kinds(receivers[FASTBOOK.id])

    await settled(updated)
    status = (await api.as_(COORDINATOR.id).get(f"/v1/incidents/{crisis.incident}")).json()
    [linked] = status["crisis"]["linked"]
    assert (linked["protocol"], linked["reference"]) == ("gifct_cip", "CIP-2026-03")
    assert recorded(told, crisis.incident, DecisionKind.situation_updated)
    assert recorded(told, crisis.incident, DecisionKind.protocol_linked)


async def test_an_exercise_says_so_in_every_notice(
    told: Protocol, api: Api, receivers: dict[str, Receiver]
) -> None:
    crisis = await activated(api, url(1), exercise=True)

    async def assigned() -> bool:
        return "task_assigned" in kinds(receivers[FASTBOOK.id])

    await settled(assigned)
    for request in receivers[FASTBOOK.id].requests:
        notice = json.loads(request.body)
        if crisis.incident in request.body.decode():
            assert notice["summary"].startswith("EXERCISE: "), notice
            assert notice["data"]["exercise"] is True, notice
    listing = (await api.as_(COORDINATOR.id).get("/v1/incidents")).json()
    [mine] = [entry for entry in listing if entry["incident_id"] == crisis.incident]
    assert mine["exercise"] is True

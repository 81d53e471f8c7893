"""Need-to-know (issue 12, TCO Art. 3 and 11(3)): a removal order reaches its addressee, and
nothing about it reaches another platform, through any route, notification or error.

The French authority issues a confidential order to choosy in a crisis where fastbook and
slowtube take part too. Every platform has a real webhook receiver; the order's task then
climbs the escalation ladder, is reported as a false positive, withdrawn, and the incident
closes, so that every notification kind is sent. Then each other platform calls every route,
the order's task id included. The addressee alone ever sees the order, with its
confidentiality flag.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from eucp.demo import presets
from eucp.protocol.actions import ACTIONS, Action
from eucp.protocol.decisions import DecisionKind
from eucp.protocol.identifiers import UrlIdentifier
from eucp.protocol.participants import Actor
from eucp.protocol.refusal import Refusal
from eucp.protocol.tasks import Outcome, TaskReport
from eucp.runtime.ledger import open_ledger
from eucp.runtime.registry import Registry
from tests.conftest import (
    ACTORS,
    CHOOSY,
    COORDINATOR,
    FASTBOOK,
    MEMBER_STATE,
    PLATFORMS,
    SLOWTUBE,
    Protocol,
    protocol_on,
    settings_in,
)
from tests.http_steps import Api, issue_tokens, serving
from tests.protocol_steps import ALL_MET, ORDER_DETAILS, VIDEO, eventually, holds, url
from tests.receivers import SECRET, Receiver

ORDERED = UrlIdentifier(value="https://choosy.example.test/p/secret-stream", platform=CHOOSY.id)
ORDER = ORDER_DETAILS.model_copy(
    update={"confidential": True, "reference": "FR-2026-NTK-7", "reasons": "Art. 2(7): NTK-7"}
)
ORDER_TASK = "choosy-000002"
# what would tell another platform about the order, in any body, header or notification
SECRETS = [ORDER.reference, ORDER.reasons, ORDER.addressee, ORDERED.value, "removal_order"]
OTHERS = [FASTBOOK, SLOWTUBE]


@pytest.fixture
def receivers() -> Iterator[dict[str, Receiver]]:
    with (
        Receiver() as fastbook,
        Receiver() as slowtube,
        Receiver() as choosy,
        Receiver() as authority,
    ):
        yield {
            FASTBOOK.id: fastbook,
            SLOWTUBE.id: slowtube,
            CHOOSY.id: choosy,
            MEMBER_STATE.id: authority,
        }


@pytest.fixture
async def watched(
    dev_env: WorkflowEnvironment, tmp_path: Path, receivers: dict[str, Receiver]
) -> AsyncIterator[Protocol]:
    """eucp with each platform's notifications on its own webhook receiver."""
    settings = settings_in(tmp_path)
    registry = presets.registry(
        {pid: presets.SignedWebhook(receivers[pid].url, SECRET) for pid in PLATFORMS},
        member_states={MEMBER_STATE.id: "FR"},
        names={actor.id: actor.id.title() for actor in ACTORS},
        desks=True,
    )
    authority = presets.contact(
        MEMBER_STATE.id,
        MEMBER_STATE.kind,
        webhook=presets.SignedWebhook(receivers[MEMBER_STATE.id].url, SECRET),
        country="FR",
    )
    others = [c for c in registry.participants if c.id != MEMBER_STATE.id]
    Registry(participants=[*others, authority]).save(settings.registry_path)
    with open_ledger(settings.ledger_url) as ledger:
        async for protocol in protocol_on(dev_env, settings, ledger):
            yield protocol


def notices(receiver: Receiver) -> list[dict[str, object]]:
    return [json.loads(request.body) for request in receiver.requests]


async def test_a_removal_order_reaches_its_addressee_and_no_other_platform(
    watched: Protocol, receivers: dict[str, Receiver]
) -> None:
    eucp = watched
    incident = await eucp.report(
        sla=presets.compressed_clocks(acknowledge=1, act=3, assessment=300, review=300, deliver=5)
    )
    iru = eucp.incidents.as_participant(incident, COORDINATOR)
    await iru.act(Action.assess, assessment=ALL_MET)
    await iru.act(Action.activate, reason="criteria met", identifiers=[VIDEO])  # item 1, all
    authority = eucp.incidents.as_participant(incident, MEMBER_STATE)
    await authority.act(Action.issue_order, identifiers=[ORDERED], order=ORDER)  # item 2

    async def escalated() -> bool:  # nobody answers: the order's task climbs the ladder
        return any(
            row.decision.kind is DecisionKind.sla_escalated
            and row.decision.inputs.get("task_id") == ORDER_TASK
            for row in eucp.ledger.rows(incident)
        )

    await eventually(escalated, within=30)
    async with serving(eucp.settings, eucp.env.client) as base:
        api = Api(base, issue_tokens(eucp.settings))
        try:  # while the crisis runs: every route, as each other platform
            heard = [said for other in OTHERS for said in await every_route(api, other, incident)]
            # the order's item is answered as an item that does not exist
            flag = f"/v1/incidents/{incident}/false-positives"
            theirs, none = [
                await api.as_(FASTBOOK.id).post(flag, json={"item": item, "reason": "probe"})
                for item in (2, 99)
            ]
            assert theirs.status_code == none.status_code == 404
            assert theirs.json()["error"]["rule"].replace("2", "99") == none.json()["error"]["rule"]
        finally:
            await api.close()
    choosy = eucp.incidents.as_participant(incident, CHOOSY)
    await choosy.act(Action.report_false_positive, item=2, reason="not the stream")
    await iru.act(Action.withdraw_content, items=[2], reason="the authority withdrew it")
    await iru.act(Action.de_escalate, reason="over")
    await iru.act(Action.start_review)
    await iru.act(Action.close, reason="debrief held")
    await eucp.incidents.result(incident)

    async with serving(eucp.settings, eucp.env.client) as base:
        api = Api(base, issue_tokens(eucp.settings))
        try:  # and once it has closed
            heard += [said for other in OTHERS for said in await every_route(api, other, incident)]
        finally:
            await api.close()
    for said in heard:
        assert not [s for s in SECRETS if s in said], said
        assert ORDER_TASK not in said or "no task" in said, said  # as for a task that is not

    for other in OTHERS:  # every notification another platform had, of every kind
        bodies = [request.body.decode() for request in receivers[other.id].requests]
        assert bodies, other.id
        for body in bodies:
            assert not [s for s in SECRETS if s in body], (other.id, body)
            assert ORDER_TASK not in body, (other.id, body)
    told = notices(receivers[CHOOSY.id])
    [assigned] = [
        n for n in told if n["kind"] == "task_assigned" and ORDERED.value in json.dumps(n)
    ]
    [task] = assigned["data"]["tasks"]  # type: ignore[index]
    assert task["basis"]["reference"] == ORDER.reference
    assert task["basis"]["confidential"] is True  # Art. 11(3): the addressee is told to keep it
    kinds = {n["kind"] for n in told}
    assert {"task_assigned", "reminder", "tasks_withdrawn", "phase_changed"} <= kinds, kinds


async def every_route(api: Api, caller: Actor, incident: str) -> list[str]:
    """What `caller` hears from every route of the API about the incident, the order's task
    id and item included: the status and body of each answer."""
    client = api.as_(caller.id)
    path = f"/v1/incidents/{incident}"
    requests: list[tuple[str, str, object]] = [
        ("GET", "/v1/incidents", None),
        ("GET", path, None),
        ("GET", f"{path}/tasks", None),
        ("GET", f"{path}/tasks?platform={CHOOSY.id}", None),
        ("GET", f"{path}/tasks?state=withdrawn", None),
        ("GET", f"{path}/decisions", None),
        ("GET", f"{path}/orders", None),
        ("GET", "/v1/tasks", None),
        ("GET", f"/v1/tasks?platform={CHOOSY.id}", None),
        ("GET", f"{path}/timeline", None),
        ("POST", f"{path}/tasks/reports", {"reports": [report(ORDER_TASK)]}),
    ]
    for row in ACTIONS.values():  # each action's fields, aimed at the order's item and content
        asks = row.command.model_fields
        body: dict[str, object] = {"reason": "probe"} | {
            name: value for name, value in PROBES.items() if name in asks
        }
        requests.append(("POST", f"{path}/{row.path}", body))
    answers = await asyncio.gather(
        *(client.request(method, url_, json=body) for method, url_, body in requests)
    )
    return [f"{a.request.method} {a.request.url}: {a.status_code} {a.text}" for a in answers]


PROBES: dict[str, object] = {
    "item": 2,
    "items": [2],
    "identifiers": [ORDERED.model_dump(mode="json")],
    "text": "probe",
    "order": ORDER.model_dump(mode="json"),
    "reference": ORDER.reference,
    "outcome": "infringes",
    "assessment": ALL_MET.model_dump(mode="json"),
}


def report(task_id: str) -> dict[str, str]:
    return {"task_id": task_id, "outcome": "acknowledged"}


async def test_the_addressee_reads_its_order_with_its_confidentiality(watched: Protocol) -> None:
    eucp = watched
    incident = await eucp.report()
    iru = eucp.incidents.as_participant(incident, COORDINATOR)
    await iru.act(Action.assess, assessment=ALL_MET)
    await iru.act(Action.activate, reason="criteria met", identifiers=[url(1)])
    authority = eucp.incidents.as_participant(incident, MEMBER_STATE)
    await authority.act(Action.issue_order, identifiers=[ORDERED], order=ORDER)
    async with serving(eucp.settings, eucp.env.client) as base:
        api = Api(base, issue_tokens(eucp.settings))
        try:

            async def listed() -> bool:
                page = await api.as_(CHOOSY.id).get(f"/v1/incidents/{incident}/tasks")
                return ORDER_TASK in page.text

            await eventually(listed)
            page = (await api.as_(CHOOSY.id).get(f"/v1/incidents/{incident}/tasks")).json()
            [order] = [t["basis"] for t in page["tasks"] if t["task_id"] == ORDER_TASK]
            assert (order["reference"], order["confidential"]) == (ORDER.reference, True)
            status = await api.as_(CHOOSY.id).get(f"/v1/incidents/{incident}")
            assert status.status_code == 200
            mine = await api.as_(CHOOSY.id).get(f"/v1/incidents/{incident}/tasks?state=assigned")
            assert httpx.codes.is_success(mine.status_code)
        finally:
            await api.close()


async def test_the_issuing_authority_is_told_of_the_removal_and_its_time(
    watched: Protocol, receivers: dict[str, Receiver]
) -> None:
    """Annex II: the removal's time is checked (not in the future, not before the order was
    received), recorded, and sent to the authority that issued the order."""
    eucp = watched
    incident = await eucp.report()
    iru = eucp.incidents.as_participant(incident, COORDINATOR)
    await iru.act(Action.assess, assessment=ALL_MET)
    await iru.act(Action.activate, reason="criteria met", identifiers=[url(1)])
    authority = eucp.incidents.as_participant(incident, MEMBER_STATE)
    await authority.act(Action.issue_order, identifiers=[ORDERED], order=ORDER)
    choosy = eucp.incidents.as_participant(incident, CHOOSY)
    await holds(choosy, 2)
    now = datetime.now(UTC)
    for wrong, rule in [
        (now + timedelta(hours=1), "in the future"),
        (now - timedelta(days=1), "before the order was received"),
    ]:
        with pytest.raises(Refusal, match=rule) as refused:
            await choosy.report_tasks([removed(ORDER_TASK, wrong)])
        assert refused.value.field == "reports[0].removed_at"
    answer = await choosy.report_tasks([removed(ORDER_TASK, now)])
    assert answer.changed == [ORDER_TASK]
    [row] = [
        r for r in eucp.ledger.rows(incident) if r.decision.inputs.get("task_id") == ORDER_TASK
    ]
    assert row.decision.inputs["removed_at"] == now.isoformat()  # recorded as reported

    def confirmations() -> list[dict[str, Any]]:
        return [n for n in notices(receivers[MEMBER_STATE.id]) if n["kind"] == "removal_confirmed"]

    async def told() -> bool:
        return bool(confirmations())

    await eventually(told)
    [confirmation] = confirmations()
    [removal] = confirmation["data"]["removals"]
    assert (removal["task_id"], removal["reference"]) == (ORDER_TASK, ORDER.reference)
    assert datetime.fromisoformat(removal["removed_at"]) == now
    assert not [n for n in notices(receivers[FASTBOOK.id]) if n["kind"] == "removal_confirmed"]


def removed(task_id: str, at: datetime) -> TaskReport:
    return TaskReport(task_id=task_id, outcome=Outcome.removed, removed_at=at)

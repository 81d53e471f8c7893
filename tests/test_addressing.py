"""Every task has an addressee (issue 12, TCO Art. 3): a removal order is a task for the one
platform it binds, a voluntary referral for every participating platform or the ones named,
an identifier bound to a platform (an item, or a URL with its platform) for that platform
alone. An order addressed to a platform that is unknown or takes no part is refused."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from click.testing import CliRunner

from eucp.cli import main
from eucp.protocol.actions import Action
from eucp.protocol.identifiers import UrlIdentifier
from eucp.protocol.participants import Actor, Participant, ParticipantKind
from eucp.protocol.refusal import Refusal, RefusalKind
from eucp.protocol.tasks import RemovalOrder, VoluntaryReferral
from tests.conftest import (
    CHOOSY,
    COORDINATOR,
    FASTBOOK,
    MEMBER_STATE,
    REGISTRY,
    SLOWTUBE,
    Protocol,
    a_report,
)
from tests.http_steps import Api, issue_tokens, serving
from tests.protocol_steps import ALL_MET, AN_ORDER, ORDER_DETAILS, VIDEO, activated, eventually, url

ON_SLOWTUBE = UrlIdentifier(value="https://slowtube.example.test/v/42", platform=SLOWTUBE.id)


async def tasks_held(eucp: Protocol, incident: str) -> dict[str, list[int]]:
    """Each platform's tasks, by item number."""
    held = {}
    for platform in (FASTBOOK, SLOWTUBE, CHOOSY):
        page = await eucp.incidents.tasks(incident, platform.id)
        held[platform.id] = sorted(task.item_no for task in page.tasks)
    return held


async def settles_at(eucp: Protocol, incident: str, expected: dict[str, list[int]]) -> None:
    """Waits until the platforms hold these tasks (they apply the crisis's signals a moment
    after its answer), then checks that they hold nothing more."""

    async def held() -> bool:
        return await tasks_held(eucp, incident) == expected

    await eventually(held)


async def test_a_removal_order_is_a_task_for_its_addressee_alone(eucp: Protocol) -> None:
    incident = await eucp.report()
    await activated(eucp.incidents.as_participant(incident, COORDINATOR), VIDEO)  # item 1, for all
    authority = eucp.incidents.as_participant(incident, MEMBER_STATE)
    answer = await authority.act(Action.issue_order, identifiers=[url(2)], order=ORDER_DETAILS)
    assert answer.accepted_items == [2]
    await settles_at(eucp, incident, {"fastbook": [1], "slowtube": [1], "choosy": [1, 2]})
    choosy_tasks = (await eucp.incidents.tasks(incident, CHOOSY.id)).tasks
    [order_task] = [task for task in choosy_tasks if task.item_no == 2]
    assert isinstance(order_task.basis, RemovalOrder)
    assert order_task.basis.reference == AN_ORDER.reference
    for other in (FASTBOOK, SLOWTUBE):  # nothing of the order reaches another platform
        page = await eucp.incidents.tasks(incident, other.id)
        assert all(isinstance(task.basis, VoluntaryReferral) for task in page.tasks)


async def test_a_referral_goes_to_the_platforms_it_names(eucp: Protocol) -> None:
    incident = await eucp.report()
    iru = eucp.incidents.as_participant(incident, COORDINATOR)
    await activated(iru, VIDEO)
    await iru.act(Action.add_content, identifiers=[url(2)], addressees=[FASTBOOK.id])
    await iru.act(Action.add_content, identifiers=[url(3)])  # none named: every platform
    await settles_at(eucp, incident, {"fastbook": [1, 2, 3], "slowtube": [1, 3], "choosy": [1, 3]})


async def test_an_identifier_bound_to_a_platform_is_a_task_for_it_alone(eucp: Protocol) -> None:
    incident = await eucp.report()
    iru = eucp.incidents.as_participant(incident, COORDINATOR)
    await activated(iru, VIDEO)
    await iru.act(Action.add_content, identifiers=[ON_SLOWTUBE])  # item 2
    fastbook = eucp.incidents.as_participant(incident, FASTBOOK)
    on_choosy = UrlIdentifier(value="https://choosy.example.test/p/7", platform=CHOOSY.id)
    await fastbook.act(Action.report_sightings, identifiers=[on_choosy, url(4)])  # items 3, 4
    await settles_at(eucp, incident, {"fastbook": [1], "slowtube": [1, 2, 4], "choosy": [1, 3, 4]})


@pytest.mark.parametrize(
    ("platform", "kind"),
    [("nobody", RefusalKind.invalid), (CHOOSY.id, RefusalKind.conflict)],  # choosy takes no part
)
async def test_an_order_must_name_a_platform_that_takes_part(
    eucp: Protocol, platform: str, kind: RefusalKind
) -> None:
    incident = await eucp.report()
    iru = eucp.incidents.as_participant(incident, COORDINATOR)
    await iru.act(Action.assess, assessment=ALL_MET)
    await iru.act(
        Action.activate,
        reason="criteria met",
        identifiers=[VIDEO],
        platforms=[FASTBOOK.id, SLOWTUBE.id],
    )
    authority = eucp.incidents.as_participant(incident, MEMBER_STATE)
    order = ORDER_DETAILS.model_copy(update={"platform": platform})
    with pytest.raises(Refusal) as refused:
        await authority.act(Action.issue_order, identifiers=[url(2)], order=order)
    assert (refused.value.field, refused.value.kind) == ("order.platform", kind), refused.value
    status = await eucp.incidents.status(incident)
    assert status.crisis.items == 1  # nothing was admitted


async def test_what_an_order_and_a_referral_cannot_name(eucp: Protocol) -> None:
    incident = await eucp.report()
    iru = eucp.incidents.as_participant(incident, COORDINATOR)
    await activated(iru, VIDEO)
    authority = eucp.incidents.as_participant(incident, MEMBER_STATE)
    with pytest.raises(Refusal, match="hosted by slowtube") as elsewhere:
        await authority.act(Action.issue_order, identifiers=[ON_SLOWTUBE], order=ORDER_DETAILS)
    assert elsewhere.value.field == "identifiers[0].platform"
    with pytest.raises(Refusal, match="not a registered platform") as outsider:
        await iru.act(Action.add_content, identifiers=[url(3)], addressees=[MEMBER_STATE.id])
    assert outsider.value.field == "addressees[0]"  # a Member State has no tasks


async def test_an_authority_issues_an_order_in_its_own_states_name(eucp: Protocol) -> None:
    """Over HTTP: the French authority orders choosy; the order is FR's whatever the body
    says, reaches choosy alone, and fastbook learns nothing of it."""
    incident = await eucp.report()
    await activated(eucp.incidents.as_participant(incident, COORDINATOR), VIDEO)
    async with serving(eucp.settings, eucp.env.client) as base:
        api = Api(base, issue_tokens(eucp.settings))
        try:
            path = f"/v1/incidents/{incident}/removal-orders"
            details = ORDER_DETAILS.model_dump(mode="json")
            body = {"identifiers": [url(2).model_dump(mode="json")], "order": details}
            claimed = body | {"order": details | {"issuing_member_state": "DE"}}
            refused = await api.as_(MEMBER_STATE.id).post(path, json=claimed)
            assert refused.status_code == 422
            assert refused.json()["error"]["field"] == "body.order.issuing_member_state"
            issued = await api.as_(MEMBER_STATE.id).post(path, json=body)
            assert issued.status_code == 200, issued.text
            assert issued.json()["accepted_items"] == [2]
            await settles_at(eucp, incident, {"fastbook": [1], "slowtube": [1], "choosy": [1, 2]})
            mine = await api.as_(CHOOSY.id).get(f"/v1/incidents/{incident}/tasks")
            [order] = [t["basis"] for t in mine.json()["tasks"] if t["item_no"] == 2]
            assert (order["kind"], order["issuing_member_state"]) == ("removal_order", "FR")
            theirs = await api.as_(FASTBOOK.id).get(f"/v1/incidents/{incident}/tasks")
            assert AN_ORDER.reference not in theirs.text
            # the addressee's legal team reads the order by its reference and State
            env = {"EUCP_API_URL": base, "EUCP_TOKEN": api.tokens[CHOOSY.id]}
            listed = await asyncio.to_thread(
                CliRunner().invoke, main, ["task", "list", incident], env=env
            )
            assert f"order {AN_ORDER.reference} (FR)" in listed.output, listed.output
        finally:
            await api.close()


async def test_an_authority_without_its_country_cannot_issue_orders(eucp: Protocol) -> None:
    unplaced = Participant(id="xx-police", kind=ParticipantKind.member_state, name="Police")
    participants = [*REGISTRY.public(), unplaced]
    incident = f"inc-{uuid.uuid4().hex[:10]}"
    await eucp.incidents.report(incident, a_report(), participants)
    await activated(eucp.incidents.as_participant(incident, COORDINATOR), VIDEO)
    authority = eucp.incidents.as_participant(
        incident, Actor(id=unplaced.id, kind=ParticipantKind.member_state)
    )
    with pytest.raises(Refusal, match="no country in the registry") as refused:
        await authority.act(Action.issue_order, identifiers=[url(2)], order=ORDER_DETAILS)
    assert (refused.value.field, refused.value.kind) == ("actor", RefusalKind.forbidden)


async def test_the_coordinator_refers_and_does_not_order(eucp: Protocol) -> None:
    incident = await eucp.report()
    iru = eucp.incidents.as_participant(incident, COORDINATOR)
    await activated(iru, VIDEO)
    with pytest.raises(Refusal, match="issued by a Member State's competent authority") as refused:
        await iru.act(Action.add_content, identifiers=[url(2)], basis=AN_ORDER)
    assert (refused.value.field, refused.value.kind) == ("basis", RefusalKind.forbidden)

"""A burst of sightings: concurrent calls go to the crisis merged, one ledger batch and one
fan-out for many, and every caller still hears its own answer or its own refusal."""

from __future__ import annotations

import asyncio

import pytest

from eucp.protocol.actions import Action
from eucp.protocol.decisions import DecisionKind
from eucp.protocol.refusal import Refusal
from tests.conftest import CHOOSY, COORDINATOR, FASTBOOK, SLOWTUBE, Protocol
from tests.protocol_steps import ALL_MET, VIDEO, eventually, update_events, url


async def test_a_burst_of_sightings_is_merged_and_each_caller_answered(eucp: Protocol) -> None:
    incident = await eucp.report()
    await eucp.incidents.as_participant(incident, COORDINATOR).act(
        Action.assess, assessment=ALL_MET
    )
    await eucp.incidents.as_participant(incident, COORDINATOR).act(
        Action.activate,
        reason="all five criteria met",
        identifiers=[VIDEO],
    )
    handle = eucp.incidents.handle(incident)
    before = await update_events(handle)
    fastbook = eucp.incidents.as_participant(incident, FASTBOOK)
    slowtube = eucp.incidents.as_participant(incident, SLOWTUBE)

    answers = await asyncio.gather(
        *(fastbook.act(Action.report_sightings, identifiers=[url(100 + n)]) for n in range(30)),
        *(slowtube.act(Action.report_sightings, identifiers=[url(200 + n)]) for n in range(30)),
    )

    items = [no for a in answers for no in a.accepted_items]
    assert sorted(items) == list(range(2, 62))  # every URL once, numbered after the video
    decisions = [d for a in answers for d in a.decisions]
    assert len(set(decisions)) == 60
    assert await update_events(handle) - before < 60  # merged: fewer Updates than calls
    rows = [
        r for r in eucp.ledger.rows(incident) if r.decision.kind is DecisionKind.sighting_reported
    ]
    assert sorted(r.decision.decision_id for r in rows) == sorted(decisions)

    async def spread() -> bool:
        status = await eucp.incidents.status(incident)
        tasks = {p: s.tasks for p, s in status.platforms.items()}
        return tasks == {FASTBOOK.id: 31, SLOWTUBE.id: 31, CHOOSY.id: 61}

    await eventually(spread)  # each sighting reaches the others, never its finder


async def test_a_refused_call_in_a_burst_does_not_hold_back_the_others(eucp: Protocol) -> None:
    incident = await eucp.report()
    iru = eucp.incidents.as_participant(incident, COORDINATOR)
    await iru.act(Action.assess, assessment=ALL_MET)
    await iru.act(
        Action.activate,
        reason="criteria met",
        identifiers=[VIDEO],
        platforms=[FASTBOOK.id, SLOWTUBE.id],
    )
    fastbook = eucp.incidents.as_participant(incident, FASTBOOK)
    outsider = eucp.incidents.as_participant(incident, CHOOSY)  # not in this takedown

    results = await asyncio.gather(
        *(fastbook.act(Action.report_sightings, identifiers=[url(n)]) for n in range(10)),
        outsider.act(Action.report_sightings, identifiers=[url(99)]),
        return_exceptions=True,
    )

    refused = results[-1]
    assert isinstance(refused, Refusal) and refused.field == "actor.id"
    assert all(not isinstance(r, BaseException) and r.accepted_items for r in results[:-1])
    sighted = [
        r for r in eucp.ledger.rows(incident) if r.decision.kind is DecisionKind.sighting_reported
    ]
    assert len(sighted) == 10 and {r.decision.actor for r in sighted} == {FASTBOOK}


async def test_a_retried_sighting_call_gets_its_first_answer_and_changes_nothing(
    eucp: Protocol,
) -> None:
    incident = await eucp.report()
    iru = eucp.incidents.as_participant(incident, COORDINATOR)
    await iru.act(Action.assess, assessment=ALL_MET)
    await iru.act(Action.activate, reason="criteria met", identifiers=[VIDEO])
    call = eucp.incidents.as_participant(incident, FASTBOOK, request_id="fastbook:wave-7")

    first, again = await asyncio.gather(
        call.act(Action.report_sightings, identifiers=[url(7)]),
        call.act(Action.report_sightings, identifiers=[url(7)]),
    )
    later = await call.act(Action.report_sightings, identifiers=[url(7)])

    assert first == again == later and first.accepted_items == [2]
    sighted = [
        r for r in eucp.ledger.rows(incident) if r.decision.kind is DecisionKind.sighting_reported
    ]
    assert [r.decision.decision_id for r in sighted] == first.decisions


@pytest.mark.parametrize("calls", [1, 3])
async def test_sightings_after_the_takedown_are_refused_each_with_the_rule(
    eucp: Protocol, calls: int
) -> None:
    incident = await eucp.report()
    iru = eucp.incidents.as_participant(incident, COORDINATOR)
    await iru.act(Action.assess, assessment=ALL_MET)
    await iru.act(Action.activate, reason="criteria met", identifiers=[VIDEO])
    await iru.act(Action.de_escalate, reason="contained")
    await iru.act(Action.start_review, reason="takedown over")
    fastbook = eucp.incidents.as_participant(incident, FASTBOOK)

    results = await asyncio.gather(
        *(fastbook.act(Action.report_sightings, identifiers=[url(n)]) for n in range(calls)),
        return_exceptions=True,
    )

    assert all(isinstance(r, Refusal) and r.field == "phase" for r in results)

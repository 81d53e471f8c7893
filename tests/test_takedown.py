"""Coordinated takedown: content reaches every platform once, sightings spread to the others
without duplicates, repeats change nothing, and false positives can be withdrawn everywhere."""

from __future__ import annotations

from eucp.protocol.actions import Action
from eucp.protocol.decisions import DecisionKind
from eucp.protocol.identifiers import HashAlgorithm, HashIdentifier
from eucp.protocol.tasks import Outcome, TaskReport, TaskState
from tests.conftest import CHOOSY, COORDINATOR, FASTBOOK, PLATFORMS, SLOWTUBE, Protocol
from tests.protocol_steps import MANIFESTO, VIDEO, VIDEO_REENCODED, activated, eventually, url

BLURRY = HashIdentifier(algorithm=HashAlgorithm.pdq, value="ab" * 32, quality=30)


async def test_a_sighting_becomes_tasks_for_the_other_platforms_once(eucp: Protocol) -> None:
    incident = await eucp.report()
    await activated(eucp.incidents.as_participant(incident, COORDINATOR), VIDEO, MANIFESTO)
    fastbook = eucp.incidents.as_participant(incident, FASTBOOK)

    seen = await fastbook.act(
        Action.report_sightings, identifiers=[url(5), VIDEO_REENCODED, MANIFESTO, BLURRY]
    )

    async def spread() -> bool:
        status = await eucp.incidents.status(incident)
        return status.platforms[SLOWTUBE.id].tasks == status.platforms[CHOOSY.id].tasks == 3

    await eventually(spread)
    assert seen.accepted_items == [3]  # only the new URL: the rest were known or unusable
    assert (seen.duplicates, seen.low_quality) == (2, 1)
    again = await fastbook.act(Action.report_sightings, identifiers=[url(5)])
    assert again.accepted_items == [] and again.duplicates == 1

    status = await eucp.incidents.status(incident)
    assert status.platforms[FASTBOOK.id].tasks == 2  # the finder already has it
    assert status.platforms[SLOWTUBE.id].tasks == 3
    assert status.platforms[CHOOSY.id].tasks == 3
    rows = eucp.ledger.rows(incident)
    sightings = [r for r in rows if r.decision.kind is DecisionKind.sighting_reported]
    assert len(sightings) == 2 and sightings[0].decision.actor == FASTBOOK


async def test_a_repeated_acknowledgement_changes_nothing(eucp: Protocol) -> None:
    incident = await eucp.report()
    await activated(eucp.incidents.as_participant(incident, COORDINATOR), url(1), url(2))
    fastbook = eucp.incidents.as_participant(incident, FASTBOOK)
    acks = [
        TaskReport(task_id=t.task_id, outcome=Outcome.acknowledged)
        for t in (await fastbook.my_tasks()).tasks
    ]
    first = await fastbook.report_tasks(acks)
    rows = len(eucp.ledger.rows(incident))
    second = await fastbook.report_tasks(acks)

    assert len(first.changed) == 2 and second.changed == []
    assert sorted(second.unchanged) == sorted(first.changed)
    assert len(eucp.ledger.rows(incident)) == rows
    late_ack_after_removal = await fastbook.report_tasks(
        [TaskReport(task_id=acks[0].task_id, outcome=Outcome.removed)]
    )
    assert late_ack_after_removal.changed == [acks[0].task_id]
    assert (await fastbook.report_tasks(acks[:1])).unchanged == [acks[0].task_id]


async def test_a_false_positive_is_withdrawn_from_every_platform(eucp: Protocol) -> None:
    incident = await eucp.report()
    iru = eucp.incidents.as_participant(incident, COORDINATOR)
    await activated(iru, url(1), url(2))
    choosy = eucp.incidents.as_participant(incident, CHOOSY)
    await choosy.act(
        Action.report_false_positive,
        item=2,
        reason="a news report quoting the manifesto, not the manifesto",
    )
    assert (await eucp.incidents.status(incident)).crisis.false_positives == [2]

    await iru.act(
        Action.withdraw_content, items=[2], reason="false positive confirmed by the EU IRU"
    )

    async def withdrawn_everywhere() -> bool:
        status = await eucp.incidents.status(incident)
        expected = {TaskState.assigned: 1, TaskState.withdrawn: 1}
        return all(status.platforms[p].by_state == expected for p in PLATFORMS)

    await eventually(withdrawn_everywhere)
    withdrawn = [
        r.decision
        for r in eucp.ledger.rows(incident)
        if r.decision.kind is DecisionKind.task_withdrawn
    ]
    assert sorted(d.inputs["task_id"] for d in withdrawn) == [
        f"{p}-000002" for p in sorted(PLATFORMS)
    ]
    assert all(d.actor == COORDINATOR for d in withdrawn)


async def test_re_escalation_returns_to_the_takedown(eucp: Protocol) -> None:
    incident = await eucp.report()
    iru = eucp.incidents.as_participant(incident, COORDINATOR)
    await activated(iru, url(1))
    await iru.act(Action.de_escalate, reason="re-uploads fell")
    answer = await iru.act(Action.re_escalate, reason="a new edit of the video is spreading")
    assert answer.phase == "active"
    added = await iru.act(Action.add_content, identifiers=[url(2)])
    assert added.accepted_items == [2]

    async def everywhere() -> bool:
        status = await eucp.incidents.status(incident)
        return all(s.tasks == 2 for s in status.platforms.values())

    await eventually(everywhere)
    status = await eucp.incidents.status(incident)
    assert [p.phase for p in status.crisis.phases] == [
        "reported",
        "assessing",
        "active",
        "de_escalating",
        "active",
    ]
    assert all(s.tasks == 2 for s in status.platforms.values())

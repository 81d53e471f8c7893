"""Every kind of bad input is refused with the field and the rule, and changes nothing:
the status is the same and the history holds no trace of the refused Update."""

from __future__ import annotations

from collections.abc import Awaitable

import pytest
from pydantic import ValidationError
from temporalio.client import WorkflowUpdateFailedError

from eucp.protocol.actions import Action
from eucp.protocol.commands import AddContent
from eucp.protocol.participants import Actor, ParticipantKind
from eucp.protocol.refusal import Refusal
from eucp.protocol.tasks import CannotComplyReason, Outcome, TaskReport
from tests.conftest import CHOOSY, COORDINATOR, FASTBOOK, MEMBER_STATE, SLOWTUBE, Protocol
from tests.protocol_steps import (
    ALL_MET,
    ORDER_DETAILS,
    VIDEO,
    activated,
    holds,
    update_events,
    url,
)
from workflows.crisis import CrisisWorkflow


async def test_coordinator_decisions_out_of_turn_or_role_are_refused(eucp: Protocol) -> None:
    incident = await eucp.report()
    handle = eucp.incidents.handle(incident)
    iru = eucp.incidents.as_participant(incident, COORDINATOR)
    accepted_before = await update_events(handle)

    async def refused(attempt: Awaitable[object]) -> Refusal:
        with pytest.raises(Refusal) as refusal:
            await attempt
        return refusal.value

    assert (
        await refused(iru.act(Action.activate, reason="too early: not assessed"))
    ).field == "phase"
    await iru.act(Action.assess, assessment=ALL_MET)
    before = await eucp.incidents.status(incident)
    assert (await refused(iru.act(Action.decline, reason=None))).field == "reason"
    platform = eucp.incidents.as_participant(incident, FASTBOOK)
    assert (
        await refused(platform.act(Action.activate, reason="platforms may not"))
    ).field == "actor.kind"
    stranger = Actor(id="mallory", kind=ParticipantKind.coordinator)
    stranger_session = eucp.incidents.as_participant(incident, stranger)
    assert (
        await refused(stranger_session.act(Action.activate, reason="not a participant"))
    ).field == "actor.id"
    impostor = Actor(id=FASTBOOK.id, kind=ParticipantKind.coordinator)
    refusal = await refused(
        eucp.incidents.as_participant(incident, impostor).act(Action.decline, reason="me")
    )
    assert refusal.field == "actor.kind"
    assert "registered as platform" in refusal.rule

    after = await eucp.incidents.status(incident)
    assert after.crisis == before.crisis
    assert await update_events(handle) == accepted_before + 1  # the assessment alone


async def test_a_malformed_identifier_never_reaches_the_workflow(eucp: Protocol) -> None:
    incident = await eucp.report()
    iru = eucp.incidents.as_participant(incident, COORDINATOR)
    await activated(iru, VIDEO)
    handle = eucp.incidents.handle(incident)
    accepted = await update_events(handle)
    before = await eucp.incidents.status(incident)

    bad = {
        "actor": COORDINATOR.model_dump(mode="json"),
        "identifiers": [{"kind": "hash", "algorithm": "md5", "value": "not-hex"}],
    }
    with pytest.raises(ValidationError) as invalid:  # the edge names the field and the reason
        AddContent.model_validate(bad)
    assert "identifiers.0.hash.value" in str(invalid.value)
    assert "must be hexadecimal" in str(invalid.value)
    # a caller that skips the edge is refused by the workflow before anything is accepted
    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await handle.execute_update(CrisisWorkflow.add_content, bad)  # type: ignore[arg-type]
    assert "decoding arguments" in str(failed.value.cause)

    after = await eucp.incidents.status(incident)
    assert after.crisis.items == before.crisis.items
    assert await update_events(handle) == accepted


async def test_platforms_report_on_their_own_known_tasks_only(eucp: Protocol) -> None:
    incident = await eucp.report()
    await activated(eucp.incidents.as_participant(incident, COORDINATOR), VIDEO, url(1))
    fastbook = eucp.incidents.as_participant(incident, FASTBOOK)
    [mine, _] = (await fastbook.my_tasks()).tasks
    slowtube_task = (await eucp.incidents.tasks(incident, SLOWTUBE.id)).tasks[0]
    child = eucp.incidents.platform_handle(incident, SLOWTUBE.id)
    accepted = await update_events(child)

    with pytest.raises(Refusal) as refused:  # platform A on platform B's task
        await fastbook.report_tasks(
            [TaskReport(task_id=slowtube_task.task_id, outcome=Outcome.removed)],
            platform_id=SLOWTUBE.id,
        )
    assert refused.value.field == "actor"
    with pytest.raises(Refusal) as refused:
        await fastbook.report_tasks(
            [TaskReport(task_id="fastbook-999999", outcome=Outcome.removed)]
        )
    assert refused.value.field == "reports[0].task_id"
    with pytest.raises(Refusal) as refused:  # a batch with nothing that applies is refused
        await fastbook.report_tasks(
            [
                TaskReport(task_id=mine.task_id, outcome=Outcome.resumed),
                TaskReport(task_id=slowtube_task.task_id, outcome=Outcome.removed),
            ]
        )
    assert refused.value.field == "reports[0].outcome"

    assert await update_events(child) == accepted
    page = await fastbook.my_tasks()
    assert {t.state for t in page.tasks} == {"assigned"}

    # in a mixed batch the good reports apply and each bad one is refused with its rule
    answer = await fastbook.report_tasks(
        [
            TaskReport(task_id=mine.task_id, outcome=Outcome.acknowledged),
            TaskReport(task_id=mine.task_id, outcome=Outcome.removed),
            TaskReport(task_id=slowtube_task.task_id, outcome=Outcome.removed),
        ]
    )
    assert answer.changed == [mine.task_id]
    assert answer.refused == {
        mine.task_id: f"task_id: {mine.task_id} appears twice; send one report per task",
        slowtube_task.task_id: f"task_id: no task {slowtube_task.task_id!r} for fastbook",
    }
    states = {t.task_id: t.state for t in (await fastbook.my_tasks()).tasks}
    assert states[mine.task_id] == "acknowledged"


async def test_a_removal_order_cannot_be_declined(eucp: Protocol) -> None:
    incident = await eucp.report()
    iru = eucp.incidents.as_participant(incident, COORDINATOR)
    await iru.act(Action.assess, assessment=ALL_MET)
    await iru.act(Action.activate, reason="criteria met", platforms=[CHOOSY.id])
    authority = eucp.incidents.as_participant(incident, MEMBER_STATE)
    await authority.act(Action.issue_order, identifiers=[url(7)], order=ORDER_DETAILS)
    choosy = eucp.incidents.as_participant(incident, CHOOSY)
    await holds(choosy, 1)  # the order's addressee, and no one else
    [task] = (await choosy.my_tasks()).tasks
    with pytest.raises(Refusal, match="cannot be declined"):
        await choosy.report_tasks(
            [TaskReport(task_id=task.task_id, outcome=Outcome.declined, reason="we disagree")]
        )
    answer = await choosy.report_tasks(
        [
            TaskReport(
                task_id=task.task_id,
                outcome=Outcome.cannot_comply,
                cannot_comply=CannotComplyReason.manifest_error,
                reason="the URL in the order does not exist on our service",
            )
        ]
    )
    assert answer.changed == [task.task_id]


async def test_a_member_state_may_not_steer_the_crisis(eucp: Protocol) -> None:
    incident = await eucp.report()
    with pytest.raises(Refusal, match="may be taken by coordinator"):
        await eucp.incidents.as_participant(incident, MEMBER_STATE).act(
            Action.assess, assessment=ALL_MET
        )

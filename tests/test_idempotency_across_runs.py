"""An Idempotency-Key gives one effect and the same answer, also when the retry reaches the
next run (issue 15): Temporal dedupes Update ids within one run only, so the crisis keeps its
answers by request id in the state it continues as new with, and so does a platform's task
workflow for its bulk reports. The server here suggests
continue-as-new after 60 events, so a few actions cross it."""

from __future__ import annotations

from eucp.protocol.actions import Action
from eucp.protocol.decisions import DecisionKind
from eucp.protocol.phases import Phase
from eucp.protocol.tasks import Outcome, TaskReport
from eucp.service.incidents import Participation
from tests.conftest import COORDINATOR, FASTBOOK, Protocol
from tests.protocol_steps import activated, eventually, url
from tests.test_continue_as_new import (  # noqa: F401 (fixtures)
    eucp_small_histories,
    low_threshold_env,
    runs_of,
)
from workflows.platform import platform_workflow_id


async def a_new_run(eucp: Protocol, iru: Participation, incident: str, wave: int) -> None:
    """Adds content until the crisis has continued as new once more."""
    before = await runs_of(eucp.env, incident)
    n = 0

    async def next_run() -> bool:
        nonlocal n
        n += 1
        await iru.act(Action.add_content, identifiers=[url(wave * 1000 + n)])
        return await runs_of(eucp.env, incident) > before

    await eventually(next_run, within=60)


async def test_an_add_content_and_a_de_escalation_retried_after_continue_as_new_change_nothing(
    eucp_small_histories: Protocol,  # noqa: F811 (the fixture imported above)
) -> None:
    eucp = eucp_small_histories
    incident = await eucp.report()
    iru = eucp.incidents.as_participant(incident, COORDINATOR)
    await activated(iru, url(1))

    def keyed(key: str) -> Participation:  # the API names the Update after the caller's key
        return eucp.incidents.as_participant(incident, COORDINATOR, f"{COORDINATOR.id}:{key}")

    first = await keyed("add-1").act(Action.add_content, identifiers=[url(2), url(3)])
    await a_new_run(eucp, iru, incident, 1)
    again = await keyed("add-1").act(Action.add_content, identifiers=[url(2), url(3)])
    assert again == first  # the same answer: the same decision, the same items
    added = [
        row.decision
        for row in eucp.ledger.rows(incident)
        if row.decision.decision_id in first.decisions
    ]
    assert len(added) == 1 and added[0].kind is DecisionKind.content_added

    calm = await keyed("calm-1").act(Action.de_escalate, reason="re-uploads fell")
    assert calm.phase is Phase.de_escalating
    await a_new_run(eucp, iru, incident, 2)
    # the retry is not refused as a de-escalation from de_escalating: it is the same call
    assert await keyed("calm-1").act(Action.de_escalate, reason="re-uploads fell") == calm
    kinds = [row.decision.kind for row in eucp.ledger.rows(incident)]
    assert kinds.count(DecisionKind.de_escalated) == 1


async def test_a_platforms_report_retried_after_its_workflow_continued_as_new_changes_nothing(
    eucp_small_histories: Protocol,  # noqa: F811 (the fixture imported above)
) -> None:
    eucp = eucp_small_histories
    incident = await eucp.report()
    iru = eucp.incidents.as_participant(incident, COORDINATOR)
    await activated(iru, url(1), url(2))
    keyed = eucp.incidents.as_participant(incident, FASTBOOK, f"{FASTBOOK.id}:ack-1")
    mine = [task.task_id for task in (await keyed.my_tasks()).tasks]
    acknowledged = [TaskReport(task_id=task, outcome=Outcome.acknowledged) for task in mine]

    first = await keyed.report_tasks(acknowledged)
    tasks_workflow = platform_workflow_id(incident, FASTBOOK.id)
    before = await runs_of(eucp.env, tasks_workflow)
    wave = 0

    async def next_run() -> bool:  # new content wakes the platform's workflow, which moves on
        nonlocal wave
        wave += 1
        await iru.act(Action.add_content, identifiers=[url(3000 + wave)])
        return await runs_of(eucp.env, tasks_workflow) > before

    await eventually(next_run, within=60)
    again = await keyed.report_tasks(acknowledged)
    assert again == first and sorted(first.changed) == sorted(mine), "the first answer again"
    kinds = [row.decision.kind for row in eucp.ledger.rows(incident)]
    assert kinds.count(DecisionKind.task_acknowledged) == len(mine)

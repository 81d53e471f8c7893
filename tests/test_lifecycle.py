"""A crisis from report to closed review, on a real Temporal dev server and a real ledger."""

from __future__ import annotations

from eucp.protocol.actions import Action
from eucp.protocol.decisions import DecisionKind
from eucp.protocol.incident import Criterion
from eucp.protocol.phases import Phase
from eucp.protocol.tasks import Outcome, TaskReport, TaskState
from tests.conftest import CHOOSY, COORDINATOR, FASTBOOK, PLATFORMS, SLOWTUBE, Protocol
from tests.protocol_steps import ALL_MET, MANIFESTO, VIDEO, url

COPY = url(1)


async def test_a_crisis_runs_from_report_to_closed_review(eucp: Protocol) -> None:
    incident = await eucp.report(first_identifiers=[COPY])
    iru = eucp.incidents.as_participant(incident, COORDINATOR)

    assert (await iru.act(Action.assess, assessment=ALL_MET)).phase is Phase.assessing
    activated = await iru.act(
        Action.activate, reason="all five criteria met", identifiers=[VIDEO, MANIFESTO]
    )
    assert activated.phase is Phase.active
    assert activated.accepted_items == [1, 2, 3]

    status = await eucp.incidents.status(incident)
    assert status.crisis.platforms == PLATFORMS
    assert all(s.by_state == {TaskState.assigned: 3} for s in status.platforms.values())

    fastbook = eucp.incidents.as_participant(incident, FASTBOOK)
    tasks = (await fastbook.my_tasks()).tasks
    acked = await fastbook.report_tasks(
        [TaskReport(task_id=t.task_id, outcome=Outcome.acknowledged) for t in tasks]
    )
    assert len(acked.changed) == 3
    await fastbook.report_tasks(
        [TaskReport(task_id=t.task_id, outcome=Outcome.removed) for t in tasks]
    )
    choosy = eucp.incidents.as_participant(incident, CHOOSY)
    [first, *rest] = (await choosy.my_tasks()).tasks
    await choosy.report_tasks(
        [TaskReport(task_id=first.task_id, outcome=Outcome.declined, reason="satire exemption")]
        + [TaskReport(task_id=t.task_id, outcome=Outcome.removed) for t in rest]
    )

    await iru.act(
        Action.de_escalate, reason="re-upload attempts fell for six hours", withdraw_open_tasks=True
    )
    assert (await iru.act(Action.start_review)).phase is Phase.review
    await fastbook.act(
        Action.submit_review_input, text="hash matching at upload caught 90% of copies"
    )
    closed = await iru.act(Action.close, reason="debrief held")
    assert closed.phase is Phase.closed

    result = await eucp.incidents.result(incident)
    assert [p.phase for p in result.phases] == [
        Phase.reported,
        Phase.assessing,
        Phase.active,
        Phase.de_escalating,
        Phase.review,
        Phase.closed,
    ]
    assert result.platforms[FASTBOOK.id].by_state == {TaskState.removed: 3}
    assert result.platforms[CHOOSY.id].by_state == {TaskState.declined: 1, TaskState.removed: 2}
    assert result.platforms[SLOWTUBE.id].by_state == {TaskState.withdrawn: 3}

    chain = eucp.ledger.verify(incident)
    assert chain.ok, chain.problem
    report = eucp.settings.reports_dir / incident
    assert sorted(p.name for p in report.iterdir()) == ["report.html", "report.json", "report.md"]
    assert "hash matching at upload" in (report / "report.md").read_text()  # the review input
    kinds = [r.decision.kind for r in eucp.ledger.rows(incident)]
    assert kinds[:3] == [DecisionKind.reported, DecisionKind.assessed, DecisionKind.activated]
    assert kinds.count(DecisionKind.task_removed) == 5
    assert kinds.count(DecisionKind.task_declined) == 1
    assert kinds.count(DecisionKind.task_withdrawn) == 3
    assert kinds.count(DecisionKind.closed) == 1
    assert kinds.index(DecisionKind.de_escalated) < kinds.index(DecisionKind.task_withdrawn)


async def test_a_crisis_that_is_not_activated_closes_with_its_reason(eucp: Protocol) -> None:
    incident = await eucp.report()
    iru = eucp.incidents.as_participant(incident, COORDINATOR)
    await iru.act(
        Action.assess,
        assessment=ALL_MET.model_copy(update={"multi_platform_virality": Criterion()}),
    )
    answer = await iru.act(
        Action.decline, reason="no livestream, low virality: hashes shared under normal procedure"
    )
    assert answer.phase is Phase.not_activated

    result = await eucp.incidents.result(incident)
    assert result.phase is Phase.not_activated
    [*_, last] = eucp.ledger.rows(incident)
    assert last.decision.kind is DecisionKind.not_activated
    assert last.decision.reason is not None and "low virality" in last.decision.reason

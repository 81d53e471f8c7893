"""The review deadline and the SLA ladder over time (issue 15, part 6).

A crisis in review closes itself when `review_within` has run from the start of the review,
with eucp (the system) as the actor and not a minute before: on the time-skipping server, with
the protocol's real seven days. And a platform's escalation ladder keeps climbing when its
workflow continues as new between two rungs: on a dev server that suggests continue-as-new
after a few events, with clocks of seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from eucp.protocol.actions import Action
from eucp.protocol.clocks import SlaSettings
from eucp.protocol.decisions import Decision, DecisionKind
from eucp.protocol.participants import SYSTEM
from eucp.protocol.phases import Phase
from eucp.protocol.tasks import Outcome, TaskReport, TaskState, task_id
from eucp.runtime.ledger import Ledger
from eucp.runtime.settings import Settings
from tests.conftest import COORDINATOR, FASTBOOK, SLOWTUBE, Protocol, protocol_on, start_dev_env
from tests.protocol_steps import ALL_MET, activated, eventually, holds, url
from workflows.platform import platform_workflow_id

REVIEW_WITHIN = SlaSettings().review_within  # seven days


def decisions_of(eucp: Protocol, incident: str, kind: DecisionKind) -> list[Decision]:
    return [r.decision for r in eucp.ledger.rows(incident) if r.decision.kind is kind]


async def phase_of(eucp: Protocol, incident: str) -> Phase:
    return (await eucp.incidents.status(incident)).crisis.phase


async def test_a_review_closes_itself_at_its_deadline_with_the_system_as_actor(
    eucp_skipping: Protocol,
) -> None:
    eucp = eucp_skipping
    incident = await eucp.report()
    iru = eucp.incidents.as_participant(incident, COORDINATOR)
    await activated(iru, url(1))
    await iru.act(Action.de_escalate, reason="no more re-uploads", withdraw_open_tasks=True)
    assert (await iru.act(Action.start_review)).phase is Phase.review
    [started] = decisions_of(eucp, incident, DecisionKind.review_started)
    review_due = datetime.fromisoformat(started.inputs["review_due"])
    assert review_due - started.at == REVIEW_WITHIN

    # a minute before the deadline the review is still open: input is still taken
    await eucp.env.sleep(REVIEW_WITHIN - timedelta(minutes=1))
    assert await phase_of(eucp, incident) is Phase.review
    fastbook = eucp.incidents.as_participant(incident, FASTBOOK)
    await fastbook.act(Action.submit_review_input, text="hash sharing caught most re-uploads")
    assert decisions_of(eucp, incident, DecisionKind.closed) == []

    # the deadline passes: eucp closes the review itself
    await eucp.env.sleep(timedelta(minutes=2))
    result = await eucp.incidents.result(incident)
    assert result.phase is Phase.closed
    assert [p.phase for p in result.phases][-2:] == [Phase.review, Phase.closed]

    [closed] = decisions_of(eucp, incident, DecisionKind.closed)
    assert closed.actor == SYSTEM
    assert closed.reason == "review deadline passed"
    assert review_due <= closed.at < review_due + timedelta(minutes=1)
    kinds = [r.decision.kind for r in eucp.ledger.rows(incident)]
    assert kinds.index(DecisionKind.review_input) < kinds.index(DecisionKind.closed)
    chain = eucp.ledger.verify(incident)
    assert chain.ok, chain.problem


# ---- the ladder across a continue-as-new -----------------------------------------------------

THRESHOLD = 60  # events before the server suggests continue-as-new (4,096 by default)
ACKNOWLEDGE_WITHIN = timedelta(seconds=6)
ESCALATE_AFTER = timedelta(seconds=3)
SECONDS = SlaSettings(acknowledge_within=ACKNOWLEDGE_WITHIN, escalate_after=ESCALATE_AFTER)
ITEMS = 13  # one silent task, and twelve answered one by one to fill the platform's history
LADDER = [DecisionKind.sla_breached, DecisionKind.sla_backup_told, DecisionKind.sla_escalated]


@pytest.fixture
async def low_threshold_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await start_dev_env(
        "--dynamic-config-value", f"limit.historyCount.suggestContinueAsNew={THRESHOLD}"
    )
    yield env
    await env.shutdown()


@pytest.fixture
async def eucp_small_histories(
    low_threshold_env: WorkflowEnvironment, settings: Settings, ledger: Ledger
) -> AsyncIterator[Protocol]:
    async for p in protocol_on(low_threshold_env, settings, ledger):
        yield p


async def test_a_task_missed_before_a_continue_as_new_climbs_its_ladder_after_it(
    eucp_small_histories: Protocol,
) -> None:
    """Slowtube answers twelve of its thirteen tasks, one Update each, and leaves the first
    unacknowledged. Reminded at the deadline, its run (history now past the threshold) continues
    as new; the new run tells the backup contact and then escalates to the coordinators, each
    rung recorded once."""
    eucp = eucp_small_histories
    incident = await eucp.report(sla=SECONDS)
    iru = eucp.incidents.as_participant(incident, COORDINATOR)
    await iru.act(Action.assess, assessment=ALL_MET)
    await iru.act(
        Action.activate,
        reason="all five criteria met",
        platforms=[SLOWTUBE.id],
        identifiers=[url(n) for n in range(1, ITEMS + 1)],
    )
    slowtube = eucp.incidents.as_participant(incident, SLOWTUBE)
    await holds(slowtube, ITEMS)
    silent = task_id(SLOWTUBE.id, 1)
    [assigned_at] = {t.assigned_at for t in (await slowtube.my_tasks()).tasks}
    for n in range(2, ITEMS + 1):
        await slowtube.report_tasks(
            [TaskReport(task_id=task_id(SLOWTUBE.id, n), outcome=Outcome.removed)]
        )

    # the history is past the threshold before the deadline: the run moves on at its next wake
    assert datetime.now(UTC) < assigned_at + ACKNOWLEDGE_WITHIN, "too slow to fill the history"

    def ladder() -> list[Decision]:
        return [
            r.decision
            for r in eucp.ledger.rows(incident)
            if r.decision.inputs.get("task_id") == silent
        ]

    async def escalated() -> bool:
        return len(ladder()) >= len(LADDER)

    await eventually(escalated, within=ACKNOWLEDGE_WITHIN.total_seconds() + 15)
    await asyncio.sleep(ESCALATE_AFTER.total_seconds())  # nothing climbs twice, or further
    reminded, backup_told, escalation = rungs = ladder()
    assert [d.kind for d in rungs] == LADDER
    assert all(d.actor == SYSTEM for d in rungs)
    assert all(d.inputs["clock"] == "acknowledge" for d in rungs)
    # each rung on its time, counted from the missed deadline, none early
    [due] = {datetime.fromisoformat(d.inputs["due"]) for d in rungs}
    assert due == assigned_at + ACKNOWLEDGE_WITHIN
    assert reminded.at >= due
    assert backup_told.at >= due + ESCALATE_AFTER
    assert escalation.at >= due + 2 * ESCALATE_AFTER

    # the run that reminded continued as new before the backup contact was told
    runs = [
        run
        async for run in eucp.env.client.list_workflows(
            f'WorkflowId = "{platform_workflow_id(incident, SLOWTUBE.id)}"'
        )
    ]
    moved_on = sorted(
        run.close_time
        for run in runs
        if run.status is WorkflowExecutionStatus.CONTINUED_AS_NEW and run.close_time
    )
    assert moved_on, "the platform's workflow never continued as new"
    assert any(reminded.at <= at <= backup_told.at for at in moved_on), (moved_on, rungs)

    summary = (await eucp.incidents.status(incident)).platforms[SLOWTUBE.id]
    assert (summary.breaches, summary.escalations) == (1, 1)
    assert summary.by_state == {TaskState.assigned: 1, TaskState.removed: ITEMS - 1}
    chain = eucp.ledger.verify(incident)
    assert chain.ok, chain.problem

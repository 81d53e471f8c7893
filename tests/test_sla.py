"""Durable SLA clocks with the real durations (15 and 60 minutes), on the time-skipping server."""

from __future__ import annotations

from datetime import timedelta

from eucp.protocol.actions import Action
from eucp.protocol.clocks import SlaSettings
from eucp.protocol.decisions import Decision, DecisionKind
from eucp.protocol.tasks import CannotComplyReason, Outcome, TaskReport
from eucp.service.incidents import Participation
from tests.conftest import CHOOSY, COORDINATOR, FASTBOOK, MEMBER_STATE, SLOWTUBE, Protocol
from tests.protocol_steps import ALL_MET, ORDER_DETAILS, activated, assigned, holds, url

REAL = SlaSettings()  # acknowledge 15 min, act 60 min, escalate 15 min after the reminder


def kinds_for(protocol: Protocol, incident: str, task_id: str) -> list[DecisionKind]:
    return [
        r.decision.kind
        for r in protocol.ledger.rows(incident)
        if r.decision.inputs.get("task_id") == task_id
    ]


def misses_of(protocol: Protocol, incident: str, task_id: str) -> list[Decision]:
    """The task's `sla_breached` decisions: each deadline it missed, when it missed it."""
    return [
        r.decision
        for r in protocol.ledger.rows(incident)
        if r.decision.kind is DecisionKind.sla_breached
        and r.decision.inputs.get("task_id") == task_id
    ]


async def test_a_silent_platform_climbs_the_escalation_ladder(eucp_skipping: Protocol) -> None:
    """Reminded at the deadline, its backup contact told 15 minutes later, the coordinators
    15 minutes after that."""
    eucp = eucp_skipping
    incident = await eucp.report(sla=REAL)
    await activated(eucp.incidents.as_participant(incident, COORDINATOR), url(1))
    fastbook = eucp.incidents.as_participant(incident, FASTBOOK)
    [task] = (await fastbook.my_tasks()).tasks
    await fastbook.report_tasks([TaskReport(task_id=task.task_id, outcome=Outcome.removed)])

    async def slowtube() -> tuple[int, int]:
        summary = (await eucp.incidents.status(incident)).platforms[SLOWTUBE.id]
        return summary.breaches, summary.escalations

    await eucp.env.sleep(timedelta(minutes=16))
    assert await slowtube() == (1, 0)  # missed the acknowledgement: reminded
    await eucp.env.sleep(timedelta(minutes=15))
    assert await slowtube() == (1, 0)  # its backup contact is told
    await eucp.env.sleep(timedelta(minutes=15))
    assert await slowtube() == (1, 1)  # still silent: escalated to the coordinators
    await eucp.env.sleep(timedelta(minutes=15))  # past the hour: the act clock too
    status = await eucp.incidents.status(incident)
    assert status.platforms[SLOWTUBE.id].open_breaches == ["slowtube-000001"]
    assert status.platforms[SLOWTUBE.id].breaches == 2
    assert status.platforms[FASTBOOK.id].breaches == 0

    assert kinds_for(eucp, incident, "slowtube-000001") == [
        DecisionKind.sla_breached,  # acknowledge, at 15 min
        DecisionKind.sla_backup_told,  # acknowledge, at 30 min
        DecisionKind.sla_escalated,  # acknowledge, at 45 min
        DecisionKind.sla_breached,  # act, at 60 min
    ]
    assert kinds_for(eucp, incident, task.task_id) == [DecisionKind.task_removed]
    # voluntary referrals: both misses were the protocol's targets, neither a legal deadline
    slowtube_figures = status.platforms[SLOWTUBE.id]
    assert (slowtube_figures.legal_deadlines_missed, slowtube_figures.targets_missed) == (0, 2)
    assert slowtube_figures.open_targets == ["slowtube-000001"]
    assert slowtube_figures.open_legal_deadlines == []


async def _one_order_task(eucp: Protocol) -> tuple[str, Participation, str]:
    incident = await eucp.report(sla=REAL)
    iru = eucp.incidents.as_participant(incident, COORDINATOR)
    await iru.act(Action.assess, assessment=ALL_MET)
    await iru.act(Action.activate, reason="criteria met", platforms=[CHOOSY.id])
    authority = eucp.incidents.as_participant(incident, MEMBER_STATE)
    await authority.act(Action.issue_order, identifiers=[url(9)], order=ORDER_DETAILS)
    choosy = eucp.incidents.as_participant(incident, CHOOSY)
    await holds(choosy, 1)
    [task] = (await choosy.my_tasks()).tasks
    return incident, choosy, task.task_id


async def test_the_removal_order_hour_stops_while_the_platform_cannot_comply_then_restarts(
    eucp_skipping: Protocol,
) -> None:
    eucp = eucp_skipping
    incident, choosy, task_id = await _one_order_task(eucp)
    await choosy.report_tasks([TaskReport(task_id=task_id, outcome=Outcome.acknowledged)])
    await eucp.env.sleep(timedelta(minutes=10))
    await choosy.report_tasks(
        [
            TaskReport(
                task_id=task_id,
                outcome=Outcome.cannot_comply,
                cannot_comply=CannotComplyReason.technical_impossibility,
                reason="our takedown service is down",
            )
        ]
    )
    await eucp.env.sleep(timedelta(minutes=70))  # 80 minutes in, but the clock is paused at 10
    assert (await eucp.incidents.status(incident)).platforms[CHOOSY.id].breaches == 0

    # the reason ceased: the hour starts to run again, in full (TCO Art. 3(7))
    await choosy.report_tasks([TaskReport(task_id=task_id, outcome=Outcome.resumed)])
    await eucp.env.sleep(timedelta(minutes=55))
    assert (await eucp.incidents.status(incident)).platforms[CHOOSY.id].breaches == 0
    await eucp.env.sleep(timedelta(minutes=10))  # 65 minutes since it resumed
    choosy = (await eucp.incidents.status(incident)).platforms[CHOOSY.id]
    assert (choosy.breaches, choosy.legal_deadlines_missed, choosy.targets_missed) == (1, 1, 0)
    assert kinds_for(eucp, incident, task_id) == [
        DecisionKind.task_acknowledged,
        DecisionKind.task_cannot_comply,
        DecisionKind.task_resumed,
        DecisionKind.sla_breached,
    ]


async def test_a_removal_orders_missed_hour_is_a_legal_deadline_a_referrals_a_target(
    eucp_skipping: Protocol,
) -> None:
    """The one hour is the law for a removal order only (TCO Art. 3(3)): missing it is recorded
    as a legal deadline missed. A voluntary referral's act-within, and any acknowledge-within
    (a removal order's too), are the protocol's targets: missing one is a target missed."""
    eucp = eucp_skipping
    incident, choosy, order = await _one_order_task(eucp)
    iru = eucp.incidents.as_participant(incident, COORDINATOR)
    await iru.act(Action.add_content, identifiers=[url(10)])  # voluntary: the default basis
    await assigned(iru)
    referral = "choosy-000002"
    await choosy.report_tasks([TaskReport(task_id=referral, outcome=Outcome.acknowledged)])

    await eucp.env.sleep(timedelta(minutes=16))  # the order went unacknowledged: a target
    [ack] = misses_of(eucp, incident, order)
    assert (ack.inputs["clock"], ack.inputs["deadline"]) == ("acknowledge", "target")
    assert ack.reason == "acknowledge target missed"

    await eucp.env.sleep(timedelta(minutes=45))  # 61 minutes: both hours have run out
    [_, hour] = misses_of(eucp, incident, order)
    assert (hour.inputs["clock"], hour.inputs["deadline"]) == ("act", "legal")
    assert hour.reason == "legal deadline missed: the removal order's hour (TCO Art. 3(3))"
    [act] = misses_of(eucp, incident, referral)
    assert (act.inputs["clock"], act.inputs["deadline"]) == ("act", "target")
    assert act.reason == "act target missed"

    figures = (await eucp.incidents.status(incident)).platforms[CHOOSY.id]
    assert (figures.breaches, figures.legal_deadlines_missed, figures.targets_missed) == (3, 1, 2)
    assert figures.open_legal_deadlines == [order]
    assert figures.open_targets == [order, referral]  # the order is not acknowledged yet either
    assert figures.open_breaches == [order, referral]


async def test_an_overdue_activation_decision_is_escalated(eucp_skipping: Protocol) -> None:
    eucp = eucp_skipping
    incident = await eucp.report(sla=REAL)
    await eucp.env.sleep(timedelta(minutes=61))
    assert (await eucp.incidents.status(incident)).crisis.assessment_overdue
    await eucp.env.sleep(timedelta(minutes=15))
    kinds = [r.decision.kind for r in eucp.ledger.rows(incident)]
    assert kinds == [
        DecisionKind.reported,
        DecisionKind.assessment_reminder,
        DecisionKind.assessment_escalated,
    ]

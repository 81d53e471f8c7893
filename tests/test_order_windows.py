"""The law's windows at their real lengths, on the time-skipping server (issue 12): the host
Member State's 72 hours from the copy (TCO Art. 4(3)), the addressee's 48 hours to ask for
scrutiny and the authority's 72 hours to decide on a request (Art. 4(4)), and a removal
order's hour that starts again, in full, when the issuer's clarification arrives (Art. 3(8)).

The French authority orders choosy, established in Ireland, to remove content; Ireland's
authority takes part. The scenarios over HTTP are in tests/test_orders.py.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from eucp.protocol.actions import Action
from eucp.protocol.clocks import SlaSettings
from eucp.protocol.decisions import DecisionKind
from eucp.protocol.orders import ScrutinyOutcome, ScrutinyStage
from eucp.protocol.refusal import Refusal
from eucp.protocol.tasks import CannotComplyReason, Outcome, TaskReport
from eucp.service.incidents import Participation
from tests.conftest import CHOOSY, COORDINATOR, HOST_AUTHORITY, MEMBER_STATE, Protocol
from tests.protocol_steps import ALL_MET, ORDER_DETAILS, holds, url

MINUTE, HOUR = timedelta(minutes=1), timedelta(hours=1)


class Orders:
    """One crisis on the time-skipping server where the French authority orders choosy."""

    def __init__(self, eucp: Protocol, incident: str) -> None:
        self.eucp = eucp
        self.incident = incident
        self.authority = eucp.incidents.as_participant(incident, MEMBER_STATE)
        self.host = eucp.incidents.as_participant(incident, HOST_AUTHORITY)
        self.choosy = eucp.incidents.as_participant(incident, CHOOSY)

    async def issue(self, reference: str, item: int) -> None:
        order = ORDER_DETAILS.model_copy(update={"reference": reference})
        await self.authority.act(Action.issue_order, identifiers=[url(item)], order=order)

    async def stage(self, reference: str) -> ScrutinyStage:
        orders = await self.eucp.incidents.orders(self.incident, COORDINATOR)
        return next(o.stage for o in orders if o.reference == reference)

    def recorded(self, kind: DecisionKind) -> list[str]:
        """The references of the orders a decision of `kind` was recorded for."""
        return [
            str(row.decision.inputs.get("order"))
            for row in self.eucp.ledger.rows(self.incident)
            if row.decision.kind is kind
        ]

    async def ask(self, reference: str) -> None:
        await self.choosy.act(
            Action.request_scrutiny, reference=reference, reason="news reporting, Art. 1(3)"
        )

    async def decide(self, reference: str, outcome: ScrutinyOutcome) -> None:
        await self.host.act(
            Action.decide_scrutiny, reference=reference, outcome=outcome, reason="reasoned"
        )


async def orders_in(eucp: Protocol, sla: SlaSettings | None = None) -> Orders:
    incident = await eucp.report(sla=sla)
    iru = eucp.incidents.as_participant(incident, COORDINATOR)
    await iru.act(Action.assess, assessment=ALL_MET)
    await iru.act(Action.activate, reason="criteria met", platforms=[CHOOSY.id])
    return Orders(eucp, incident)


async def test_the_host_state_may_scrutinise_for_72_hours_from_the_copy(
    eucp_skipping: Protocol,
) -> None:
    crisis = await orders_in(eucp_skipping)
    await crisis.issue("FR-72H", 1)
    await eucp_skipping.env.sleep(72 * HOUR - MINUTE)
    assert await crisis.stage("FR-72H") is ScrutinyStage.open
    assert crisis.recorded(DecisionKind.scrutiny_window_closed) == []
    await eucp_skipping.env.sleep(2 * MINUTE)
    assert crisis.recorded(DecisionKind.scrutiny_window_closed) == ["FR-72H"]
    assert await crisis.stage("FR-72H") is ScrutinyStage.stands
    with pytest.raises(Refusal) as late:
        await crisis.decide("FR-72H", ScrutinyOutcome.infringes)
    assert "72 hours to scrutinise" in late.value.rule


async def test_the_addressee_asks_within_48_hours_and_the_host_state_decides_within_72(
    eucp_skipping: Protocol,
) -> None:
    crisis = await orders_in(eucp_skipping)
    await crisis.issue("FR-ASKED", 1)
    await crisis.issue("FR-LATE", 2)
    await holds(crisis.choosy, 2)
    await eucp_skipping.env.sleep(48 * HOUR - MINUTE)
    await crisis.ask("FR-ASKED")  # in time
    await eucp_skipping.env.sleep(2 * MINUTE)
    with pytest.raises(Refusal) as late:
        await crisis.ask("FR-LATE")
    assert "48 hours to ask for scrutiny" in late.value.rule

    # the copy's 72 hours end first; the request keeps the decision open for its own 72
    await eucp_skipping.env.sleep(24 * HOUR)
    assert crisis.recorded(DecisionKind.scrutiny_window_closed) == ["FR-ASKED", "FR-LATE"]
    assert await crisis.stage("FR-ASKED") is ScrutinyStage.requested
    await eucp_skipping.env.sleep(72 * HOUR - 24 * HOUR - 4 * MINUTE)
    assert crisis.recorded(DecisionKind.scrutiny_overdue) == []
    await eucp_skipping.env.sleep(3 * MINUTE)  # 72 hours and a minute since the request
    assert crisis.recorded(DecisionKind.scrutiny_overdue) == ["FR-ASKED"]
    assert await crisis.stage("FR-ASKED") is ScrutinyStage.overdue
    await crisis.decide("FR-ASKED", ScrutinyOutcome.upheld)  # late, but owed to the addressee
    assert await crisis.stage("FR-ASKED") is ScrutinyStage.upheld


async def test_the_hour_starts_again_in_full_when_the_clarification_arrives(
    eucp_skipping: Protocol,
) -> None:
    eucp = eucp_skipping
    crisis = await orders_in(eucp, SlaSettings())  # the hour; a pause alerts after 4 hours
    await crisis.issue("FR-CLARIFY", 1)
    await holds(crisis.choosy, 1)
    [task] = (await crisis.choosy.my_tasks()).tasks
    await eucp.env.sleep(10 * MINUTE)
    await cannot_comply(crisis.choosy, task.task_id)
    await eucp.env.sleep(5 * HOUR)  # paused: no hour runs; the pause is alerted once
    alerted = [
        row.decision
        for row in eucp.ledger.rows(crisis.incident)
        if row.decision.kind is DecisionKind.pause_alerted
    ]
    assert len(alerted) == 1
    assert alerted[0].at - task.assigned_at >= 10 * MINUTE + 4 * HOUR
    summary = (await eucp.incidents.status(crisis.incident)).platforms[CHOOSY.id]
    assert summary.legal_deadlines_missed == 0

    await crisis.authority.act(
        Action.clarify_order, reference="FR-CLARIFY", reason="the video posted at 01:52 UTC"
    )
    await eucp.env.sleep(59 * MINUTE)
    summary = (await eucp.incidents.status(crisis.incident)).platforms[CHOOSY.id]
    assert summary.legal_deadlines_missed == 0
    await eucp.env.sleep(2 * MINUTE)  # 61 minutes since the clarification
    summary = (await eucp.incidents.status(crisis.incident)).platforms[CHOOSY.id]
    assert (summary.legal_deadlines_missed, summary.open_legal_deadlines) == (1, [task.task_id])


async def cannot_comply(platform: Participation, task_id: str) -> None:
    """The platform asks for clarification: the order is manifestly wrong (Annex III)."""
    await platform.report_tasks(
        [
            TaskReport(
                task_id=task_id,
                outcome=Outcome.cannot_comply,
                cannot_comply=CannotComplyReason.manifest_error,
                reason="the order names a URL on another service",
            )
        ]
    )

"""Crisis governance (issue 13): an activation rests on evidence, lasts a limited time unless
renewed, and runs on clocks that only coordinators set and the ledger records.

The EU IRU coordinates; fastbook, slowtube and choosy take part. The activation's 48 hours run
at their real length on the time-skipping server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from eucp.protocol.actions import Action
from eucp.protocol.clocks import SlaSettings
from eucp.protocol.decisions import Decision, DecisionKind
from eucp.protocol.incident import Assessment, Criterion, CriterionStatus
from eucp.protocol.phases import Phase
from eucp.protocol.refusal import Refusal
from eucp.protocol.tasks import task_id
from tests.conftest import CHOOSY, COORDINATOR, FASTBOOK, Protocol, a_report
from tests.http_steps import Api, issue_tokens, serving
from tests.protocol_steps import ALL_MET, MET, eventually, holds, url

HOUR, MINUTE = timedelta(hours=1), timedelta(minutes=1)
SUSPECTED = Criterion(status=CriterionStatus.suspected, evidence="the shooter's manifesto")
NOT_VIRAL = ALL_MET.model_copy(
    update={"multi_platform_virality": Criterion(status=CriterionStatus.not_met)}
)


@pytest.fixture
async def api(eucp: Protocol) -> AsyncIterator[Api]:
    async with serving(eucp.settings, eucp.env.client) as base:
        client = Api(base, issue_tokens(eucp.settings))
        try:
            yield client
        finally:
            await client.close()


def recorded(eucp: Protocol, incident: str, kind: DecisionKind) -> list[Decision]:
    return [row.decision for row in eucp.ledger.rows(incident) if row.decision.kind is kind]


async def post(api: Api, incident: str, path: str, body: dict[str, Any]) -> Any:
    return await api.as_(COORDINATOR.id).post(f"/v1/incidents/{incident}/{path}", json=body)


# ---- decisions on evidence -------------------------------------------------------------------


async def test_a_criterion_marked_met_needs_its_evidence(eucp: Protocol, api: Api) -> None:
    incident = await eucp.report()
    bare = ALL_MET.model_copy(update={"tve_link": Criterion(status=CriterionStatus.met)})
    answer = await post(api, incident, "assessment", {"assessment": bare.model_dump(mode="json")})
    assert answer.status_code == 422
    assert answer.json()["error"]["field"] == "assessment.tve_link.evidence"
    assert recorded(eucp, incident, DecisionKind.assessed) == []  # refused: nothing changed


async def test_a_suspected_link_meets_criterion_4_and_no_other(eucp: Protocol, api: Api) -> None:
    incident = await eucp.report()
    suspected = ALL_MET.model_copy(update={"tve_link": SUSPECTED})
    answer = await post(
        api, incident, "assessment", {"assessment": suspected.model_dump(mode="json")}
    )
    assert answer.status_code == 200, answer.text
    answer = await post(api, incident, "activation", {"reason": "criteria met", "identifiers": []})
    assert answer.status_code == 200, answer.text
    wrong = ALL_MET.model_dump(mode="json")
    wrong["intimidation"] = {"status": "suspected", "evidence": "maybe"}
    answer = await post(api, await eucp.report(), "assessment", {"assessment": wrong})
    assert answer.status_code == 422 and "only tve_link" in answer.text


async def test_activation_needs_all_five_criteria_or_an_override_the_ledger_records(
    eucp: Protocol, api: Api
) -> None:
    incident = await eucp.report()
    await post(api, incident, "assessment", {"assessment": NOT_VIRAL.model_dump(mode="json")})
    refused = await post(api, incident, "activation", {"reason": "spreading"})
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["field"] == "override" and "multi_platform_virality" in error["rule"]
    override = "copies on two services already; virality expected within the hour"
    accepted = await post(
        api, incident, "activation", {"reason": "spreading", "override": override}
    )
    assert accepted.status_code == 200, accepted.text
    [activated] = recorded(eucp, incident, DecisionKind.activated)
    assert activated.inputs["override"] == override


# ---- who sets the clocks ---------------------------------------------------------------------


async def test_only_a_coordinator_sets_the_clocks_and_the_ledger_keeps_those_in_force(
    eucp: Protocol, api: Api
) -> None:
    quick = {"act_within": "P2D"}  # a platform would like days to act
    as_platform = await api.as_(FASTBOOK.id).post(
        "/v1/incidents",
        json={"report": a_report(reporter=FASTBOOK.id).model_dump(mode="json"), "sla": quick},
    )
    assert (as_platform.status_code, as_platform.json()["error"]["field"]) == (403, "sla")
    reported = await api.as_(COORDINATOR.id).post(
        "/v1/incidents",
        json={"report": a_report().model_dump(mode="json"), "sla": {"act_within": "PT30M"}},
    )
    assert reported.status_code == 201, reported.text
    incident = reported.json()["incident_id"]

    async def reported_recorded() -> bool:  # the workflow's first act, a moment after
        return bool(recorded(eucp, incident, DecisionKind.reported))

    await eventually(reported_recorded)
    [first] = recorded(eucp, incident, DecisionKind.reported)
    assert first.inputs["clocks"]["act_within"] == "PT30M"

    platform_sets = await api.as_(FASTBOOK.id).post(
        f"/v1/incidents/{incident}/clocks",
        json={"changes": {"act_within": "P2D"}, "reason": "we need time"},
    )
    assert platform_sets.status_code in (403, 404)  # not a coordinator: refused, nothing changed
    changed = await post(
        api, incident, "clocks", {"changes": {"act_within": "PT45M"}, "reason": "a quieter night"}
    )
    assert changed.status_code == 200, changed.text
    [clocks_set] = recorded(eucp, incident, DecisionKind.clocks_set)
    assert clocks_set.inputs["changes"] == {"act_within": "45 min"}
    assert clocks_set.inputs["clocks"]["act_within"] == "PT45M"
    assert clocks_set.inputs["clocks"]["acknowledge_within"] == "PT15M"  # the others in force
    unknown = await post(
        api, incident, "clocks", {"changes": {"act_whenever": "PT1M"}, "reason": "typo"}
    )
    assert unknown.status_code == 422 and "no clock 'act_whenever'" in unknown.text


async def test_new_clocks_apply_to_the_tasks_already_assigned(eucp_skipping: Protocol) -> None:
    eucp = eucp_skipping
    incident = await eucp.report(sla=SlaSettings())
    iru = eucp.incidents.as_participant(incident, COORDINATOR)
    await iru.act(Action.assess, assessment=ALL_MET)
    await iru.act(Action.activate, reason="criteria met", identifiers=[url(1)])
    choosy = eucp.incidents.as_participant(incident, CHOOSY)
    await holds(choosy, 1)
    await iru.act(
        Action.set_clocks, changes={"acknowledge_within": 5 * MINUTE}, reason="a busy night"
    )
    await eucp.env.sleep(6 * MINUTE)  # 6 minutes: past the new 5, before the old 15
    late = [d.inputs["task_id"] for d in recorded(eucp, incident, DecisionKind.sla_breached)]
    assert task_id(CHOOSY.id, 1) in late


# ---- an activation limited in time -----------------------------------------------------------


async def activated_on_the_skipping_server(eucp: Protocol) -> str:
    incident = await eucp.report(sla=SlaSettings())  # 48 hours, reminded 6 hours before
    iru = eucp.incidents.as_participant(incident, COORDINATOR)
    await iru.act(Action.assess, assessment=ALL_MET)
    await iru.act(Action.activate, reason="criteria met", identifiers=[url(1)])
    return incident


async def test_an_activation_lapses_after_48_hours_unless_renewed(eucp_skipping: Protocol) -> None:
    eucp = eucp_skipping
    incident = await activated_on_the_skipping_server(eucp)
    await eucp.env.sleep(42 * HOUR - MINUTE)
    assert recorded(eucp, incident, DecisionKind.activation_expiring) == []
    await eucp.env.sleep(2 * MINUTE)  # six hours before it lapses: the coordinators reminded
    assert len(recorded(eucp, incident, DecisionKind.activation_expiring)) == 1
    await eucp.env.sleep(6 * HOUR - 2 * MINUTE)
    assert (await eucp.incidents.status(incident)).crisis.phase is Phase.active
    await eucp.env.sleep(2 * MINUTE)  # 48 hours and a minute: lapsed, eucp de-escalates
    status = await eucp.incidents.status(incident)
    assert status.crisis.phase is Phase.de_escalating
    [lapse] = recorded(eucp, incident, DecisionKind.de_escalated)
    assert (lapse.actor.kind, lapse.inputs["lapsed"]) == ("system", True)
    assert "lapsed" in (lapse.reason or "")


async def test_a_renewed_activation_runs_another_48_hours(eucp_skipping: Protocol) -> None:
    eucp = eucp_skipping
    incident = await activated_on_the_skipping_server(eucp)
    iru = eucp.incidents.as_participant(incident, COORDINATOR)
    await eucp.env.sleep(43 * HOUR)
    await iru.act(Action.renew_activation, reason="copies still spreading on two services")
    await eucp.env.sleep(6 * HOUR)  # past the first 48 hours
    assert (await eucp.incidents.status(incident)).crisis.phase is Phase.active
    [renewed] = recorded(eucp, incident, DecisionKind.activation_renewed)
    assert renewed.inputs["expires"]
    await eucp.env.sleep(43 * HOUR)  # 48 hours after the renewal
    assert (await eucp.incidents.status(incident)).crisis.phase is Phase.de_escalating
    with pytest.raises(Refusal) as late:
        await iru.act(Action.renew_activation, reason="too late")
    assert late.value.field == "phase"


async def test_an_assessment_with_met_criteria_and_evidence_still_activates(
    eucp: Protocol,
) -> None:
    """The protocol's usual path is unchanged: all five met, each with evidence."""
    incident = await eucp.report()
    iru = eucp.incidents.as_participant(incident, COORDINATOR)
    await iru.act(Action.assess, assessment=Assessment(**dict.fromkeys(ALL_MET.criteria, MET)))
    answer = await iru.act(Action.activate, reason="criteria met")
    assert answer.phase is Phase.active

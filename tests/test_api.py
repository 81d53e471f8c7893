"""The HTTP API as participants use it: real uvicorn on loopback, real httpx, real Temporal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from eucp.protocol.participants import Contact, ParticipantKind
from eucp.runtime.registry import Registry
from eucp.runtime.tokens import TokenStore
from tests.conftest import (
    AUDITOR,
    CHOOSY,
    COORDINATOR,
    FASTBOOK,
    MEMBER_STATE,
    SLOWTUBE,
    Protocol,
    a_report,
)
from tests.http_steps import Api, issue_tokens, serving
from tests.protocol_steps import ALL_MET, eventually, url


@pytest.fixture
async def api(eucp: Protocol) -> AsyncIterator[Api]:
    async with serving(eucp.settings, eucp.env.client) as base:
        client = Api(base, issue_tokens(eucp.settings))
        yield client
        await client.close()


def report_body(**changes: Any) -> dict[str, Any]:
    return {"report": a_report(**changes).model_dump(mode="json")}


async def an_active_incident(api: Api, n: int = 2) -> str:
    iru = api.as_(COORDINATOR.id)
    reported = await iru.post("/v1/incidents", json=report_body())
    assert reported.status_code == 201, reported.text
    incident = str(reported.json()["incident_id"])
    assessed = await iru.post(
        f"/v1/incidents/{incident}/assessment", json={"assessment": ALL_MET.model_dump(mode="json")}
    )
    assert assessed.status_code == 200, assessed.text
    activated = await iru.post(
        f"/v1/incidents/{incident}/activation",
        json={
            "reason": "all five criteria met",
            "identifiers": [url(i).model_dump(mode="json") for i in range(n)],
        },
    )
    assert activated.status_code == 200, activated.text
    return incident


async def test_a_platform_acknowledges_and_removes_in_bulk(api: Api) -> None:
    incident = await an_active_incident(api, n=250)
    fastbook = api.as_(FASTBOOK.id)
    tasks = f"/v1/incidents/{incident}/tasks"

    async def held() -> bool:  # a wave of 250 reaches the platform by reference, a moment later
        return bool((await fastbook.get(tasks)).json()["total"] == 250)

    await eventually(held)
    page = (await fastbook.get(tasks, params={"limit": 1000})).json()
    ids = [t["task_id"] for t in page["tasks"]]
    for outcome in ("acknowledged", "removed"):
        answer = await fastbook.post(
            f"/v1/incidents/{incident}/tasks/reports",
            json={"reports": [{"task_id": i, "outcome": outcome} for i in ids]},
        )
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["changed"]) == 250
    view = (await fastbook.get(f"/v1/incidents/{incident}")).json()
    assert view["tasks"]["by_state"] == {"removed": 250}
    assert "platforms" not in view  # a platform sees its own figures only


async def test_without_a_valid_token_nothing_is_answered(api: Api) -> None:
    async with api.anonymous() as nobody:
        assert (await nobody.get("/v1/incidents")).status_code == 401
        forged = await nobody.get("/v1/incidents", headers={"Authorization": "Bearer eucp_nope"})
        assert forged.status_code == 401
        assert forged.json()["error"]["refusal"] == "unauthenticated"


async def test_who_may_do_what(api: Api) -> None:
    incident = await an_active_incident(api)
    base = f"/v1/incidents/{incident}"
    reason = {"reason": "because"}
    matrix: list[tuple[str, str, str, dict[str, Any], int]] = [
        # who, method, path, body, expected status
        (AUDITOR.id, "POST", "/v1/incidents", report_body(reporter=AUDITOR.id), 403),
        (AUDITOR.id, "POST", f"{base}/de-escalation", reason, 403),
        (AUDITOR.id, "GET", base, {}, 200),
        (AUDITOR.id, "GET", f"{base}/decisions", {}, 200),
        (AUDITOR.id, "GET", f"{base}/tasks?platform=fastbook", {}, 200),
        (MEMBER_STATE.id, "POST", f"{base}/de-escalation", reason, 403),
        (MEMBER_STATE.id, "GET", f"{base}/decisions", {}, 403),
        (FASTBOOK.id, "POST", f"{base}/de-escalation", reason, 403),
        (FASTBOOK.id, "GET", f"{base}/decisions", {}, 403),
        (FASTBOOK.id, "GET", f"{base}/tasks?platform=slowtube", {}, 403),
        (FASTBOOK.id, "POST", "/v1/incidents", report_body(), 403),  # reporter is eu-iru
        (
            COORDINATOR.id,
            "POST",
            f"{base}/tasks/reports",
            {"reports": [{"task_id": "fastbook-000001", "outcome": "removed"}]},
            403,
        ),
        (COORDINATOR.id, "GET", f"{base}/tasks", {}, 422),  # names no platform
        (COORDINATOR.id, "POST", f"{base}/closure", {}, 409),  # not in review yet
        (COORDINATOR.id, "POST", f"{base}/de-escalation", {}, 422),  # no reason
        (COORDINATOR.id, "POST", "/v1/incidents/inc-nope/de-escalation", reason, 404),
        (COORDINATOR.id, "POST", f"{base}/de-escalation", reason, 200),
    ]
    for who, method, path, body, expected in matrix:
        answer = await api.as_(who).request(method, path, json=body or None)
        assert answer.status_code == expected, (who, method, path, answer.text)


async def test_platform_a_cannot_touch_platform_b(api: Api) -> None:
    incident = await an_active_incident(api)
    slow_task = "slowtube-000001"
    answer = await api.as_(FASTBOOK.id).post(
        f"/v1/incidents/{incident}/tasks/reports",
        json={"reports": [{"task_id": slow_task, "outcome": "removed"}]},
    )
    assert answer.status_code == 404  # not among fastbook's tasks: its existence is not told
    page = (await api.as_(SLOWTUBE.id).get(f"/v1/incidents/{incident}/tasks")).json()
    assert {t["state"] for t in page["tasks"]} == {"assigned"}


async def test_refusals_name_the_field_and_the_rule(api: Api) -> None:
    incident = await an_active_incident(api)
    iru = api.as_(COORDINATOR.id)
    bad = await iru.post(
        f"/v1/incidents/{incident}/content",
        json={"identifiers": [{"kind": "hash", "algorithm": "sha256", "value": "abc"}]},
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["field"] == "body.identifiers.0.hash"
    assert "64 hex digits" in bad.json()["error"]["rule"]
    early = await iru.post(f"/v1/incidents/{incident}/review-input", json={"text": "too early"})
    assert early.status_code == 409
    assert early.json()["error"] == {
        "field": "phase",
        "rule": "submit_review_input is allowed in review, not in active",
        "refusal": "conflict",
    }
    status = (await iru.get(f"/v1/incidents/{incident}")).json()
    assert status["crisis"]["items"] == 2


async def test_a_retried_request_with_the_same_key_changes_nothing(api: Api) -> None:
    incident = await an_active_incident(api)
    iru = api.as_(COORDINATOR.id)
    headers = {"Idempotency-Key": "wave-2"}
    body = {"identifiers": [url(50).model_dump(mode="json")]}
    first = await iru.post(f"/v1/incidents/{incident}/content", json=body, headers=headers)
    second = await iru.post(f"/v1/incidents/{incident}/content", json=body, headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert first.json()["accepted_items"] == [3]
    decisions = (await iru.get(f"/v1/incidents/{incident}/decisions")).json()
    assert [d["decision"]["kind"] for d in decisions].count("content_added") == 1

    reported = [
        await iru.post("/v1/incidents", json=report_body(), headers={"Idempotency-Key": "r-1"})
        for _ in range(2)
    ]
    assert [r.status_code for r in reported] == [201, 200]
    assert reported[0].json() == reported[1].json()


async def test_oversized_and_malformed_bodies_are_refused(api: Api) -> None:
    incident = await an_active_incident(api)
    iru = api.as_(COORDINATOR.id)
    huge = {"reason": "x" * 2_000_000}
    too_big = await iru.post(f"/v1/incidents/{incident}/de-escalation", json=huge)
    assert too_big.status_code == 413
    garbage = await iru.post(
        f"/v1/incidents/{incident}/de-escalation",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert garbage.status_code == 422
    unknown_field = await iru.post(
        f"/v1/incidents/{incident}/de-escalation", json={"reason": "r", "actor": "eu-iru"}
    )
    assert unknown_field.status_code == 422  # the actor comes from the token, never the body
    assert (await iru.get(f"/v1/incidents/{incident}")).json()["crisis"]["phase"] == "active"


async def test_the_openapi_document_lists_every_action(api: Api) -> None:
    async with api.anonymous() as nobody:
        spec = (await nobody.get("/v1/openapi.json")).json()
    paths = set(spec["paths"])
    assert "/v1/incidents/{incident_id}/activation" in paths
    assert "/v1/incidents/{incident_id}/tasks/reports" in paths
    assert CHOOSY.id  # the third platform takes part silently


async def test_an_unknown_path_answers_in_the_same_error_shape(api: Api) -> None:
    answer = await api.as_(COORDINATOR.id).get("/v1/nowhere")
    assert answer.status_code == 404
    assert answer.json()["error"]["refusal"] == "not_found"


async def test_a_participant_registered_while_the_api_runs_can_act(
    api: Api, eucp: Protocol
) -> None:
    registry = Registry.load(eucp.settings.registry_path)
    newcomer = Contact(id="newtube", kind=ParticipantKind.platform, name="NewTube")
    Registry(participants=[*registry.participants, newcomer]).save(eucp.settings.registry_path)
    token = TokenStore(eucp.settings.tokens_path).issue("newtube")
    async with api.anonymous() as client:
        answer = await client.get("/v1/incidents", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200


async def test_the_api_counts_its_answers_for_prometheus(api: Api) -> None:
    incident = await an_active_incident(api)
    await api.as_(COORDINATOR.id).post(f"/v1/incidents/{incident}/closure", json={})
    async with api.anonymous() as scraper:
        text = (await scraper.get("/metrics")).text
    assert (
        'eucp_api_requests_total{route="/v1/incidents/{incident_id}/activation",status="200"} 1.0'
        in text
    )
    assert 'route="/v1/incidents/{incident_id}/closure",status="409"' in text
    assert incident not in text  # labels are route templates, never ids


async def test_a_closed_incident_says_so_to_those_who_took_part_only(
    api: Api, eucp: Protocol
) -> None:
    """A late report on a closed incident is refused as closed (409), not as unknown, to the
    platforms that took part; to anyone else it stays the 404 of an unknown incident."""
    iru = api.as_(COORDINATOR.id)
    reported = await iru.post("/v1/incidents", json=report_body())
    incident = str(reported.json()["incident_id"])
    await iru.post(
        f"/v1/incidents/{incident}/assessment", json={"assessment": ALL_MET.model_dump(mode="json")}
    )
    await iru.post(
        f"/v1/incidents/{incident}/activation",
        json={"reason": "criteria met", "platforms": [FASTBOOK.id]},
    )
    for step in ("de-escalation", "review", "closure"):
        done = await iru.post(f"/v1/incidents/{incident}/{step}", json={"reason": "over"})
        assert done.status_code == 200, done.text
    await eucp.incidents.result(incident)

    fastbook = api.as_(FASTBOOK.id)
    late = await fastbook.post(
        f"/v1/incidents/{incident}/sightings",
        json={"identifiers": [url(9).model_dump(mode="json")]},
    )
    assert late.status_code == 409, late.text
    assert late.json()["error"]["field"] == "incident"
    assert "closed" in late.json()["error"]["rule"]
    late_report = await fastbook.post(
        f"/v1/incidents/{incident}/tasks/reports",
        json={"reports": [{"task_id": "fastbook-000001", "outcome": "removed"}]},
    )
    assert late_report.status_code == 409, late_report.text
    stranger = await api.as_(SLOWTUBE.id).post(
        f"/v1/incidents/{incident}/sightings",
        json={"identifiers": [url(9).model_dump(mode="json")]},
    )
    assert stranger.status_code == 404, stranger.text

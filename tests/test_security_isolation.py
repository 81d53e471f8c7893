"""Each participant learns what it may read and nothing more, over real HTTP: a platform asking
about, or reporting on, another platform's tasks or an incident it is not part of gets the
very answer a made-up id gets; the incident list holds exactly what the caller may read."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from eucp.protocol.participants import Contact, ParticipantKind
from eucp.runtime.registry import Registry
from eucp.runtime.tokens import TokenStore
from tests.conftest import (
    ACTORS,
    AUDITOR,
    COORDINATOR,
    FASTBOOK,
    HOST_AUTHORITY,
    MEMBER_STATE,
    REGISTRY,
    SLOWTUBE,
    Protocol,
    a_report,
)
from tests.http_steps import Api
from tests.protocol_steps import ALL_MET, activated, url
from tests.test_api import (
    an_active_incident,
    api,  # noqa: F401  (the fixture)
)

GIFCT = "gifct"


async def without_fastbook(eucp: Protocol) -> str:
    """An active incident whose platforms are slowtube and choosy only."""
    incident = f"inc-{uuid.uuid4().hex[:10]}"
    others = [p for p in REGISTRY.public() if p.id != FASTBOOK.id]
    await eucp.incidents.report(incident, a_report(), others)
    await activated(eucp.incidents.as_participant(incident, COORDINATOR), url(1))
    return incident


def shape(answer: httpx.Response, *ids: str) -> tuple[int, str]:
    """Status and body with the ids the caller itself sent replaced: an answer may echo the
    caller's own input, but must not differ in anything else."""
    text = answer.text
    for n, echoed in enumerate(ids):
        text = text.replace(echoed, f"<id{n}>")
    return answer.status_code, text


async def report(client: httpx.AsyncClient, incident: str, *task_ids: str) -> httpx.Response:
    return await client.post(
        f"/v1/incidents/{incident}/tasks/reports",
        json={"reports": [{"task_id": t, "outcome": "removed"} for t in task_ids]},
    )


async def test_another_platforms_task_ids_answer_like_made_up_ones(
    api: Api,  # noqa: F811
) -> None:
    incident = await an_active_incident(api, n=2)
    fastbook = api.as_(FASTBOOK.id)
    foreign, made_up = "slowtube-000001", "fastbook-999999"

    theirs = await report(fastbook, incident, foreign)
    nobodys = await report(fastbook, incident, made_up)
    assert theirs.status_code == 404
    assert shape(theirs, foreign) == shape(nobodys, made_up)

    # beside one of its own tasks: the foreign id is treated exactly like the made-up one
    mixed_theirs = await report(fastbook, incident, "fastbook-000001", foreign)
    mixed_nobodys = await report(fastbook, incident, "fastbook-000002", made_up)
    assert shape(mixed_theirs, "fastbook-000001", foreign) == shape(
        mixed_nobodys, "fastbook-000002", made_up
    )

    # slowtube's tasks are untouched, and fastbook cannot list them
    page = (await api.as_(SLOWTUBE.id).get(f"/v1/incidents/{incident}/tasks")).json()
    assert {t["state"] for t in page["tasks"]} == {"assigned"}
    peek = await fastbook.get(f"/v1/incidents/{incident}/tasks", params={"platform": "slowtube"})
    peek_nowhere = await fastbook.get(
        "/v1/incidents/inc-nope-0000/tasks", params={"platform": "slowtube"}
    )
    assert peek.status_code == 403
    assert shape(peek) == shape(peek_nowhere)  # the same refusal, whether the incident exists
    assert "slowtube-0000" not in peek.text


async def test_an_incident_a_platform_is_not_part_of_answers_like_a_made_up_one(
    api: Api,  # noqa: F811
    eucp: Protocol,
) -> None:
    theirs = await without_fastbook(eucp)
    made_up = f"inc-{uuid.uuid4().hex[:10]}"
    fastbook = api.as_(FASTBOOK.id)
    probes: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", "/v1/incidents/{}", None),
        ("GET", "/v1/incidents/{}/tasks", None),
        (
            "POST",
            "/v1/incidents/{}/tasks/reports",
            {"reports": [{"task_id": "slowtube-000001", "outcome": "removed"}]},
        ),
        (
            "POST",
            "/v1/incidents/{}/tasks/reports",
            {"reports": [{"task_id": "fastbook-000001", "outcome": "removed"}]},
        ),
        # the actions a platform may take in an incident it is part of
        ("POST", "/v1/incidents/{}/sightings", {"identifiers": [url(7).model_dump(mode="json")]}),
        ("POST", "/v1/incidents/{}/false-positives", {"item": 1, "reason": "not it"}),
        ("POST", "/v1/incidents/{}/review-input", {"text": "lessons"}),
        ("POST", "/v1/incidents/{}/closure", {"reason": "done"}),
    ]
    for method, path, body in probes:
        real = await fastbook.request(method, path.format(theirs), json=body)
        fake = await fastbook.request(method, path.format(made_up), json=body)
        assert real.status_code == 404, (path, real.text)
        assert shape(real, theirs) == shape(fake, made_up), path
    listed = {i["incident_id"] for i in (await fastbook.get("/v1/incidents")).json()}
    assert theirs not in listed


async def test_the_incident_list_holds_what_the_caller_may_read_and_nothing_else(
    api: Api,  # noqa: F811
    eucp: Protocol,
) -> None:
    registry = Registry.load(eucp.settings.registry_path)
    gifct = Contact(id=GIFCT, kind=ParticipantKind.gifct, name="GIFCT")
    Registry(participants=[*registry.participants, gifct]).save(eucp.settings.registry_path)
    api.tokens[GIFCT] = TokenStore(eucp.settings.tokens_path).issue(GIFCT)
    with_fastbook = await an_active_incident(api)
    without = await without_fastbook(eucp)
    assessing = await api.as_(COORDINATOR.id).post(
        "/v1/incidents", json={"report": a_report().model_dump(mode="json")}
    )
    await api.as_(COORDINATOR.id).post(
        f"/v1/incidents/{assessing.json()['incident_id']}/assessment",
        json={"assessment": ALL_MET.model_dump(mode="json")},
    )
    ours = {with_fastbook, without, assessing.json()["incident_id"]}

    expected = {
        COORDINATOR.id: ours,
        AUDITOR.id: ours,
        FASTBOOK.id: {with_fastbook},
        SLOWTUBE.id: {with_fastbook, without},
        MEMBER_STATE.id: set(),  # France is not among the affected Member States
        HOST_AUTHORITY.id: set(),
        GIFCT: set(),
    }
    assert {a.id for a in ACTORS} - set(expected) == {"choosy"}  # a platform like slowtube
    for who, readable in expected.items():
        client = api.as_(who)
        listed = {i["incident_id"] for i in (await client.get("/v1/incidents")).json()} & ours
        assert listed == readable, who
        for incident in ours:
            status = (await client.get(f"/v1/incidents/{incident}")).status_code
            assert status == (200 if incident in listed else 404), (who, incident)

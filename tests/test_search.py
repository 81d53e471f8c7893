"""Incidents found by what they are: every crisis run carries its phase, the platforms given a
part, its reporter and its exercise flag as search attributes, which `GET /v1/incidents`, the
console and `temporal workflow list --query` filter by. Real dev server, real HTTP; the
time-skipping server with the attributes registered through its operator service."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from bench import listing
from eucp.protocol.actions import Action
from eucp.protocol.phases import Phase
from eucp.protocol.refusal import Refusal, RefusalKind
from eucp.protocol.search import SEARCH_ATTRIBUTES, IncidentSearch
from eucp.protocol.state import CrisisState
from eucp.runtime import devserver, visibility
from eucp.runtime.devserver import temporal_cli
from eucp.runtime.settings import Settings
from eucp.service.incidents import Incidents
from tests.conftest import (
    AUDITOR,
    CHOOSY,
    COORDINATOR,
    FASTBOOK,
    MEMBER_STATE,
    REGISTRY,
    SLOWTUBE,
    Protocol,
    a_report,
)
from tests.http_steps import Api
from tests.protocol_steps import activated, eventually, url
from tests.test_api import api  # noqa: F401  (the fixture)
from tests.test_continue_as_new import (  # noqa: F401  (the fixtures)
    eucp_small_histories,
    low_threshold_env,
    runs_of,
)
from workflows import search
from workflows.platform import platform_workflow_id

# ---- the names, the types and the queries, without a server --------------------------------


def test_the_typed_keys_are_the_attributes_registered() -> None:
    assert {k.name: k._metadata_type for k in search.KEYS} == SEARCH_ATTRIBUTES
    assert set(SEARCH_ATTRIBUTES.values()) <= set(visibility.INDEXED_TYPES)


def test_a_search_becomes_conditions_of_checked_values_only() -> None:
    found = IncidentSearch.of("active", "fastbook", "eu-iru", False).conditions()
    assert found == [
        "EucpPhase = 'active'",
        "EucpPlatforms = 'fastbook'",
        "EucpReporter = 'eu-iru'",
        "EucpExercise = false",
    ]
    assert IncidentSearch.of().conditions() == []
    for field, words in [
        ("phase", {"phase": "activ"}),
        ("platform", {"platform": "x' OR WorkflowType != '"}),
        ("platform", {"platform": "FastBook"}),
        ("reporter", {"reporter": "a" * 64}),
        ("reporter", {"reporter": "-iru"}),
    ]:
        with pytest.raises(Refusal) as refused:
            IncidentSearch.of(**words)
        assert (refused.value.field, refused.value.kind) == (field, RefusalKind.invalid)
        assert refused.value.status == 422


def test_a_platform_searches_its_own_incidents_only() -> None:
    own = IncidentSearch.of(phase="active", exercise=True).by_platform("fastbook")
    assert own == IncidentSearch(phase=Phase.active, platform="fastbook", exercise=True)
    assert IncidentSearch.of(platform="fastbook").by_platform("fastbook").platform == "fastbook"
    for words in ({"platform": "slowtube"}, {"reporter": "eu-iru"}):
        with pytest.raises(Refusal) as refused:
            IncidentSearch.of(**words).by_platform("fastbook")
        assert refused.value.status == 403


# ---- over HTTP, on the dev server ----------------------------------------------------------


async def listed(http: Api, who: str, **params: Any) -> set[str]:
    answer = await http.as_(who).get("/v1/incidents", params=params)
    assert answer.status_code == 200, answer.text
    return {i["incident_id"] for i in answer.json()}


async def settled_list(
    http: Api, who: str, expected: set[str], ours: set[str], **params: Any
) -> None:
    """The list, narrowed to this test's incidents, comes to `expected`: the visibility store
    applies a run's attributes a moment after the workflow task that set them."""

    async def agrees() -> bool:
        return await listed(http, who, **params) & ours == expected

    try:
        await eventually(agrees, within=10)
    except AssertionError:
        got = await listed(http, who, **params) & ours
        raise AssertionError(f"{who} {params}: {sorted(got)} != {sorted(expected)}") from None


async def test_the_incident_list_filters_by_phase_platform_reporter_and_exercise(
    api: Api,  # noqa: F811
    eucp: Protocol,
) -> None:
    # an active crisis of slowtube and choosy (reported by the coordinator), an exercise of
    # every platform with fastbook then suspended, and one France reported, not yet assessed
    without = f"inc-{uuid.uuid4().hex[:10]}"
    others = [p for p in REGISTRY.public() if p.id != FASTBOOK.id]
    await eucp.incidents.report(without, a_report(), others)
    await activated(eucp.incidents.as_participant(without, COORDINATOR), url(1))
    drill = await eucp.report(exercise=True)
    iru = eucp.incidents.as_participant(drill, COORDINATOR)
    await activated(iru, url(2))
    await iru.act(Action.suspend_platform, platform=FASTBOOK.id, reason="unreachable")
    french = await eucp.report(reporter=MEMBER_STATE.id)
    ours = {without, drill, french}

    staff = [COORDINATOR.id, AUDITOR.id]
    for who in staff:
        await settled_list(api, who, ours, ours)
        await settled_list(api, who, {without, drill}, ours, phase="active")
        await settled_list(api, who, {french}, ours, phase="reported")
        await settled_list(api, who, set(), ours, phase="closed")
        await settled_list(api, who, {drill}, ours, platform=FASTBOOK.id)  # suspended since
        await settled_list(api, who, {without, drill}, ours, platform=SLOWTUBE.id)
        await settled_list(api, who, {french}, ours, reporter=MEMBER_STATE.id)
        await settled_list(api, who, {drill}, ours, exercise="true")
        await settled_list(api, who, {without, french}, ours, exercise="false")
        await settled_list(api, who, {drill}, ours, platform=CHOOSY.id, exercise="true")
    # a platform: its own incidents, a suspended one's too (it still reads it), by phase or
    # exercise; never another platform's, nor who reported
    await settled_list(api, FASTBOOK.id, {drill}, ours)
    await settled_list(api, FASTBOOK.id, {drill}, ours, phase="active", platform=FASTBOOK.id)
    await settled_list(api, FASTBOOK.id, set(), ours, exercise="false")
    await settled_list(api, SLOWTUBE.id, {without, drill}, ours)
    await settled_list(api, SLOWTUBE.id, {without}, ours, exercise="false")
    for incident in ours:
        read = await api.as_(FASTBOOK.id).get(f"/v1/incidents/{incident}")
        assert read.status_code == (200 if incident == drill else 404), incident
    await settled_list(api, MEMBER_STATE.id, set(), ours, reporter=MEMBER_STATE.id)

    refusals = [
        (COORDINATOR.id, {"phase": "bogus"}, 422, "phase"),
        (COORDINATOR.id, {"platform": "Fast'book"}, 422, "platform"),
        (COORDINATOR.id, {"reporter": "x" * 80}, 422, "reporter"),
        (FASTBOOK.id, {"platform": SLOWTUBE.id}, 403, "platform"),
        (FASTBOOK.id, {"reporter": COORDINATOR.id}, 403, "reporter"),
        (MEMBER_STATE.id, {"phase": "bogus"}, 422, "phase"),
    ]
    for who, params, status, field in refusals:
        answer = await api.as_(who).get("/v1/incidents", params=params)
        assert answer.status_code == status, (who, params, answer.text)
        assert answer.json()["error"]["field"].removeprefix("query.") == field, answer.text
    answer = await api.as_(COORDINATOR.id).get("/v1/incidents", params={"exercise": "maybe"})
    assert answer.status_code == 422, answer.text


async def test_temporal_workflow_list_finds_them_by_the_same_attributes(eucp: Protocol) -> None:
    incident = f"inc-{uuid.uuid4().hex[:10]}"
    others = [p for p in REGISTRY.public() if p.id != FASTBOOK.id]
    await eucp.incidents.report(incident, a_report(exercise=True), others)
    await activated(eucp.incidents.as_participant(incident, COORDINATOR), url(1))
    address = eucp.env.client.service_client.config.target_host

    async def found(query: str) -> set[str]:
        cli = await asyncio.create_subprocess_exec(
            *(str(temporal_cli()), "workflow", "list", "--address", address),
            *("--query", f"{query} AND TaskQueue = '{eucp.settings.task_queue}'", "-o", "json"),
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await cli.communicate()
        assert cli.returncode == 0
        return {w["execution"]["workflowId"] for w in json.loads(out or b"[]")}

    async def listed_by_the_cli() -> bool:
        return await found("EucpPlatforms = 'slowtube' AND EucpPhase = 'active'") == {incident}

    await eventually(listed_by_the_cli)
    assert await found("EucpPlatforms = 'fastbook'") == set()
    assert await found(f"EucpReporter = '{COORDINATOR.id}' AND EucpExercise = true") == {incident}


async def test_an_incident_continued_as_new_is_listed_once_as_it_is_now(
    eucp_small_histories: Protocol,  # noqa: F811
) -> None:
    eucp = eucp_small_histories
    incident = await eucp.report()
    iru = eucp.incidents.as_participant(incident, COORDINATOR)
    await activated(iru, url(0))
    for wave in range(1, 5):
        await iru.act(Action.add_content, identifiers=[url(wave * 10 + i) for i in range(5)])
    await iru.act(Action.de_escalate, reason="over")
    assert await runs_of(eucp.env, incident) > 1  # runs before this one were active

    async def as_now() -> bool:
        now = [i for i in await eucp.incidents.listings() if i.incident_id == incident]
        active = await eucp.incidents.listings(IncidentSearch(phase=Phase.active))
        calm = await eucp.incidents.listings(
            IncidentSearch(phase=Phase.de_escalating, platform=FASTBOOK.id)
        )
        return (
            len(now) == 1
            and now[0].status == "running"
            and incident not in {i.incident_id for i in active}
            and [i.incident_id for i in calm].count(incident) == 1
        )

    await eventually(as_now)


async def test_a_platform_still_lists_its_runs_from_before_the_attributes(
    dev_env: WorkflowEnvironment, settings: Settings
) -> None:
    """A run started by an eucp before the search attributes carries none until it continues
    as new; a platform's list finds it from its task workflow. Here such runs are records on a
    task queue no worker polls, as an upgrade leaves them until the workers are back."""
    legacy = settings.model_copy(update={"task_queue": f"legacy-{uuid.uuid4().hex[:8]}"})
    incidents = Incidents(dev_env.client, legacy)
    old, indexed_one = f"inc-{uuid.uuid4().hex[:10]}", f"inc-{uuid.uuid4().hex[:10]}"
    started = [
        await dev_env.client.start_workflow(
            "CrisisWorkflow", {}, id=old, task_queue=legacy.task_queue
        ),
        await dev_env.client.start_workflow(
            "PlatformTasksWorkflow",
            {},
            id=platform_workflow_id(old, FASTBOOK.id),
            task_queue=legacy.task_queue,
        ),
        await dev_env.client.start_workflow(
            "CrisisWorkflow",
            {},
            id=indexed_one,
            task_queue=legacy.task_queue,
            search_attributes=search.indexed(
                CrisisState(
                    incident_id=indexed_one,
                    report=a_report(),
                    participants=REGISTRY.public(),
                    sla=settings.sla,
                    platforms=[SLOWTUBE.id],
                    phase=Phase.active,
                )
            ),
        ),
    ]
    try:

        async def listed_as_they_should() -> bool:
            fastbook = await incidents.listings(IncidentSearch(platform=FASTBOOK.id))
            slowtube = await incidents.listings(IncidentSearch(platform=SLOWTUBE.id))
            active = await incidents.listings(IncidentSearch(phase=Phase.active))
            every = await incidents.listings()
            return (
                [i.incident_id for i in fastbook] == [old]
                and [i.incident_id for i in slowtube] == [indexed_one]
                and [i.incident_id for i in active] == [indexed_one]  # found by what it is
                and {i.incident_id for i in every} == {old, indexed_one}
            )

        await eventually(listed_as_they_should)
    finally:
        for handle in started:
            await handle.terminate()


async def test_the_worker_refuses_a_namespace_without_the_attributes(
    dev_env: WorkflowEnvironment,
) -> None:
    assert await visibility.missing(dev_env.client) == {}
    await visibility.check(dev_env.client)
    bare = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(temporal_cli()), ui=False, dev_server_log_level="error"
    )
    try:
        assert await visibility.missing(bare.client) == SEARCH_ATTRIBUTES
        with pytest.raises(visibility.Unregistered) as refused:
            await visibility.check(bare.client)
        assert "temporal operator search-attribute create" in str(refused.value)
        await visibility.register(bare.client)  # what a dev server's operator may do
        assert await visibility.missing(bare.client) == {}
    finally:
        await bare.shutdown()


# ---- the time-skipping server ---------------------------------------------------------------


async def attributes(client: Client, incident: str) -> dict[str, Any]:
    described = await client.get_workflow_handle(incident).describe()
    return {k.name: v for k, v in described.typed_search_attributes if k.name in SEARCH_ATTRIBUTES}


async def test_the_time_skipping_server_takes_the_attributes(eucp_skipping: Protocol) -> None:
    eucp = eucp_skipping
    incident = await eucp.report(exercise=True)
    iru = eucp.incidents.as_participant(incident, COORDINATOR)
    assert await attributes(eucp.env.client, incident) == {
        "EucpPhase": "reported",
        "EucpReporter": COORDINATOR.id,
        "EucpExercise": True,
    }
    await activated(iru, url(1))
    await iru.act(Action.suspend_platform, platform=CHOOSY.id, reason="unreachable")
    assert await attributes(eucp.env.client, incident) == {
        "EucpPhase": "active",
        "EucpPlatforms": [FASTBOOK.id, SLOWTUBE.id, CHOOSY.id],
        "EucpReporter": COORDINATOR.id,
        "EucpExercise": True,
    }
    await iru.act(Action.de_escalate, reason="over")
    await iru.act(Action.start_review)
    await iru.act(Action.close, reason="done")
    await eucp.incidents.result(incident)
    assert (await attributes(eucp.env.client, incident))["EucpPhase"] == "closed"


@pytest.fixture
async def unregistered_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(devserver.test_server()),
        data_converter=pydantic_data_converter,
    )
    yield env
    await env.shutdown()


async def test_without_them_the_server_refuses_an_incident_at_its_start(
    unregistered_skipping_env: WorkflowEnvironment, settings: Settings
) -> None:
    """What the registration is for: no run with attributes its namespace lacks starts."""
    incidents = Incidents(unregistered_skipping_env.client, settings)
    with pytest.raises(RPCError, match=r"search attribute Eucp\w+ is not defined"):
        await incidents.report("inc-unregistered", a_report(), REGISTRY.public())


def test_the_listing_benchmark_runs_small(tmp_path: Path) -> None:
    """`python -m bench.listing`, small: a second run on its kept run dir starts nothing."""
    out = tmp_path / "listing.json"
    small = ["--incidents", "60", "--runs", "1", "--run-dir", str(tmp_path / "run")]
    for there in (0, 60):
        listing.main([*small, "--out", str(out)])
        results = json.loads(out.read_text())
        assert (results["fill"]["there"], results["fill"]["started"]) == (there, 60 - there)
    rows = {f["name"]: f["rows"] for f in results["figures"]}
    assert rows["every incident (a coordinator's list)"] == 60
    assert 0 < rows["a large platform's list (p00)"] < 60

"""The API does what its OpenAPI document says (issue 14): schemathesis reads `/v1/openapi.json`
from the real stack (uvicorn on loopback, the worker, the Temporal dev server), generates
requests from it as a coordinator, a platform and an auditor, and checks every answer against
the document: its status, content type, body and headers.

The checks, all of schemathesis's that apply to this API:
- not_a_server_error, status_code_conformance, content_type_conformance,
  response_schema_conformance, response_headers_conformance: every answer is one the document
  declares, in its declared shape (the refusals' `ErrorBody`, `Retry-After` on a 429);
- negative_data_rejection: a request the document rules out is refused (4xx);
- positive_data_acceptance: a request the document allows is not refused as invalid (422),
  except on the operations in `RULES_BEYOND_THE_SCHEMA`, whose bodies carry rules of the
  protocol that JSON Schema does not state (each is named there);
- missing_required_header, ignored_auth: no token or a bad one is 401 (the server's limit on
  failed sign-ins per address, which would answer 429 to this run's hundreds of anonymous
  probes, is raised for the run: tests/test_limits.py holds that limit);
- unsupported_method, allow_header_conformance: another method is 405 with every method of
  the path in `Allow` (which methods, the last test here says: an empty `Allow` passes both);
- use_after_free, ensure_resource_availability: nothing is deleted here, so they never fire.
Left off: max_response_time (time is the benchmarks' business), and
object_level_authorization (one identity a run; tests/test_security_isolation.py).

Two of schemathesis's phases run: coverage (the edges of each schema, undeclared methods,
no token or a bad one) and fuzzing (`EXAMPLES` generated requests an operation, valid and
not), about 3,300 requests as the coordinator and 1,000 as each other role in about a minute
all told. Requests on an incident go to the incidents made for the run (`incidents_to_find`)
more often than not, so that actions meet real phases and tasks. The stateful phase is left
off: on this API it sends some 2,000 more requests a role (a minute and a half), and its state
machine may stop with an error of its own ("No progress can be made", seen when the only
report it held had been answered 200 for a key sent again). The seed is fixed, so `make test`
sends the same requests each time; change it (or run `st run` as docs/platforms.md says) to
explore.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis.engine import Status, events, from_schema

from tests.conftest import AUDITOR, COORDINATOR, FASTBOOK, Protocol, a_report
from tests.http_steps import issue_tokens, serving
from tests.protocol_steps import ALL_MET, url

ROLES = {"coordinator": COORDINATOR.id, "platform": FASTBOOK.id, "auditor": AUDITOR.id}
EXAMPLES = 6  # generated requests an operation in the fuzzing phase, per role
SEED = 14
MIN_REQUESTS = 500  # a run that sent fewer has not tested the API (a changed engine, say)

# Operation -> the rule of the protocol its body carries that the document does not state, so
# that a schema-valid body may be refused (422) by the server: positive_data_acceptance is off
# there. Every other check runs on them all the same.
RULES_BEYOND_THE_SCHEMA = {
    "POST /v1/incidents": "first identifiers' values (below); the SLA's clocks run 366 days",
    "POST /v1/incidents/{incident_id}/assessment": "only criterion 4 may be `suspected`",
    "POST /v1/incidents/{incident_id}/activation": "identifiers' values: a URL is http(s), a "
    "hash is as long as its algorithm says, a vpdq hash its frames, a tmk hash a .tmk file",
    "POST /v1/incidents/{incident_id}/content": "identifiers' values",
    "POST /v1/incidents/{incident_id}/removal-orders": "identifiers' values",
    "POST /v1/incidents/{incident_id}/sightings": "identifiers' values",
    "POST /v1/incidents/{incident_id}/clocks": "the clocks by name, each 366 days at most",
    "POST /v1/incidents/{incident_id}/imminent-threats": "Member States as country codes",
    "POST /v1/incidents/{incident_id}/linked-protocols": "`other` is named",
    "POST /v1/incidents/{incident_id}/tasks/reports": "declining gives a reason, a pause "
    "its Annex III reason",
    "POST /v1/incidents/{incident_id}/participants": "the platform is registered (the registry "
    "is read as it is now, not when the document was written)",
    "GET /v1/tasks": "`since` is a checkpoint the API gave",
}
WITH_PLATFORM = ("/v1/tasks", "/v1/incidents/{incident_id}/tasks")


@dataclass
class Run:
    """What one role's run sent and found."""

    requests: int = 0
    by_phase: Counter[str] = field(default_factory=Counter)
    operations: set[str] = field(default_factory=set)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0


def phases(role: str) -> dict[str, Any]:
    """The coverage phase's schema-violating requests (and undeclared methods) are refused on
    their form, before the caller's role counts: the coordinator sends them; every role sends
    the schema-valid ones. No examples in the document; no stateful phase (below)."""
    mode = "all" if role == "coordinator" else "positive"
    return {
        "examples": {"enabled": False},
        "coverage": {"generation": {"mode": mode}},
        "stateful": {"enabled": False},
    }


def config(base: str, token: str, role: str, incidents: list[str]) -> schemathesis.Config:
    staff = role != "platform"
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "headers": {"Authorization": f"Bearer {token}"},
            "request-timeout": 30,
            "generation": {"max-examples": EXAMPLES, "database": "none"},
            "phases": phases(role),
            # the incidents made for the run, or ids made up: found or not found
            "dictionaries": {"incidents": {"values": incidents}},
            "parameters": {"path.incident_id": {"dictionary": "incidents", "probability": 0.6}},
            "operations": [
                *(
                    {
                        "include-name": name,
                        "checks": {"positive_data_acceptance": {"enabled": False}},
                    }
                    for name in RULES_BEYOND_THE_SCHEMA
                ),
                # coordinators and auditors name the platform whose tasks they read, as the
                # parameter's description says: one taking part in the active incident
                *(
                    [{"include-path": list(WITH_PLATFORM), "parameters": {"platform": "fastbook"}}]
                    if staff
                    else []
                ),
            ],
        }
    )


def run_schemathesis(base: str, token: str, role: str, incidents: list[str]) -> Run:
    """One role's run, in a thread of its own: the server answers on the test's event loop."""
    started = time.monotonic()
    schema = schemathesis.openapi.from_url(
        f"{base}/v1/openapi.json", config=config(base, token, role, incidents)
    )
    run = Run()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            recorder = event.recorder
            run.requests += len(recorder.interactions)
            run.by_phase[event.phase.value] += len(recorder.interactions)
            run.operations.add(recorder.label)
            for case_id, checks in recorder.checks.items():
                for check in checks:
                    info = check.failure_info
                    if check.status is Status.FAILURE and info is not None:
                        run.failures.append(described(recorder, case_id, check.name, info))
        elif isinstance(event, events.NonFatalError):
            run.failures.append(f"schemathesis could not run {event.label}: {event.value!r}")
        elif isinstance(event, events.FatalError):
            run.failures.append(f"schemathesis could not run: {event.exception!r}")
    run.seconds = time.monotonic() - started
    return run


def described(recorder: Any, case_id: str, check: str, info: Any) -> str:
    """A failure as schemathesis tells it, with the answer and the curl command to repeat it."""
    interaction = recorder.interactions.get(case_id)
    response = interaction.response if interaction is not None else None
    answer = (
        f"[{response.status_code}] {response.content[:800]!r}"
        if response is not None
        else "no answer"
    )
    case = recorder.cases[case_id].value
    return (
        f"{recorder.label} [{check}] {info.failure.title}\n{info.failure.message}\n"
        f"sent {case.method} {case.formatted_path} query={case.query} body={case.body!r}\n"
        f"answered {answer}\n{info.code_sample}"
    )


async def incidents_to_find(base: str, token: str) -> list[str]:
    """An active incident with tasks for every platform, and one just reported."""
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as iru:
        made = []
        for _ in range(2):
            reported = await iru.post(
                "/v1/incidents", json={"report": a_report().model_dump(mode="json")}
            )
            assert reported.status_code == 201, reported.text
            made.append(str(reported.json()["incident_id"]))
        active = made[0]
        assessed = await iru.post(
            f"/v1/incidents/{active}/assessment",
            json={"assessment": ALL_MET.model_dump(mode="json")},
        )
        assert assessed.status_code == 200, assessed.text
        activated = await iru.post(
            f"/v1/incidents/{active}/activation",
            json={
                "reason": "all five criteria met",
                "identifiers": [url(i).model_dump(mode="json") for i in range(3)],
            },
        )
        assert activated.status_code == 200, activated.text
    return made


@pytest.fixture
async def live(eucp: Protocol) -> AsyncIterator[tuple[str, dict[str, str], list[str]]]:
    settings = eucp.settings.model_copy(update={"api_failed_auth_per_minute": 1_000_000})
    async with serving(settings, eucp.env.client) as base:
        tokens = issue_tokens(settings)
        yield base, tokens, await incidents_to_find(base, tokens[COORDINATOR.id])


@pytest.mark.parametrize("role", ROLES)
async def test_the_api_does_what_its_openapi_document_says(
    role: str, live: tuple[str, dict[str, str], list[str]]
) -> None:
    base, tokens, incidents = live
    async with httpx.AsyncClient(base_url=base) as anyone:
        document = (await anyone.get("/v1/openapi.json")).json()
    run = await asyncio.to_thread(run_schemathesis, base, tokens[ROLES[role]], role, incidents)
    print(f"{role}: {run.requests} requests {dict(run.by_phase)} in {run.seconds:.0f} s")
    assert not run.failures, "\n\n".join(run.failures)
    operations = {f"{m.upper()} {path}" for path, ops in document["paths"].items() for m in ops}
    assert operations <= run.operations, operations - run.operations  # every one was tried
    assert run.requests >= MIN_REQUESTS, run


async def test_a_method_a_path_lacks_is_405_with_every_method_it_has(
    live: tuple[str, dict[str, str], list[str]],
) -> None:
    """RFC 9110 15.5.6, before any token is read. schemathesis takes an empty `Allow` for a
    good one, so this says which methods."""
    base, _, incidents = live
    async with httpx.AsyncClient(base_url=base) as anyone:
        for method, path, allowed in [
            ("DELETE", "/v1/incidents", "GET, POST"),
            ("PUT", f"/v1/incidents/{incidents[0]}/closure", "POST"),
            ("POST", f"/v1/incidents/{incidents[0]}/tasks", "GET"),
        ]:
            answer = await anyone.request(method, path)
            assert (answer.status_code, answer.headers.get("Allow")) == (405, allowed), path
            assert answer.json()["error"]["field"] == "path"

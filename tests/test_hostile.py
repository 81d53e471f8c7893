"""Hostile input: whatever a participant sends, in any API body or query string or as any Update
input, the API never answers 500, a workflow never crashes (no failed workflow task), and a
refused request or rejected Update changes nothing."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.service import RPCError, RPCStatusCode

from eucp.protocol.actions import ACTIONS, Action
from eucp.protocol.participants import ID_PATTERN
from eucp.protocol.refusal import Refusal
from eucp.protocol.tasks import Outcome, TaskState
from tests.conftest import (
    ACTORS,
    COORDINATOR,
    FASTBOOK,
    MEMBER_STATE,
    PLATFORMS,
    Protocol,
    a_report,
)
from tests.http_steps import Api, issue_tokens, serving
from tests.protocol_steps import ALL_MET, MANIFESTO, ORDER_DETAILS, VIDEO, activated, url
from workflows.crisis import CrisisWorkflow
from workflows.platform import PlatformTasksWorkflow

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = [
    "reason",
    "identifiers",
    "items",
    "item",
    "text",
    "assessment",
    "platforms",
    "basis",
    "withdraw_open_tasks",
    "reports",
    "actor",
]
TASK_IDS = st.sampled_from(["fastbook-000001", "slowtube-000001", "fastbook-999999", ""])
# task reports close to real ones: real and foreign ids, every outcome, hostile extras
REPORTS = st.lists(
    st.fixed_dictionaries(
        {"task_id": TASK_IDS | st.text(max_size=8), "outcome": st.sampled_from(list(Outcome))},
        optional={"reason": JSON, "cannot_comply": JSON, "removed_at": JSON},
    ),
    max_size=3,
)
# bodies near the real ones: known field names with hostile values
NEAR = st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=4) | st.fixed_dictionaries(
    {"reports": REPORTS}
)
BODIES = NEAR | JSON
# Update inputs: a legal input of each Update with one or two fields made hostile, so that most
# get past decoding into the validators; any other JSON as well
ACTOR = st.sampled_from(
    [a.model_dump(mode="json") for a in ACTORS]
    + [
        {"id": COORDINATOR.id, "kind": "platform"},  # a role that is not its own
        {"id": FASTBOOK.id, "kind": "coordinator"},
        {"id": "eucp", "kind": "system"},
        {"id": "nobody", "kind": "coordinator"},
    ]
)
TEXT = st.text(max_size=40) | st.sampled_from(["", " ", "\x00", "x" * 4001, "\u202e" * 50])
NUMBER = st.integers() | st.sampled_from([0, -1, 1, 2, 2**63, 10**30])
IDENTIFIER = (
    st.sampled_from([i.model_dump(mode="json") for i in (url(1), url(2), VIDEO, MANIFESTO)])
    | st.fixed_dictionaries(
        {"kind": st.sampled_from(["url", "hash"]), "value": TEXT},
        optional={"algorithm": st.sampled_from(["md5", "sha256", "pdq", "tmk"]), "quality": NUMBER},
    )
    | JSON
)
# per field, values of the right shape mostly, so that inputs reach the validators
CRITERION = st.fixed_dictionaries(
    {"status": st.sampled_from(["met", "not_met", "unknown", "maybe"])}, optional={"evidence": TEXT}
)
FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "actor": ACTOR,
    "reason": st.none() | TEXT,
    "text": TEXT,
    "identifiers": st.lists(IDENTIFIER, max_size=3),
    "items": st.lists(NUMBER, max_size=3),
    "item": NUMBER,
    "reports": REPORTS,
    "withdraw_open_tasks": st.booleans(),
    "platforms": st.none() | st.lists(st.sampled_from(PLATFORMS) | TEXT, max_size=3),
    "basis": st.fixed_dictionaries(
        {"kind": st.sampled_from(["voluntary", "removal_order", "other"])},
        optional={"issuing_member_state": TEXT},
    ),
    "addressees": st.none() | st.lists(st.sampled_from(PLATFORMS) | TEXT, max_size=3),
    "order": st.dictionaries(
        st.sampled_from([*sorted(ORDER_DETAILS.model_dump()), "issuing_member_state"]),
        JSON,
        max_size=3,
    ).map(ORDER_DETAILS.model_dump(mode="json").__or__),
    "assessment": st.dictionaries(
        st.sampled_from(sorted(ALL_MET.model_dump())), CRITERION, max_size=5
    ).map(ALL_MET.model_dump(mode="json").__or__),
}
COORDINATING = {"actor": COORDINATOR.model_dump(mode="json"), "reason": "because"}
PLATFORM = {"actor": FASTBOOK.model_dump(mode="json")}
LEGAL: dict[str, dict[str, Any]] = {
    "assess": COORDINATING | {"assessment": ALL_MET.model_dump(mode="json")},
    "activate": COORDINATING | {"identifiers": [url(3).model_dump(mode="json")]},
    "add_content": COORDINATING
    | {"identifiers": [url(4).model_dump(mode="json")], "addressees": [FASTBOOK.id]},
    "issue_order": {
        "actor": MEMBER_STATE.model_dump(mode="json"),
        "identifiers": [url(7).model_dump(mode="json")],
        "order": ORDER_DETAILS.model_dump(mode="json"),
    },
    "withdraw_content": COORDINATING | {"items": [1]},
    "de_escalate": COORDINATING | {"withdraw_open_tasks": True},
    "report_sightings": PLATFORM | {"identifiers": [url(5).model_dump(mode="json")]},
    "report_sightings_batch": {
        "requests": [{"cmd": PLATFORM | {"identifiers": [url(6).model_dump(mode="json")]}}]
    },
    "report_false_positive": PLATFORM | {"item": 1, "reason": "not the video"},
    "submit_review_input": PLATFORM | {"text": "lessons"},
    "report": PLATFORM | {"reports": [{"task_id": "fastbook-000001", "outcome": "acknowledged"}]},
}


def hostile_input(update: str, body: bool = False) -> st.SearchStrategy[Any]:
    """Mostly the Update's legal input with one or two fields given hostile values of their
    shape (so that it decodes and reaches the validators); else any JSON at all. As an API
    `body`, the legal input has no actor (the token is the actor)."""
    legal = LEGAL.get(update, COORDINATING)
    if body:
        legal = {k: v for k, v in legal.items() if k != "actor"}
    changes = st.lists(
        st.sampled_from(
            sorted({*legal, "reason", "actor"} - ({"actor"} if body else set()))
        ).flatmap(lambda field: st.tuples(st.just(field), FIELD_VALUES.get(field, JSON))),
        min_size=1,
        max_size=2,
    )
    near = changes.map(lambda pairs: legal | dict(pairs))
    return st.one_of(near, near, near, BODIES)


REPORT = a_report().model_dump(mode="json")
INCIDENT_BODIES = (
    st.fixed_dictionaries(
        {
            "report": st.dictionaries(st.sampled_from(sorted(REPORT)), JSON, max_size=3).map(
                REPORT.__or__
            )
        },
        optional={"incident_id": JSON | st.just("inc-fixed"), "sla": JSON},
    )
    | BODIES
)
QUERY = st.dictionaries(
    st.sampled_from(["platform", "state", "offset", "limit", "after"]),
    st.text(max_size=12)
    | st.integers().map(str)
    | st.sampled_from([*TaskState, str(2**63), str(-(2**63) - 1), "1e3", "0x10", ""]),
    max_size=4,
)
EXPECTED = {200, 201, 403, 404, 409, 413, 422}
SLOW = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))


async def explore(
    prop: Callable[..., Awaitable[None]], examples: int = 40, **strategies: Any
) -> None:
    """Runs an async property under hypothesis: hypothesis drives it from a thread while this
    event loop (the API server, the Temporal client) keeps serving."""
    loop = asyncio.get_running_loop()

    @settings(SLOW, max_examples=examples)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        drawn = {name: data.draw(strategy, label=name) for name, strategy in strategies.items()}
        asyncio.run_coroutine_threadsafe(prop(**drawn), loop).result(timeout=60)

    await asyncio.to_thread(run)


async def exists(eucp: Protocol, incident_id: object) -> bool:
    """Whether a workflow with this id exists (False for anything that cannot be an id)."""
    if not isinstance(incident_id, str) or not re.fullmatch(ID_PATTERN, incident_id):
        return False
    try:
        await eucp.env.client.get_workflow_handle(incident_id).describe()
    except RPCError as err:
        if err.status is RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def test_no_body_makes_the_api_fail_or_change_what_it_refused(eucp: Protocol) -> None:
    crises = Crises(eucp)
    async with serving(eucp.settings, eucp.env.client) as base:
        api = Api(base, issue_tokens(eucp.settings))
        # path under the incident -> the Update it reaches
        actions = {row.path: row.update for row in ACTIONS.values()} | {"tasks/reports": "report"}
        requests = st.sampled_from(sorted(actions)).flatmap(
            lambda action: st.tuples(st.just(action), hostile_input(actions[action], body=True))
        ) | st.tuples(st.just(""), INCIDENT_BODIES)
        accepted = [False]  # whether the last request changed something

        async def attempt(who: str, request: tuple[str, Any]) -> None:
            action, body = request
            incident = await crises.open()
            path = f"/v1/incidents/{incident}/{action}" if action else "/v1/incidents"
            named = body.get("incident_id") if isinstance(body, dict) else None
            if accepted[0]:
                await settle(eucp, incident)
            before = (await eucp.incidents.status(incident), await exists(eucp, named))
            answer = await api.as_(who).post(path, json=body)
            assert answer.status_code in EXPECTED, (path, body, answer.text)
            accepted[0] = answer.status_code in (200, 201)
            if not accepted[0]:
                assert "error" in answer.json()
                after = (await eucp.incidents.status(incident), await exists(eucp, named))
                assert after == before, (path, body)

        await explore(
            attempt,
            who=st.sampled_from([COORDINATOR.id, FASTBOOK.id, MEMBER_STATE.id]),
            examples=80,
            request=requests,
        )
        await api.close()


async def test_no_query_string_makes_the_api_fail(eucp: Protocol) -> None:
    incident = await eucp.report()
    await activated(eucp.incidents.as_participant(incident, COORDINATOR), url(1))
    async with serving(eucp.settings, eucp.env.client) as base:
        api = Api(base, issue_tokens(eucp.settings))
        paths = [f"/v1/incidents/{incident}/{p}" for p in ("tasks", "decisions")]

        async def attempt(who: str, path: str, query: dict[str, str]) -> None:
            answer = await api.as_(who).get(path, params=query)
            assert answer.status_code in EXPECTED, (path, query, answer.text)

        await explore(
            attempt,
            who=st.sampled_from([COORDINATOR.id, FASTBOOK.id]),
            path=st.sampled_from(paths),
            query=QUERY,
        )
        await api.close()


async def settle(eucp: Protocol, incident: str) -> None:
    """Waits until what an accepted action started has landed (ledger writes, deliveries,
    signals to the platform workflows): no workflow task and no activity pending on any of the
    incident's workflows, twice 0.2 s apart. Only then is a later state change the doing of
    the next request."""
    handles = [eucp.incidents.handle(incident)]
    handles += [eucp.incidents.platform_handle(incident, p) for p in PLATFORMS]
    quiet_in_a_row = 0
    while quiet_in_a_row < 2:
        await asyncio.sleep(0.2)
        described = [(await h.describe()).raw_description for h in handles]
        busy = any(d.pending_activities or d.HasField("pending_workflow_task") for d in described)
        quiet_in_a_row = 0 if busy else quiet_in_a_row + 1


class Crises:
    """The incident under attack: an active one, and a fresh one whenever a run of legal inputs
    has closed it (closing ends its workflows), so that every example reaches a live crisis."""

    def __init__(self, eucp: Protocol) -> None:
        self.eucp = eucp
        self.used: list[str] = []

    async def open(self) -> str:
        if not self.used or not await self.running(self.used[-1]):
            incident = await self.eucp.report()
            await activated(self.eucp.incidents.as_participant(incident, COORDINATOR), url(1))
            self.used.append(incident)
        return self.used[-1]

    async def running(self, incident: str) -> bool:
        described = await self.eucp.incidents.handle(incident).describe()
        return described.status is WorkflowExecutionStatus.RUNNING

    def handle(self, kind: str) -> WorkflowHandle[Any, Any]:
        incidents = self.eucp.incidents
        if kind == "crisis":
            return incidents.handle(self.used[-1])
        return incidents.platform_handle(self.used[-1], FASTBOOK.id)


def updates_of(workflow_class: type) -> list[str]:
    """Every Update the workflow defines, so that a new one is fuzzed without editing this."""
    return sorted(workflow._Definition.must_from_class(workflow_class).updates)


def failed_tasks(history: Any) -> list[int]:
    """The ids of failed workflow tasks: what a crash inside workflow code leaves in history."""
    return [
        e.event_id
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
    ]


async def test_no_update_input_crashes_a_workflow_or_changes_what_it_rejected(
    eucp: Protocol,
) -> None:
    crises = Crises(eucp)
    updates = [("crisis", name) for name in updates_of(CrisisWorkflow)]
    updates += [("platform", name) for name in updates_of(PlatformTasksWorkflow)]
    assert set(LEGAL) <= {name for _, name in updates}

    async def state() -> tuple[Any, Any]:
        return (
            await crises.handle("crisis").query(CrisisWorkflow.status),
            await crises.handle("platform").query(PlatformTasksWorkflow.summary),
        )

    accepted = [False]  # whether the last attempt changed something

    async def attempt(call: tuple[tuple[str, str], Any]) -> None:
        (kind, name), arg = call
        incident = await crises.open()
        if accepted[0]:
            await settle(eucp, incident)
        before = await state()
        try:
            await crises.handle(kind).execute_update(name, arg)
            accepted[0] = True
        except WorkflowUpdateFailedError:
            accepted[0] = False
            assert await state() == before, (name, arg)

    calls = st.sampled_from(updates).flatmap(
        lambda target: st.tuples(st.just(target), hostile_input(target[1]))
    )
    await explore(attempt, examples=150, call=calls)
    # no workflow of any incident used ever failed a workflow task
    for incident in crises.used:
        for handle in (
            eucp.incidents.handle(incident),
            eucp.incidents.platform_handle(incident, FASTBOOK.id),
        ):
            assert failed_tasks(await handle.fetch_history()) == [], handle.id
    # and the last one still answers and takes a legal decision
    await crises.open()
    await state()
    try:
        answer = await eucp.incidents.as_participant(crises.used[-1], COORDINATOR).act(
            Action.add_content,
            identifiers=[url(99)],
        )
        assert answer.accepted_items
    except Refusal as refusal:  # a random input may have de-escalated it: legal
        assert refusal.field == "phase"

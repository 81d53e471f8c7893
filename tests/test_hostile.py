"""Hostile input: whatever a participant sends, the API never answers 500, a workflow never
crashes, and a refused request changes nothing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.client import WorkflowUpdateFailedError

from eucp.api.app import ACTIONS
from eucp.service import Rejected
from tests.conftest import COORDINATOR, FASTBOOK, Protocol
from tests.http_steps import Api, issue_tokens, serving
from tests.protocol_steps import activated, url
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
# bodies near the real ones: known field names with hostile values
NEAR = st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=4)
BODIES = NEAR | JSON
EXPECTED = {200, 403, 404, 409, 413, 422}
SLOW = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))


async def explore(prop: Callable[..., Awaitable[None]], **strategies: Any) -> None:
    """Runs an async property under hypothesis: hypothesis drives it from a thread while this
    event loop (the API server, the Temporal client) keeps serving."""
    loop = asyncio.get_running_loop()

    @SLOW
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        drawn = {name: data.draw(strategy, label=name) for name, strategy in strategies.items()}
        asyncio.run_coroutine_threadsafe(prop(**drawn), loop).result(timeout=60)

    await asyncio.to_thread(run)


async def test_no_body_makes_the_api_fail_or_change_what_it_refused(eucp: Protocol) -> None:
    incident = await eucp.report()
    await activated(eucp.incidents.as_participant(incident, COORDINATOR), url(1))
    async with serving(eucp.settings, eucp.env.client) as base:
        api = Api(base, issue_tokens(eucp.settings))
        paths = [f"/v1/incidents/{incident}/{p}" for p in ACTIONS]
        paths.append(f"/v1/incidents/{incident}/tasks/reports")

        async def attempt(who: str, path: str, body: Any) -> None:
            before = await eucp.incidents.status(incident)
            answer = await api.as_(who).post(path, json=body)
            assert answer.status_code in EXPECTED, (path, body, answer.text)
            if answer.status_code != 200:
                assert "error" in answer.json()
                assert await eucp.incidents.status(incident) == before, (path, body)

        await explore(
            attempt,
            who=st.sampled_from([COORDINATOR.id, FASTBOOK.id]),
            path=st.sampled_from(paths),
            body=BODIES,
        )
        await api.close()


async def test_no_update_input_crashes_a_workflow(eucp: Protocol) -> None:
    incident = await eucp.report()
    iru = eucp.incidents.as_participant(incident, COORDINATOR)
    await activated(iru, url(1))
    crisis = eucp.incidents.handle(incident)
    platform = eucp.incidents.platform_handle(incident, FASTBOOK.id)
    updates = [
        (crisis, name)
        for name in (
            "assess",
            "activate",
            "decline",
            "add_content",
            "withdraw_content",
            "de_escalate",
            "re_escalate",
            "start_review",
            "close",
            "report_sightings",
            "report_false_positive",
            "submit_review_input",
        )
    ] + [(platform, "report")]

    async def attempt(target: tuple[Any, str], arg: Any) -> None:
        handle, name = target
        with contextlib.suppress(WorkflowUpdateFailedError):
            await handle.execute_update(name, arg)

    await explore(attempt, target=st.sampled_from(updates), arg=BODIES)
    # both workflows still answer and still take a legal decision
    await crisis.query(CrisisWorkflow.status)
    await platform.query(PlatformTasksWorkflow.summary)
    try:
        answer = await iru.add_content([url(99)])
        assert answer.accepted_items
    except Rejected as refusal:  # a random body may have de-escalated or closed it: legal
        assert refusal.field == "phase"

"""Limits: a participant over its rate, and a guesser of tokens, are told to wait; a body over
the size limit is refused, whether announced or streamed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import ValidationError
from temporalio.testing import WorkflowEnvironment

from eucp.api.limits import RateLimiter
from eucp.runtime.settings import Settings
from eucp.runtime.shared import SharedState
from tests.conftest import COORDINATOR, FASTBOOK, Protocol, settings_in
from tests.http_steps import Api, issue_tokens, serving
from tests.test_api import api  # noqa: F401  (the fixture)
from worker import running_worker


def test_a_burst_is_allowed_then_the_rate_holds(database_url: str) -> None:
    limiter = RateLimiter(SharedState(database_url), "requests", rate=2.0, burst=3)
    assert [limiter.take("p", now=0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("p", now=0.0) == pytest.approx(0.5)  # one token every half second
    assert limiter.take("p", now=0.5) == 0.0
    assert limiter.take("other", now=0.5) == 0.0  # each key has its own bucket


def test_api_processes_spend_from_one_bucket(database_url: str) -> None:
    """Three processes, each with its own connection to the shared state, allow together
    what one process would: a participant's burst, then its rate."""
    processes = [
        RateLimiter(SharedState(database_url), "requests", rate=1.0, burst=4) for _ in range(3)
    ]
    allowed = [p.take("fastbook", now=10.0) == 0.0 for _ in range(3) for p in processes]
    assert allowed.count(True) == 4
    assert processes[2].take("fastbook", now=11.0) == 0.0, "a second later: one more"
    assert processes[0].take("fastbook", now=11.0) == pytest.approx(1.0)
    other_limit = RateLimiter(processes[0].state, "failed-sign-ins", rate=1.0, burst=1)
    assert other_limit.take("fastbook", now=11.0) == 0.0, "each limit has its own buckets"


async def test_guessing_tokens_is_slowed_down_and_never_logged(
    api: Api,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    guess = "eucp_" + "A" * 43
    async with api.anonymous() as guesser:
        statuses = [
            (await guesser.get("/v1/incidents", headers={"Authorization": f"Bearer {guess}"}))
            for _ in range(12)
        ]
    assert [r.status_code for r in statuses[:10]] == [401] * 10
    assert statuses[-1].status_code == 429
    assert int(statuses[-1].headers["Retry-After"]) >= 1
    logged = caplog.text + capsys.readouterr().out
    assert "authentication failed" in logged
    assert guess not in logged
    # a participant with a valid token is not held up by the guesser
    assert (await api.as_(COORDINATOR.id).get("/v1/incidents")).status_code == 200
    assert (await api.as_(FASTBOOK.id).get("/v1/incidents")).status_code == 200


async def test_a_participant_over_its_request_rate_waits_alone(eucp: Protocol) -> None:
    tight = eucp.settings.model_copy(
        update={"api_requests_per_second": 0.2, "api_request_burst": 3}
    )
    async with serving(tight, eucp.env.client) as base:
        api = Api(base, issue_tokens(tight))
        answers = [await api.as_(FASTBOOK.id).get("/v1/incidents") for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert answers[-1].json()["error"]["field"] == "rate"
        assert int(answers[-1].headers["Retry-After"]) >= 1
        assert (await api.as_(COORDINATOR.id).get("/v1/incidents")).status_code == 200
        await api.close()


async def test_a_streamed_body_over_the_limit_is_refused_as_it_arrives(
    api: Api,  # noqa: F811
) -> None:
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked transfer
        nonlocal sent
        yield b'{"reason": "'
        for _ in range(64):
            sent += 64 * 1024
            yield b"x" * 64 * 1024
        yield b'"}'

    answer = await api.as_(COORDINATOR.id).post(
        "/v1/incidents/inc-any/de-escalation",
        content=chunks(),
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 413, answer.text
    assert answer.json()["error"]["refusal"] == "too_large"
    assert "1048576 bytes" in answer.json()["error"]["rule"]


def test_a_body_limit_past_what_temporal_takes_is_refused_at_start() -> None:
    """What one request brings goes to Temporal in one payload (2 MB at most): a body limit
    over 1 MiB would let a request through that no workflow could take."""
    with pytest.raises(ValidationError) as refused:
        Settings(api_max_body_bytes=4 * 1024 * 1024)
    assert "api_max_body_bytes" in str(refused.value)
    assert "1048576" in str(refused.value)


async def test_a_workflow_worker_keeps_as_many_runs_as_it_is_told(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """`EUCP_WORKFLOW_CACHE` bounds the workflow runs a worker keeps in memory (three action
    days of 200 platforms held 463 MB with the default, 300 MB with 250)."""
    settings = settings_in(tmp_path).model_copy(update={"workflow_cache": 3})
    for role in ("workflows", "all"):
        async with running_worker(dev_env.client, settings, role) as worker:
            assert worker.config()["max_cached_workflows"] == 3

"""The reference platform receiver against real servers: a Temporal dev server with the worker,
the API on uvicorn, and the simulator's own app on uvicorn, talking over loopback HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from eucp.demo.simulator import (
    ACK,
    ACT,
    DECLINE_REASON,
    WEBHOOK_PATH,
    AssignedTask,
    Batch,
    Behaviour,
    Deduper,
    Simulator,
    assigned_tasks,
    batches,
    plan,
    retry_delay,
)
from eucp.protocol.notifications import Notification, NotificationKind
from eucp.protocol.tasks import Outcome, TaskReport
from eucp.runtime.settings import Settings
from eucp.runtime.signing import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
)
from tests.conftest import AUDITOR, COORDINATOR, FASTBOOK, REGISTRY, Protocol, a_report
from tests.http_steps import Api, free_port, issue_tokens, serving
from tests.protocol_steps import ALL_MET, url

SECRET = "fastbook-webhook-secret-for-tests-only"
QUICK = Behaviour(ack_after=0.1, act_after=0.4)


# ---- fixtures ------------------------------------------------------------------------------


@pytest.fixture
def sim_port() -> int:
    return free_port()


@pytest.fixture
def fastbook_webhook(settings: Settings, sim_port: int) -> str:
    """Points fastbook's notifications at the simulator; must run before the worker starts,
    which reads the registry once (so tests request it before `eucp`)."""
    url = f"http://127.0.0.1:{sim_port}{WEBHOOK_PATH}"
    registry = REGISTRY.model_dump(mode="json")
    for entry in registry["participants"]:
        if entry["id"] == FASTBOOK.id:
            # model_dump masks SecretStr; the file holds the secret itself
            entry.update(channels=["webhook", "log"], webhook_url=url, webhook_secret=SECRET)
    settings.registry_path.write_text(json.dumps(registry))
    return url


async def _api(eucp: Protocol) -> AsyncIterator[Api]:
    async with serving(eucp.settings, eucp.env.client) as base:
        client = Api(base, issue_tokens(eucp.settings))
        yield client
        await client.close()


@pytest.fixture
async def api(eucp: Protocol) -> AsyncIterator[Api]:
    """The API with fastbook on the log channel: only the tests' own deliveries reach the
    simulator."""
    async for client in _api(eucp):
        yield client


@pytest.fixture
async def webhook_api(fastbook_webhook: str, eucp: Protocol) -> AsyncIterator[Api]:
    """The API with fastbook's notifications going to the simulator's webhook."""
    async for client in _api(eucp):
        yield client


@asynccontextmanager
async def running(sim: Simulator, port: int) -> AsyncIterator[str]:
    """Serves the simulator's app on loopback until the block ends; yields its webhook URL."""
    server = sim.server("127.0.0.1", port)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn offers no start event)
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
    finally:
        server.should_exit = True
        await task


def fastbook_simulator(api: Api, behaviour: Behaviour = QUICK) -> Simulator:
    return Simulator(FASTBOOK.id, api.base, api.tokens[FASTBOOK.id], SECRET, behaviour)


# ---- steps ---------------------------------------------------------------------------------


async def an_active_incident(api: Api, n: int) -> str:
    """The coordinator reports, assesses and activates over the API with `n` URLs."""
    iru = api.as_(COORDINATOR.id)
    reported = await iru.post("/v1/incidents", json={"report": a_report().model_dump(mode="json")})
    assert reported.status_code == 201, reported.text
    incident = str(reported.json()["incident_id"])
    for path, body in (
        ("assessment", {"assessment": ALL_MET.model_dump(mode="json")}),
        (
            "activation",
            {
                "reason": "all five criteria met",
                "identifiers": [url(i).model_dump(mode="json") for i in range(n)],
            },
        ),
    ):
        answer = await iru.post(f"/v1/incidents/{incident}/{path}", json=body)
        assert answer.status_code == 200, answer.text
    return incident


async def fastbook_tasks(api: Api, incident: str) -> list[dict[str, Any]]:
    page = await api.as_(FASTBOOK.id).get(f"/v1/incidents/{incident}/tasks", params={"limit": 1000})
    assert page.status_code == 200, page.text
    tasks: list[dict[str, Any]] = page.json()["tasks"]
    return tasks


def task_assigned(incident: str, tasks: list[dict[str, Any]], n: int = 1) -> Notification:
    """A task_assigned notification as the platform workflow builds it."""
    assigned = datetime.fromisoformat(tasks[0]["assigned_at"])
    return Notification(
        delivery_id=f"{incident}/{FASTBOOK.id}/n{n}",
        recipient_id=FASTBOOK.id,
        kind=NotificationKind.task_assigned,
        incident_id=incident,
        summary=f"{len(tasks)} new takedown task(s)",
        data={
            "acknowledge_by": (assigned + timedelta(minutes=15)).isoformat(),
            "act_by": (assigned + timedelta(minutes=60)).isoformat(),
            "tasks": [
                {
                    "task_id": t["task_id"],
                    "identifier": t["identifier"],
                    "basis": t["basis"],
                    "act_by": (assigned + timedelta(minutes=60)).isoformat(),
                }
                for t in tasks
            ],
        },
    )


def signed(
    note: Notification, secret: str = SECRET, at: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """The body and headers exactly as the notify activity sends them."""
    body = note.model_dump_json().encode()
    timestamp = int(time.time()) if at is None else at
    return body, {
        "Content-Type": "application/json",
        DELIVERY_HEADER: note.delivery_id,
        EVENT_HEADER: note.kind.value,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, body),
    }


async def deliver(url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.post(url, content=body, headers=headers)


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 30.0) -> None:
    """Polls `check` until it holds; fails after `within` seconds."""
    async with asyncio.timeout(within):
        while not await check():  # noqa: ASYNC110 (polling the API is the point)
            await asyncio.sleep(0.2)


async def states(api: Api, incident: str) -> dict[str, int]:
    view = (await api.as_(FASTBOOK.id).get(f"/v1/incidents/{incident}")).json()
    by_state: dict[str, int] = view["tasks"]["by_state"]
    return by_state


# ---- against real servers ------------------------------------------------------------------


async def test_a_signed_delivery_is_accepted_and_acted_on(api: Api, sim_port: int) -> None:
    incident = await an_active_incident(api, n=3)
    tasks = await fastbook_tasks(api, incident)
    sim = fastbook_simulator(api)
    async with running(sim, sim_port) as url:
        answer = await deliver(url, *signed(task_assigned(incident, tasks)))
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"status": "accepted"}

        async def all_removed() -> bool:
            return await states(api, incident) == {"removed": 3}

        await eventually(all_removed)
    assert (sim.stats.batches_sent, sim.stats.reports_sent) == (2, 6)  # 3 acks, then 3 removals
    decisions = (await api.as_(AUDITOR.id).get(f"/v1/incidents/{incident}/decisions")).json()
    by_fastbook = [
        d["decision"]["kind"] for d in decisions if d["decision"]["actor"]["id"] == "fastbook"
    ]
    assert sorted(by_fastbook) == ["task_acknowledged"] * 3 + ["task_removed"] * 3


async def test_a_bad_signature_or_an_old_replay_is_refused_and_changes_nothing(
    api: Api, sim_port: int
) -> None:
    incident = await an_active_incident(api, n=2)
    note = task_assigned(incident, await fastbook_tasks(api, incident))
    sim = fastbook_simulator(api, Behaviour(ack_after=0.0, act_after=0.1))
    async with running(sim, sim_port) as url:
        body, headers = signed(note)
        wrong_secret = signed(note, secret="not-the-secret")
        old = signed(note, at=int(time.time()) - 301)  # signed correctly, 5 min + 1 s ago
        tampered = body.replace(b'"task_assigned"', b'"tasks_withdrawn"')
        unsigned = {k: v for k, v in headers.items() if k != SIGNATURE_HEADER}
        for what, (b, h) in {
            "wrong secret": wrong_secret,
            "replay older than 5 minutes": old,
            "altered body": (tampered, headers),
            "no signature": (body, unsigned),
        }.items():
            answer = await deliver(url, b, h)
            assert answer.status_code == 401, (what, answer.text)
        await asyncio.sleep(1.0)  # what an accepted delivery would have needed to act
        assert await states(api, incident) == {"assigned": 2}
        assert len(sim.deduper) == 0 and len(sim.schedule) == 0
        assert (sim.stats.deliveries, sim.stats.refused, sim.stats.reports_sent) == (0, 4, 0)

        # a refused delivery leaves its id unused: the genuine one still goes through
        assert (await deliver(url, *signed(note))).status_code == 200
        assert sim.stats.deliveries == 1


async def test_a_repeated_delivery_id_is_answered_but_not_acted_on_twice(
    api: Api, sim_port: int
) -> None:
    incident = await an_active_incident(api, n=3)
    note = task_assigned(incident, await fastbook_tasks(api, incident))
    sim = fastbook_simulator(api)
    async with running(sim, sim_port) as url:
        first = await deliver(url, *signed(note))
        retried = await deliver(url, *signed(note))  # eucp's retry: new timestamp, same id
        assert (first.status_code, retried.status_code) == (200, 200)
        assert retried.json() == {"status": "duplicate"}

        async def all_removed() -> bool:
            return await states(api, incident) == {"removed": 3}

        await eventually(all_removed)
        await asyncio.sleep(QUICK.act_after + 0.5)  # anything scheduled twice would be sent
    assert (sim.stats.deliveries, sim.stats.duplicates) == (1, 1)
    assert (sim.stats.batches_sent, sim.stats.reports_sent, sim.stats.reports_dropped) == (2, 6, 0)


async def test_end_to_end_the_simulator_answers_every_fastbook_task(
    webhook_api: Api, fastbook_webhook: str, sim_port: int
) -> None:
    api = webhook_api
    sim = fastbook_simulator(api, Behaviour(ack_after=0.2, act_after=0.6))
    async with running(sim, sim_port) as url:
        assert url == fastbook_webhook
        incident = await an_active_incident(api, n=5)

        async def all_removed() -> bool:
            return await states(api, incident) == {"removed": 5}

        await eventually(all_removed)
    assert sim.stats.by_kind["task_assigned"] == 1
    assert sim.stats.by_kind["phase_changed"] >= 1  # reported, assessing, active
    assert (sim.stats.batches_sent, sim.stats.reports_sent) == (2, 10)
    assert sim.stats.refused == 0
    # the other platforms are on the log channel and untouched
    slowtube = await api.as_("slowtube").get(f"/v1/incidents/{incident}")
    assert slowtube.json()["tasks"]["by_state"] == {"assigned": 5}


async def test_end_to_end_declines_with_a_reason_and_withdrawn_tasks_are_not_answered(
    webhook_api: Api, sim_port: int
) -> None:
    api = webhook_api
    sim = fastbook_simulator(api, Behaviour(ack_after=0.1, act_after=3.0, decline_rate=1.0))
    async with running(sim, sim_port):
        incident = await an_active_incident(api, n=3)

        async def acknowledged() -> bool:
            return await states(api, incident) == {"acknowledged": 3}

        await eventually(acknowledged)
        withdrawn = await api.as_(COORDINATOR.id).post(
            f"/v1/incidents/{incident}/withdrawals",
            json={"items": [1], "reason": "the URL is a news report"},
        )
        assert withdrawn.status_code == 200, withdrawn.text

        async def settled() -> bool:
            return await states(api, incident) == {"withdrawn": 1, "declined": 2}

        await eventually(settled)
    assert sim.stats.by_kind["tasks_withdrawn"] == 1
    # the withdrawn task's pending answer was cancelled, not sent and refused
    assert (sim.stats.reports_sent, sim.stats.reports_dropped) == (3 + 2, 0)
    tasks = {t["task_id"]: t for t in await fastbook_tasks(api, incident)}
    assert (
        tasks["fastbook-000002"]["reason"] == tasks["fastbook-000003"]["reason"] == DECLINE_REASON
    )


def test_the_process_stops_cleanly_on_sigterm() -> None:
    port = free_port()
    env = {**os.environ, "EUCP_TOKEN": "eucp_unused", "EUCP_WEBHOOK_SECRET": SECRET}
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "eucp.demo.simulator", "--platform-id", FASTBOOK.id),
            *("--api", "http://127.0.0.1:9", "--port", str(port), "--log-text"),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                assert time.monotonic() < deadline, "the simulator did not start"
                time.sleep(0.1)
        assert health.json()["platform_id"] == FASTBOOK.id
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, out.decode()
    assert b"simulator_stopped" in out


# ---- the pure parts ------------------------------------------------------------------------

NOW = datetime(2026, 3, 15, 2, 0, tzinfo=UTC)
ORDER = {"kind": "removal_order"}


def test_declines_are_voluntary_only_and_fixed_by_the_seed() -> None:
    tasks = [AssignedTask(f"fastbook-{i:06d}", i % 2 == 0, None) for i in range(1, 401)]
    half = Behaviour(decline_rate=0.5, seed=7)

    def declined(b: Behaviour) -> set[str]:
        return {
            s.task_id for s in plan("inc", tasks, b, NOW) if s.report.outcome is Outcome.declined
        }

    chosen = declined(half)
    assert chosen == declined(half)  # deterministic
    backwards = plan("inc", list(reversed(tasks)), half, NOW)
    assert {s.task_id for s in backwards if s.report.outcome is Outcome.declined} == chosen
    assert chosen != declined(Behaviour(decline_rate=0.5, seed=8))
    assert all(t.voluntary for t in tasks if t.task_id in chosen)  # removal orders never
    assert 60 < len(chosen) < 140  # about half of the 200 voluntary tasks
    steps = plan("inc", tasks, half, NOW)
    assert all(s.report.reason for s in steps if s.report.outcome is Outcome.declined)
    assert declined(Behaviour(decline_rate=1.0)) == {t.task_id for t in tasks if t.voluntary}


def test_plan_timing_and_missed_deadlines() -> None:
    act_by = NOW + timedelta(minutes=60)
    task = AssignedTask("fastbook-000001", True, act_by)
    normal = plan("inc", [task], Behaviour(ack_after=2, act_after=10), NOW)
    assert [(s.stage, s.due - NOW, s.report.outcome) for s in normal] == [
        (ACK, timedelta(seconds=2), Outcome.acknowledged),
        (ACT, timedelta(seconds=10), Outcome.removed),
    ]
    late = plan("inc", [task], Behaviour(miss_sla=True, late_by=30, outcome=Outcome.not_found), NOW)
    assert [(s.stage, s.due, s.report.outcome) for s in late] == [
        (ACT, act_by + timedelta(seconds=30), Outcome.not_found)
    ]
    # an acknowledgement that would come after the action is not sent
    assert [s.stage for s in plan("inc", [task], Behaviour(ack_after=5, act_after=5), NOW)] == [ACT]


def test_batches_hold_250_tasks_and_acknowledgements_go_first() -> None:
    tasks = [AssignedTask(f"fastbook-{i:06d}", True, None) for i in range(1, 601)]
    steps = plan("inc", tasks, Behaviour(ack_after=0, act_after=0.0001), NOW)
    sent = batches(steps)
    assert [len(b.reports) for b in sent] == [250, 250, 100, 250, 250, 100]
    assert {r.outcome for b in sent[:3] for r in b.reports} == {Outcome.acknowledged}
    for b in sent:
        assert len({r.task_id for r in b.reports}) == len(b.reports)  # one report per task
    two = plan("a", tasks[:1], QUICK, NOW) + plan("b", tasks[:1], QUICK, NOW)
    assert [(b.incident_id, b.reports[0].outcome) for b in batches(two)] == [
        ("a", Outcome.acknowledged),
        ("b", Outcome.acknowledged),
        ("a", Outcome.removed),
        ("b", Outcome.removed),
    ]


def test_dedupe_and_notification_parsing() -> None:
    seen = Deduper(capacity=2)
    assert [seen.first_time(i) for i in ("a", "a", "b", "c", "a")] == [
        True,
        False,
        True,
        True,
        True,
    ]
    data = {
        "act_by": "2026-03-15T03:00:00Z",
        "tasks": [
            {"task_id": "fastbook-000001", "basis": {"kind": "voluntary"}},
            {"task_id": "fastbook-000002", "basis": ORDER, "act_by": "2026-03-15T02:30:00Z"},
            {"no": "task id"},
        ],
    }
    assert assigned_tasks(data) == [
        AssignedTask("fastbook-000001", True, datetime(2026, 3, 15, 3, tzinfo=UTC)),
        AssignedTask("fastbook-000002", False, datetime(2026, 3, 15, 2, 30, tzinfo=UTC)),
    ]


def test_retry_timing() -> None:
    assert retry_delay(429, 3.0, attempt=0) == 3.0  # Retry-After is honoured
    assert retry_delay(429, 3600.0, attempt=0) == 30.0  # within reason
    assert [retry_delay(503, None, attempt=a) for a in range(4)] == [0.5, 1.0, 2.0, 4.0]
    assert retry_delay(None, None, attempt=10) == 30.0  # unreachable: capped backoff
    assert retry_delay(409, None, attempt=0) is None
    assert retry_delay(422, None, attempt=0) is None


async def test_the_reporter_retries_429_and_5xx_and_drops_a_refused_report() -> None:
    """The retry rules against a scripted API (httpx's mock transport): 429 with Retry-After,
    then 503, then a 409 naming one report, then success for the rest."""
    seen: list[tuple[float, list[str], str]] = []
    script = [
        httpx.Response(429, headers={"Retry-After": "1"}, json={"error": {"refusal": "busy"}}),
        httpx.Response(503),
        httpx.Response(
            409,
            json={
                "error": {"field": "reports[1].outcome", "rule": "withdrawn", "refusal": "conflict"}
            },
        ),
        httpx.Response(200, json={"changed": ["t-1", "t-3"], "unchanged": [], "refused": {}}),
    ]

    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append(
            (
                time.monotonic(),
                [r["task_id"] for r in body["reports"]],
                request.headers["Idempotency-Key"],
            )
        )
        return script[len(seen) - 1]

    sim = Simulator(
        FASTBOOK.id,
        "http://api.test",
        "token",
        SECRET,
        transport=httpx.MockTransport(answer),
        backoff_base=0.2,
    )
    reports = [TaskReport(task_id=f"t-{i}", outcome=Outcome.removed) for i in (1, 2, 3)]
    async with sim.app.router.lifespan_context(sim.app):
        await sim.send(Batch("inc-1", reports))
    assert [ids for _, ids, _ in seen] == [["t-1", "t-2", "t-3"]] * 3 + [["t-1", "t-3"]]
    assert seen[1][0] - seen[0][0] >= 0.95  # waited Retry-After: 1
    assert seen[2][0] - seen[1][0] >= 0.35  # backoff 0.2 * 2
    assert seen[0][2] == seen[1][2] == seen[2][2] != seen[3][2]  # same batch, same key
    assert (sim.stats.batches_sent, sim.stats.reports_sent, sim.stats.reports_dropped) == (1, 2, 1)

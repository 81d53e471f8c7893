"""Many API processes, one behaviour: the limits, the Update line, merged sightings and the
console's sessions are shared, so three processes allow, order and remember what one would.

The last test runs `eucp api --workers 3` (three uvicorn processes on one port, the kernel
handing each connection to one of them) under a load that one process's limits refuse.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from eucp.protocol.actions import Action
from eucp.protocol.decisions import DecisionKind
from eucp.protocol.state import Answer
from eucp.runtime.shared import SharedState
from eucp.runtime.stack import Stack, free_port
from eucp.service.incidents import Incidents
from eucp.service.update_queue import LEASE, UpdateQueue
from tests.conftest import COORDINATOR, FASTBOOK, SLOWTUBE, Protocol, settings_in
from tests.http_steps import issue_tokens
from tests.protocol_steps import VIDEO, activated, url

PROCESSES = 3


async def test_a_workflow_has_no_more_updates_in_flight_than_its_limit_over_all_processes(
    database_url: str,
) -> None:
    processes = [UpdateQueue(SharedState(database_url), in_flight=2) for _ in range(PROCESSES)]
    in_flight, most, order = 0, 0, []

    async def update(n: int) -> None:
        nonlocal in_flight, most
        async with processes[n % PROCESSES].slot("inc-1"):
            in_flight += 1
            most = max(most, in_flight)
            order.append(n)
            await asyncio.sleep(0.03)
            in_flight -= 1

    await asyncio.gather(*(update(n) for n in range(12)))
    assert most == 2, "each process alone would allow 2, three together 6"
    assert sorted(order) == list(range(12))


async def test_the_tickets_of_a_dead_process_free_themselves_when_their_lease_ends(
    database_url: str,
) -> None:
    dead, alive = SharedState(database_url), UpdateQueue(SharedState(database_url), in_flight=2)
    now = time.time()
    for _ in range(2):  # a killed process's two tickets, their lease already past
        dead.enter("inc-1", expires=now - 1, now=now - LEASE)
    async with asyncio.timeout(LEASE / 3):  # well before a live lease would end
        async with alive.slot("inc-1"):
            pass


async def test_two_processes_merging_sightings_for_one_incident_lose_and_double_nothing(
    eucp: Protocol,
) -> None:
    incident = await eucp.report()
    await activated(eucp.incidents.as_participant(incident, COORDINATOR), VIDEO)
    # a second API process: its own merger and its own connection to the shared state
    other = Incidents(eucp.env.client, eucp.settings, SharedState(eucp.settings.shared_state_url))
    processes = [eucp.incidents, other]

    async def sighting(n: int, through: Incidents) -> Answer:
        finder = through.as_participant(incident, [FASTBOOK, SLOWTUBE][n % 2], f"burst-{n}")
        return await finder.act(Action.report_sightings, identifiers=[url(n)])

    answers = await asyncio.gather(*(sighting(n, processes[n % 2]) for n in range(40)))
    # each retried through the process that did not take it first
    again = await asyncio.gather(*(sighting(n, processes[(n + 1) % 2]) for n in range(40)))

    items = [no for a in answers for no in a.accepted_items]
    assert sorted(items) == list(range(2, 42)), "every URL once, numbered after the video"
    decisions = [d for a in answers for d in a.decisions]
    assert len(set(decisions)) == 40
    assert again == answers, "a retry through the other process: the first answer"
    rows = eucp.ledger.rows(incident)
    sighted = [
        r.decision.decision_id for r in rows if r.decision.kind is DecisionKind.sighting_reported
    ]
    assert sorted(sighted) == sorted(decisions)


# ---- three processes of `eucp api` -------------------------------------------------------


@pytest.fixture(scope="module")
def three_processes(
    dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path, dict[str, str]]]:
    """`eucp api --workers 3` with tight limits: 10 requests per participant, then one a
    minute; 10 failed sign-ins per address, then one a minute. The tests of this module spend
    different budgets: a platform's and guessers' (for the limits), the coordinator's (for the
    console)."""
    tmp_path = tmp_path_factory.mktemp("three-processes")
    settings = settings_in(tmp_path)
    tokens = issue_tokens(settings)
    port = free_port()
    env = {
        "EUCP_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "EUCP_TASK_QUEUE": settings.task_queue,
        "EUCP_LEDGER_URL": settings.ledger_url,
        "EUCP_REGISTRY_PATH": str(settings.registry_path),
        "EUCP_TOKENS_PATH": str(settings.tokens_path),
        "EUCP_VAR_DIR": str(tmp_path),
        "EUCP_API_PORT": str(port),
        "EUCP_API_REQUESTS_PER_SECOND": str(1 / 60),
        "EUCP_API_REQUEST_BURST": "10",
        "EUCP_API_FAILED_AUTH_PER_MINUTE": "1",
        "EUCP_LOG_JSON": "true",
    }
    eucp_command = str(Path(sys.executable).with_name("eucp"))
    with Stack(tmp_path / "logs", env) as stack:
        stack.start("api", [eucp_command, "api", "--workers", str(PROCESSES)])
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while not _answering(base):
            stack.check()
            assert time.monotonic() < deadline, "the API did not start"
            time.sleep(0.2)
        yield base, tmp_path / "logs" / "api.log", tokens


def _answering(base: str) -> bool:
    try:
        return httpx.get(f"{base}/v1/openapi.json", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


async def _each_on_its_own_connection(
    base: str, count: int, path: str, headers: dict[str, str]
) -> list[int]:
    """`count` requests at once, each on a new connection, so that the kernel hands them to
    whichever process accepts first."""

    async def one() -> int:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            return (await client.get(path, headers=headers)).status_code

    return list(await asyncio.gather(*(one() for _ in range(count))))


def _answered_by(log: Path, participant: str | None) -> set[int]:
    """The processes whose access log lines name `participant`."""
    processes = set()
    for line in log.read_text().splitlines():
        if not line.startswith("{"):
            continue
        entry = json.loads(line)
        if entry.get("event") == "request" and entry.get("participant") == participant:
            processes.add(entry["process"])
    return processes


async def test_three_api_processes_keep_one_processs_limits(
    three_processes: tuple[str, Path, dict[str, str]],
) -> None:
    base, log, tokens = three_processes
    # a platform sends 30 requests at once: one process would take 10 of them
    platform = {"Authorization": f"Bearer {tokens[FASTBOOK.id]}"}
    statuses = await _each_on_its_own_connection(base, 30, "/v1/incidents", platform)
    assert sorted(statuses) == [200] * 10 + [429] * 20
    # a guesser of tokens fails 10 times, then is told to wait, whichever process it reaches
    guess = {"Authorization": "Bearer eucp_" + "A" * 43}
    statuses = await _each_on_its_own_connection(base, 30, "/v1/incidents", guess)
    assert sorted(statuses) == [401] * 10 + [429] * 20
    # a burst may all be accepted by one process: requests one after another, until another
    # process has answered the platform too (each refused, as its budget is spent)
    for _ in range(20):
        if len(_answered_by(log, FASTBOOK.id)) > 1:
            break
        assert await _each_on_its_own_connection(base, 1, "/v1/incidents", platform) == [429]
    assert len(_answered_by(log, FASTBOOK.id)) > 1, "the platform was answered by two processes"


async def test_a_console_session_works_whichever_process_answers(
    three_processes: tuple[str, Path, dict[str, str]],
) -> None:
    base, log, tokens = three_processes
    async with httpx.AsyncClient(base_url=base, timeout=30) as browser:
        form = await browser.get("/console/sign-in")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf is not None
        signed_in = await browser.post(
            "/console/sign-in", data={"token": tokens[COORDINATOR.id], "csrf": csrf.group(1)}
        )
        assert signed_in.status_code == 303, signed_in.text
        cookies = dict(browser.cookies)
    # a new connection each time, as a browser reopening it would, until a process other than
    # the one that signed it in has served a page (at most 9: the coordinator's burst is 10)
    for _ in range(9):
        async with httpx.AsyncClient(base_url=base, timeout=30, cookies=cookies) as browser:
            page = await browser.get("/console/incidents")
        assert page.status_code == 200, "never sent back to sign in"
        if len(_answered_by(log, COORDINATOR.id)) > 1:
            break
    assert len(_answered_by(log, COORDINATOR.id)) > 1, "pages came from more than one process"

"""A worker dies mid-takedown and a new one takes over: nothing is lost, nothing is doubled.

The worker runs as a real process, as in production. A coordinator activates a large takedown,
the platforms acknowledge and remove their tasks in bulk, and the worker is killed (SIGKILL, no
goodbye) the moment one bulk report is in the ledger but not yet answered, with the rest in
flight. A new worker starts; the platforms resend whatever did not come back. The crisis then
de-escalates, is reviewed and closes, and the ledger holds every decision exactly once in a
chain that verifies.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from eucp.protocol.actions import Action
from eucp.protocol.decisions import DecisionKind
from eucp.protocol.refusal import Refusal
from eucp.protocol.state import ReportAnswer, TaskQuery
from eucp.protocol.tasks import Outcome, TaskReport, TaskState
from eucp.runtime.ledger import Ledger, open_ledger
from eucp.runtime.settings import Settings
from eucp.service.incidents import Incidents, Participation
from tests.conftest import CHOOSY, COORDINATOR, FASTBOOK, PLATFORMS, REGISTRY, SLOWTUBE, a_report
from tests.protocol_steps import ALL_MET, assigned, url

REPO_ROOT = Path(__file__).resolve().parent.parent
ITEMS = 300  # URLs in the activation: one task per URL on each of the three platforms
BATCH = 100  # reports per bulk Update
STARTUP = 30.0  # seconds a worker process may take to start polling
TAKEDOWN = 90.0  # seconds the whole takedown may take, crash and recovery included
RESENDS = 3  # times a platform sends a bulk report again after its Update raised
ACKNOWLEDGED = DecisionKind.task_acknowledged
REMOVED = DecisionKind.task_removed
ACTIVATION = [DecisionKind.reported, DecisionKind.assessed, DecisionKind.activated]
CRISIS_KINDS = [
    *ACTIVATION,
    DecisionKind.de_escalated,
    DecisionKind.review_started,
    DecisionKind.closed,
]


class WorkerProcess:
    """One `python -m worker` process; its log lines are kept for the report on failure."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process) -> None:
        self.name = name
        self.proc = proc
        self.lines: list[str] = []
        self._polling = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:  # always drained, so the worker never blocks on it
            line = raw.decode(errors="replace").rstrip()
            self.lines.append(line)
            if "worker started" in line:
                self._polling.set()

    async def polling(self) -> None:
        """Returns once the worker says it polls its task queue; fails if it died first."""
        exited = asyncio.create_task(self.proc.wait())
        started = asyncio.create_task(self._polling.wait())
        try:
            await asyncio.wait(
                {exited, started}, timeout=STARTUP, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            exited.cancel()
            started.cancel()
        assert self._polling.is_set(), f"{self.name} did not start:\n" + "\n".join(self.lines)

    def kill(self) -> None:
        """SIGKILL, by pid: no graceful shutdown, no chance to finish in-flight tasks."""
        if self.proc.returncode is None:
            os.kill(self.pid, signal.SIGKILL)

    async def reap(self) -> None:
        self.kill()
        await self.proc.wait()
        await self._reader


StartWorker = Callable[[str], Awaitable[WorkerProcess]]


@pytest.fixture
async def start_worker(
    dev_env: WorkflowEnvironment, settings: Settings
) -> AsyncIterator[StartWorker]:
    """Starts worker processes on the test's task queue and ledger; kills them all at the end."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EUCP_")}
    env |= {
        "EUCP_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "EUCP_TASK_QUEUE": settings.task_queue,
        "EUCP_LEDGER_URL": settings.ledger_url,
        "EUCP_REGISTRY_PATH": str(settings.registry_path),
        "EUCP_LOG_JSON": "false",
        "PYTHONUNBUFFERED": "1",
    }
    started: list[WorkerProcess] = []

    async def start(name: str) -> WorkerProcess:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "worker",
            cwd=REPO_ROOT,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        worker = WorkerProcess(name, proc)
        started.append(worker)
        await worker.polling()
        return worker

    try:
        yield start
    finally:
        for worker in started:
            await worker.reap()
            print(f"---- {worker.name} (pid {worker.pid}), last lines ----")  # shown on failure
            print("\n".join(worker.lines[-40:]))


class Takedown:
    """One platform's reports on a share of its tasks: acknowledged, then removed.

    A bulk report whose Update raised (the worker died under it) is sent again; reports
    already applied come back `unchanged`, so a resend never applies them twice.
    """

    def __init__(self, platform: Participation, task_ids: list[str]) -> None:
        self.platform = platform
        self.task_ids = task_ids
        self.answers: list[tuple[Outcome, ReportAnswer]] = []
        self.resent: list[str] = []

    async def report(self, outcome: Outcome) -> None:
        reports = [TaskReport(task_id=t, outcome=outcome) for t in self.task_ids]
        for attempt in range(1, RESENDS + 2):
            try:
                answer = await self.platform.report_tasks(reports)
            except Refusal:
                raise
            except Exception as err:  # the worker died under this Update: send it again
                if attempt > RESENDS:
                    raise
                self.resent.append(f"{outcome}: {type(err).__name__}: {err}")
                await asyncio.sleep(0.5)
            else:
                self.answers.append((outcome, answer))
                return

    async def run(self) -> None:
        await self.report(Outcome.acknowledged)
        await self.report(Outcome.removed)


async def a_report_in_the_ledger_but_unanswered(
    ledger: Ledger, incident: str, takedowns: list[Takedown]
) -> None:
    """Returns once the ledger holds more task decisions than the platforms have answers for."""
    while True:
        answered = sum(len(t.answers) for t in takedowns)
        if ledger.head(incident).seq > len(ACTIVATION) + BATCH * answered:
            return
        await asyncio.sleep(0.002)


@pytest.mark.timeout(180)
async def test_a_worker_killed_mid_takedown_loses_and_doubles_no_decision(
    dev_env: WorkflowEnvironment, settings: Settings, start_worker: StartWorker
) -> None:
    first_worker = await start_worker("first worker")
    incidents = Incidents(dev_env.client, settings)
    incident = f"inc-{uuid.uuid4().hex[:10]}"
    await incidents.report(incident, a_report(), REGISTRY.public())

    # the coordinator assesses (the first Update: proof the worker process is serving) and
    # activates a takedown of 300 URLs on each of the three platforms
    iru = incidents.as_participant(incident, COORDINATOR)
    await asyncio.wait_for(iru.act(Action.assess, assessment=ALL_MET), STARTUP)
    activated = await iru.act(
        Action.activate,
        reason="all five criteria met",
        identifiers=[url(n) for n in range(1, ITEMS + 1)],
    )
    assert activated.accepted_items == list(range(1, ITEMS + 1))
    await assigned(iru)

    # each platform reads its tasks and reports on them in bulk, 100 at a time, all at once
    takedowns: list[Takedown] = []
    for actor in (FASTBOOK, SLOWTUBE, CHOOSY):
        platform = incidents.as_participant(incident, actor)
        page = await platform.my_tasks(TaskQuery(limit=1000))
        assert page.total == ITEMS
        tasks = [t.task_id for t in page.tasks]
        takedowns += [Takedown(platform, tasks[i : i + BATCH]) for i in range(0, ITEMS, BATCH)]
    reporting = asyncio.gather(*(t.run() for t in takedowns))
    try:
        # the worker dies the moment a bulk report is in the ledger but not yet answered
        with open_ledger(settings.ledger_url) as ledger:
            await asyncio.wait_for(
                a_report_in_the_ledger_but_unanswered(ledger, incident, takedowns), TAKEDOWN
            )
            first_worker.kill()
        answered_at_kill = sum(len(t.answers) for t in takedowns)
        await first_worker.reap()
        assert answered_at_kill < 2 * len(takedowns), "the takedown was over before the crash"

        # a new worker takes over; the platforms resend what did not come back
        await start_worker("second worker")
        await asyncio.wait_for(reporting, TAKEDOWN)
    finally:
        reporting.cancel()  # a no-op once done; otherwise no report outlives the test

    # the coordinator winds the crisis down
    await iru.act(Action.de_escalate, reason="re-upload attempts fell for six hours")
    await iru.act(Action.start_review)
    await iru.act(Action.close, reason="debrief held")
    result = await asyncio.wait_for(incidents.result(incident), TAKEDOWN)

    # every task was removed, and each platform saw each report applied once
    for platform_id in PLATFORMS:
        assert result.platforms[platform_id].by_state == {TaskState.removed: ITEMS}
    answers = [(outcome, a) for takedown in takedowns for outcome, a in takedown.answers]
    applied = Counter((outcome, t) for outcome, a in answers for t in a.changed)
    resent = [line for takedown in takedowns for line in takedown.resent]
    assert max(applied.values()) == 1, f"a resent report was applied twice; resent: {resent}"
    assert [a.refused for _, a in answers if a.refused] == []

    # the ledger holds each decision exactly once, in a chain that verifies
    with open_ledger(settings.ledger_url) as ledger:
        chain = ledger.verify(incident)
        rows = ledger.rows(incident)
    assert chain.ok, chain.problem
    decisions = [r.decision for r in rows]
    ids = Counter(d.decision_id for d in decisions)
    assert [i for i, n in ids.items() if n > 1] == []
    kinds = Counter(d.kind for d in decisions)
    assert {k: kinds[k] for k in CRISIS_KINDS} == dict.fromkeys(CRISIS_KINDS, 1)
    assert kinds[ACKNOWLEDGED] == kinds[REMOVED] == len(PLATFORMS) * ITEMS
    assert sum(kinds.values()) == len(CRISIS_KINDS) + 2 * len(PLATFORMS) * ITEMS
    task_rows = [r for r in rows if "task_id" in r.decision.inputs]
    per_task = Counter((r.decision.inputs["task_id"], r.decision.kind) for r in task_rows)
    assert [key for key, n in per_task.items() if n > 1] == []
    seq = {(r.decision.inputs["task_id"], r.decision.kind): r.seq for r in task_rows}
    removed_first = [
        task for task, kind in seq if kind is REMOVED and seq[task, kind] < seq[task, ACKNOWLEDGED]
    ]
    assert removed_first == [], "tasks removed before they were acknowledged"

    # and none was lost: each workflow's decision numbers run 1, 2, 3, ... without a gap
    numbers: dict[str, list[int]] = {}
    for decision_id in ids:
        scope, number = decision_id.removeprefix(f"{incident}/").rsplit("/", 1)
        numbers.setdefault(scope, []).append(int(number))
    assert {scope: sorted(ns) for scope, ns in numbers.items()} == {
        scope: list(range(1, len(ns) + 1)) for scope, ns in numbers.items()
    }
    assert len(numbers["crisis"]) == result.decisions

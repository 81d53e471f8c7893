"""Benchmark 1: one crisis, N identifiers x P platforms, from activation until every task is
acknowledged and removed through the API's bulk calls by simulated platform processes."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from dataclasses import dataclass, field

from bench.env import COORDINATOR, QUIET_SLA, World, start_simulators, takedown_platform
from eucp.client import ApiClient
from eucp.protocol.actions import Action
from eucp.protocol.identifiers import UrlIdentifier
from eucp.protocol.incident import Assessment, Criterion, CriterionStatus, IncidentReport
from eucp.protocol.state import IncidentStatus
from eucp.protocol.tasks import RESOLVED
from eucp.runtime.devserver import wait_for_port

MET = Criterion(status=CriterionStatus.met, evidence="benchmark")
ASSESSMENT = Assessment(**dict.fromkeys(Assessment.model_fields, MET))  # every criterion met


def a_report(title: str) -> IncidentReport:
    from datetime import UTC, datetime

    return IncidentReport(
        title=title,
        event_started_at=datetime.now(UTC),
        event_place="outside the EU",
        reporter=COORDINATOR,
    )


@dataclass
class CrisisResult:
    incident_id: str
    identifiers: int
    platforms: int
    tasks: int
    activate_seconds: float = 0.0
    seconds: float = 0.0
    acknowledged: int = 0
    removed: int = 0
    all_resolved: bool = False
    progress: list[tuple[float, int]] = field(default_factory=list)

    @property
    def tasks_per_s(self) -> float:
        return self.tasks / self.seconds if self.seconds else 0.0


def count(ledger: sqlite3.Connection, incident_id: str, kind: str) -> int:
    row = ledger.execute(
        "SELECT count(*) FROM decisions WHERE incident_id = ? AND kind = ?", (incident_id, kind)
    ).fetchone()
    return int(row[0])


async def prepare(world: World, incident_id: str, title: str) -> ApiClient:
    """Reports and assesses an incident through the API; returns the coordinator's client."""
    iru = ApiClient(world.api_url, world.tokens[COORDINATOR], timeout=120.0)
    await iru.report(a_report(title), incident_id=incident_id, sla=QUIET_SLA)
    await iru.act(incident_id, Action.assess, assessment=ASSESSMENT)
    return iru


async def run(world: World, incident_id: str, give_up_after: float = 300.0) -> CrisisResult:
    """One crisis; the simulated platforms are started with the first and serve every one."""
    opts = world.options
    platforms = [takedown_platform(n) for n in range(opts.platforms)]
    if f"platform-{platforms[0]}" not in world.pids:
        start_simulators(world, platforms, opts.act_after)
        for pid in platforms:
            await wait_for_port("127.0.0.1", world.takedown_hooks[pid][0])
    world.stack.check()
    tasks = opts.identifiers * opts.platforms
    result = CrisisResult(incident_id, opts.identifiers, opts.platforms, tasks)
    identifiers = [
        UrlIdentifier(value=f"https://video.example/watch?v=bench-{n}")
        for n in range(opts.identifiers)
    ]
    iru = await prepare(world, incident_id, "Benchmark crisis")
    ledger = sqlite3.connect(world.ledger_path)
    try:
        start = time.perf_counter()
        for first in range(0, len(identifiers), 1000):  # one activation, then add_content
            batch = identifiers[first : first + 1000]
            if first == 0:
                await iru.act(
                    incident_id,
                    Action.activate,
                    reason="benchmark",
                    identifiers=batch,
                    platforms=platforms,
                )
            else:
                await iru.act(incident_id, Action.add_content, identifiers=batch)
        result.activate_seconds = time.perf_counter() - start
        while True:
            removed = count(ledger, incident_id, "task_removed")
            elapsed = time.perf_counter() - start
            result.progress.append((round(elapsed, 2), removed))
            if removed >= tasks:
                break
            if elapsed > give_up_after:
                raise TimeoutError(f"{removed} of {tasks} tasks removed after {give_up_after}s")
            world.stack.check()
            await asyncio.sleep(0.1)
        result.seconds = time.perf_counter() - start
        result.acknowledged = count(ledger, incident_id, "task_acknowledged")
        result.removed = removed
        status = await iru.status(incident_id)
        assert isinstance(status, IncidentStatus)
        result.all_resolved = all(
            s.tasks == opts.identifiers and s.by_state.keys() <= RESOLVED
            for s in status.platforms.values()
        )
    finally:
        ledger.close()
        await iru.aclose()
    return result

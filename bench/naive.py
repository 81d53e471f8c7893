"""The naive baseline on the same server: its own worker process and task queue, and a driver
that sends one Update per task per step (acknowledged, then removed), each writing one ledger
row in its own activity. Up to 8 Updates are in flight per workflow, as the API allows."""

from __future__ import annotations

import asyncio
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from temporalio import activity
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from bench.naive_models import NaiveDecision, NaiveStep
from bench.naive_workflow import NaiveTasksWorkflow
from eucp.protocol.decisions import Decision, DecisionKind
from eucp.protocol.participants import Actor, ParticipantKind
from eucp.runtime.ledger import Ledger, open_ledger

TASK_QUEUE = "eucp-bench-naive"
IN_FLIGHT = 8
KINDS = {"acknowledged": DecisionKind.task_acknowledged, "removed": DecisionKind.task_removed}


class NaiveActivities:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    @activity.defn(name="naive_record")
    def record(self, d: NaiveDecision) -> int:
        decision = Decision(
            decision_id=f"{d.incident_id}/{d.platform_id}/{d.task_id}/{d.outcome}",
            incident_id=d.incident_id,
            actor=Actor(id=d.platform_id, kind=ParticipantKind.platform),
            kind=KINDS[d.outcome],
            inputs={"task_id": d.task_id},
            at=d.at,
        )
        return self.ledger.record([decision]).new


async def serve() -> None:
    """The naive worker: workflow and ledger activity in one process, as the naive design has."""
    client = await Client.connect(
        os.environ["EUCP_TEMPORAL_ADDRESS"], data_converter=pydantic_data_converter
    )
    ledger = open_ledger(os.environ["EUCP_LEDGER_URL"])
    with ThreadPoolExecutor(max_workers=8) as executor:
        worker = Worker(
            client,
            task_queue=TASK_QUEUE,
            workflows=[NaiveTasksWorkflow],
            activities=[NaiveActivities(ledger).record],
            activity_executor=executor,
        )
        await worker.run()


@dataclass
class NaiveResult:
    tasks: int
    steps: int
    seconds: float

    @property
    def tasks_per_s(self) -> float:
        return self.tasks / self.seconds if self.seconds else 0.0


async def drive(client: Client, incident_id: str, platforms: int, tasks: int) -> NaiveResult:
    """`tasks` tasks spread over `platforms` workflows; each task acknowledged then removed."""
    per = max(1, tasks // platforms)
    handles = [
        await client.start_workflow(
            NaiveTasksWorkflow.run,
            args=[incident_id, f"p{n:02d}"],
            id=f"{incident_id}.naive.p{n:02d}",
            task_queue=TASK_QUEUE,
        )
        for n in range(platforms)
    ]

    async def platform(n: int) -> None:
        gate = asyncio.Semaphore(IN_FLIGHT)
        handle = handles[n]

        async def task(t: int) -> None:
            async with gate:
                for outcome in ("acknowledged", "removed"):
                    step = NaiveStep(task_id=f"p{n:02d}-{t}", outcome=outcome)
                    await handle.execute_update(NaiveTasksWorkflow.report, step)

        await asyncio.gather(*(task(t) for t in range(per)))

    start = time.perf_counter()
    await asyncio.gather(*(platform(n) for n in range(platforms)))
    seconds = time.perf_counter() - start
    for handle in handles:
        await handle.signal(NaiveTasksWorkflow.finish)
    return NaiveResult(tasks=per * platforms, steps=2 * per * platforms, seconds=seconds)


if __name__ == "__main__":
    asyncio.run(serve())

"""Benchmark 3: every run of every workflow of an incident, its event count and byte size."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio.api.history.v1 import History
from temporalio.client import Client, WorkflowHistory


@dataclass
class RunSize:
    workflow_id: str
    run_id: str
    events: int
    bytes: int


async def fetch(client: Client, incident_id: str) -> list[tuple[str, WorkflowHistory]]:
    """The histories of the incident's crisis and platform workflows, every run (with its id)."""
    histories = []
    async for wf in client.list_workflows():
        if wf.id == incident_id or wf.id.startswith(f"{incident_id}.platform."):
            handle = client.get_workflow_handle(wf.id, run_id=wf.run_id)
            histories.append((wf.run_id, await handle.fetch_history()))
    return histories


def sizes(histories: list[tuple[str, WorkflowHistory]]) -> list[RunSize]:
    """Size is the serialized (protobuf) history, as Temporal counts it against its limit."""
    runs = []
    for run_id, h in histories:
        runs.append(
            RunSize(
                workflow_id=h.workflow_id,
                run_id=run_id,
                events=len(h.events),
                bytes=History(events=h.events).ByteSize(),
            )
        )
    return runs

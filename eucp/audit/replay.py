"""Replay: run every history through Temporal's Replayer with the current workflow code.

A history the code cannot reproduce is a finding that names the workflow, the run and, where it
can be found, the event: from the error message, or else by replaying ever shorter prefixes of
the history until the shortest one that still fails.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Literal

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime, TelemetryConfig
from temporalio.worker import Replayer

from eucp.audit.events import HistoryError, event_by_id, event_type_name, events_before, run_info
from eucp.audit.history import subject
from eucp.audit.models import Check, Divergence, Evidence, Finding, ReplayReport, RunReplay
from worker import WORKFLOWS, compile_workflows

_CORE_MESSAGE = re.compile(r'message: "((?:[^"\\]|\\.)*)"')
_EVENT_ID = re.compile(r"(?:HistoryEvent\(id: |event[ _]id:? )(\d+)", re.IGNORECASE)


def error_text(failure: str) -> str:
    """The SDK core's message inside a replay failure, without the Rust debug wrapping."""
    found = _CORE_MESSAGE.search(failure)
    if found is None:
        return failure
    return re.sub(r"\\(.)", r"\1", found.group(1))


def event_id_in(message: str) -> int | None:
    """The event a nondeterminism message names, when it names one."""
    found = _EVENT_ID.search(message)
    return int(found.group(1)) if found else None


@cache
def _quiet_runtime() -> Runtime:
    """A runtime whose core does not log each failed replay task to stderr: the report says it."""
    return Runtime(telemetry=TelemetryConfig(logging=None))


async def replay_evidence(evidence: Evidence) -> ReplayReport:
    """Replay every history of the evidence; collecting problems and divergences are findings."""
    runs = await replay_histories(evidence.histories)
    findings = list(evidence.findings)
    for run in runs:
        if run.divergence is not None:
            findings.append(
                Finding(
                    check=Check.replay,
                    subject=subject(run.workflow_id, run.run_id, run.divergence.event_id),
                    problem=f"the current code diverges: {run.divergence.message}",
                )
            )
    return ReplayReport(
        incident_id=evidence.incident_id, source=evidence.source, findings=findings, runs=runs
    )


async def replay_histories(histories: Sequence[WorkflowHistory]) -> list[RunReplay]:
    """Replay each history on its own, so each failure is attributed to its run.

    All of them go through one Replayer, in order (a Replayer per history starts a worker for
    each: the stored histories replayed at 1,120 events/s so, at 2,100-2,240 now); those that
    fail are replayed again, one at a time, to name their event."""
    compile_workflows()  # or every history's sandbox compiles their source again
    runs = [_run_of(history) for history in histories]
    started = [i for i, history in enumerate(histories) if _started(history)]
    reproduced = await _reproduced([histories[i] for i in started])
    with ThreadPoolExecutor(thread_name_prefix="eucp-replay") as executor:
        replayer = _replayer(executor)
        for i in (i for i, ok in zip(started, reproduced, strict=True) if not ok):
            failure = await _failure(replayer, histories[i])
            if failure is not None:
                runs[i].divergence = await _locate(replayer, histories[i], failure)
    return runs


def _run_of(history: WorkflowHistory) -> RunReplay:
    try:
        info = run_info(history)
        run_id, workflow_type = info.run_id, info.workflow_type
    except HistoryError:
        run_id, workflow_type = "?", "?"
    return RunReplay(
        workflow_id=history.workflow_id,
        run_id=run_id,
        workflow_type=workflow_type,
        events=len(history.events),
    )


def _started(history: WorkflowHistory) -> bool:
    """Before its first workflow task started, no workflow code has run: nothing to reproduce.
    (The Replayer also never returns on a history of the start event alone, which is what a
    run fetched just after continue-as-new can be.)"""
    return any(e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED for e in history.events)


def _replayer(executor: ThreadPoolExecutor | None = None) -> Replayer:
    return Replayer(
        workflows=WORKFLOWS,
        data_converter=pydantic_data_converter,
        workflow_task_executor=executor,
        runtime=_quiet_runtime(),
    )


async def _reproduced(histories: list[WorkflowHistory]) -> list[bool]:
    """Whether the code reproduces each history, replayed in order by one Replayer; all False
    if one is too broken to replay (each is then replayed on its own, which says why)."""
    results: list[bool] = []
    try:
        async with _replayer().workflow_replay_iterator(_each(histories)) as replayed:
            async for result in replayed:
                results.append(result.replay_failure is None)
    except Exception:
        return [False] * len(histories)
    return results


async def _each(histories: list[WorkflowHistory]) -> AsyncIterator[WorkflowHistory]:
    for history in histories:
        yield history


async def _failure(replayer: Replayer, history: WorkflowHistory) -> str | None:
    """Why the code could not reproduce the history, or None if it did (or has nothing to
    reproduce yet: `_started`)."""
    if not _started(history):
        return None
    try:
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    except Exception as err:  # a history too broken to start replaying is a finding too
        return f"cannot replay: {err}"
    return None if result.replay_failure is None else error_text(str(result.replay_failure))


async def _locate(replayer: Replayer, history: WorkflowHistory, message: str) -> Divergence:
    """Name the diverging event: from the message if it has one, else by bisecting prefixes
    (the shortest failing prefix ends with the event the code could not reproduce)."""
    event_id = event_id_in(message)
    located_by: Literal["message", "bisection"] = "message"
    if event_id is None:
        located_by = "bisection"
        ok, failing = 0, len(history.events)  # prefix lengths known to replay and to fail
        while failing - ok > 1:
            middle = (ok + failing) // 2
            if await _failure(replayer, events_before(history, middle)) is None:
                ok = middle
            else:
                failing = middle
        event_id = history.events[failing - 1].event_id if failing else None
    event = event_by_id(history.events, event_id) if event_id is not None else None
    return Divergence(
        message=message,
        event_id=event_id,
        event_type=event_type_name(event) if event is not None else None,
        located_by=located_by if event_id is not None else None,
    )

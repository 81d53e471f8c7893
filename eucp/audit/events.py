"""What the audit reads out of a workflow history: the run and its continue-as-new links, the
children it started, and the decisions it sent to the ledger. Pure: no I/O."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from pydantic import BaseModel
from temporalio.api.common.v1 import Payloads
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter

from activities.ledger import RecordDecisions, Recorded
from activities.platforms import StartPlatforms
from eucp.protocol.decisions import Decision
from eucp.protocol.state import PlatformStart
from workflows.crisis import CrisisWorkflow
from workflows.platform import PlatformTasksWorkflow, platform_workflow_id

M = TypeVar("M", bound=BaseModel)

CRISIS_TYPE = CrisisWorkflow.__name__
PLATFORM_TYPE = PlatformTasksWorkflow.__name__
RECORD_DECISIONS = "record_decisions"
START_PLATFORMS = "start_platforms"


class HistoryError(ValueError):
    """A history the audit cannot read (not a workflow history, or a payload that won't decode)."""


@dataclass(frozen=True)
class RunInfo:
    """One run of a workflow, as its history tells it."""

    workflow_id: str
    run_id: str
    workflow_type: str
    started_at: datetime
    previous_run_id: str | None
    """the run this one continued from"""
    next_run_id: str | None
    """the run this one continued as new into"""


@dataclass(frozen=True)
class Batch:
    """One `record_decisions` call: its decisions and, once the write completed, its result."""

    workflow_id: str
    run_id: str
    event_id: int
    decisions: list[Decision]
    recorded: Recorded | None


def event_time(event: HistoryEvent) -> datetime:
    return event.event_time.ToDatetime(tzinfo=UTC)


def event_type_name(event: HistoryEvent) -> str:
    return EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")


def run_info(history: WorkflowHistory) -> RunInfo:
    """The run's ids, type and links; HistoryError if the first event is not its start."""
    if (
        not history.events
        or history.events[0].event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
    ):
        raise HistoryError("the history does not begin with WorkflowExecutionStarted")
    first, last = history.events[0], history.events[-1]
    start = first.workflow_execution_started_event_attributes
    next_run = None
    if last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
        next_run = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
    return RunInfo(
        workflow_id=history.workflow_id,
        run_id=start.original_execution_run_id,
        workflow_type=start.workflow_type.name,
        started_at=event_time(first),
        previous_run_id=start.continued_execution_run_id or None,
        next_run_id=next_run or None,
    )


def child_workflow_ids(history: WorkflowHistory) -> list[str]:
    """The workflows this run started, in order: as children, or together by the
    `start_platforms` activity (an activation's platforms, patch
    `activation-platforms-started-together`; an input that does not decode names none)."""
    started: list[str] = []
    for e in history.events:
        if e.event_type == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
            started.append(e.start_child_workflow_execution_initiated_event_attributes.workflow_id)
        elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = e.activity_task_scheduled_event_attributes
            if attrs.activity_type.name == START_PLATFORMS:
                try:
                    started += decode(attrs.input, StartPlatforms).starts
                except HistoryError:
                    continue
    return started


def belongs_to(incident_id: str, history: WorkflowHistory) -> bool:
    """Whether this history is the incident's crisis or one of its platform workflows.

    A platform workflow is checked by its start input, since an id like `a.platform.b` could
    also be another incident's crisis."""
    if history.workflow_id == incident_id:
        return True
    if not history.workflow_id.startswith(platform_workflow_id(incident_id, "")):
        return False
    try:
        start = decode(
            history.events[0].workflow_execution_started_event_attributes.input, PlatformStart
        )
        state = start.unpacked()  # a run after continue-as-new gets its state packed
    except (HistoryError, ValueError, zlib.error):  # pydantic's ValidationError is a ValueError
        return False
    return state.incident_id == incident_id


def decision_batches(history: WorkflowHistory) -> tuple[list[Batch], list[tuple[int, str]]]:
    """Every `record_decisions` call in the run, and (event id, problem) for events that do
    not decode."""
    info = run_info(history)
    scheduled: dict[int, list[Decision]] = {}
    results: dict[int, Recorded] = {}
    problems: list[tuple[int, str]] = []
    for e in history.events:
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = e.activity_task_scheduled_event_attributes
            if attrs.activity_type.name == RECORD_DECISIONS:
                try:
                    scheduled[e.event_id] = decode(attrs.input, RecordDecisions).decisions
                except HistoryError as err:
                    problems.append((e.event_id, f"record_decisions input: {err}"))
        elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            done = e.activity_task_completed_event_attributes
            if done.scheduled_event_id in scheduled:
                try:
                    results[done.scheduled_event_id] = decode(done.result, Recorded)
                except HistoryError as err:
                    problems.append((e.event_id, f"record_decisions result: {err}"))
    batches = [
        Batch(info.workflow_id, info.run_id, event_id, decisions, results.get(event_id))
        for event_id, decisions in scheduled.items()
    ]
    return batches, problems


def decode(payloads: Payloads, model: type[M]) -> M:
    """The first payload as `model`, as the workers' pydantic data converter reads it."""
    if not payloads.payloads:
        raise HistoryError("no payload")
    try:
        value = pydantic_data_converter.payload_converter.from_payload(payloads.payloads[0], model)
    except Exception as err:  # the converter raises whatever its decoders raise
        raise HistoryError(f"cannot decode as {model.__name__}: {err}") from err
    if not isinstance(value, model):
        raise HistoryError(f"payload is not a {model.__name__}")
    return value


def events_before(history: WorkflowHistory, count: int) -> WorkflowHistory:
    """The history's first `count` events, as a history of its own (for locating divergence)."""
    return WorkflowHistory(history.workflow_id, history.events[:count])


def event_by_id(events: Sequence[HistoryEvent], event_id: int) -> HistoryEvent | None:
    return next((e for e in events if e.event_id == event_id), None)

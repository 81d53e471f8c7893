"""`eucp task`: a platform's own tasks over the HTTP API: list them, acknowledge them, report
what happened to the content, named by task id or selected by state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from pydantic import ValidationError

from eucp.cli.framework import Call, Invalid, command
from eucp.cli.inputs import task_ids_input
from eucp.cli.render import show_report_answer, show_tasks
from eucp.client import ApiClient
from eucp.protocol.identifiers import describe_invalid
from eucp.protocol.state import ReportAnswer, TaskPage
from eucp.protocol.tasks import CannotComplyReason, Outcome, TaskReport, TaskState


@click.group()
def task() -> None:
    """A platform's own tasks over the API: list them, acknowledge, report outcomes."""


@command(task, "list", show_tasks)
@click.option("--state", type=click.Choice(TaskState), help="only tasks in this state")
@click.option("--platform", help="whose tasks (coordinators and auditors; a platform sees its own)")
@click.option("--offset", type=click.IntRange(min=0), default=0)
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--all", "every", is_flag=True, help="every task, page after page")
def task_list(
    incident_id: str,
    state: TaskState | None,
    platform: str | None,
    offset: int,
    limit: int,
    every: bool,
) -> Call:
    """List tasks of an incident."""

    async def everything(api: ApiClient) -> TaskPage:
        tasks = [found async for found in api.iter_tasks(incident_id, platform, state)]
        return TaskPage(tasks=tasks, total=len(tasks), next_offset=None)

    if every:
        return everything
    return lambda api: api.tasks(incident_id, platform, state, offset, limit)


def report_on(
    incident_id: str,
    task_ids: list[str],
    every_in: TaskState | None,
    make: Callable[[str], Any],
    key: str | None,
) -> Call:
    """Reports on the named tasks and, with `every_in`, on every task in that state now."""
    if not task_ids and every_in is None:
        raise Invalid("no tasks", "name task ids, use --from FILE, or select them by state")
    try:
        reports = [make(task_id) for task_id in task_ids]
    except ValidationError as err:
        raise Invalid(describe_invalid(err)) from None

    async def run(api: ApiClient) -> ReportAnswer:
        more = []
        if every_in is not None:
            named = set(task_ids)
            async for selected in api.iter_tasks(incident_id, state=every_in):
                if selected.task_id not in named:
                    more.append(make(selected.task_id))
        if not reports and not more:
            return ReportAnswer()
        return await api.report_tasks(incident_id, reports + more, key)

    return run


@command(task, "ack", show_report_answer, idempotent=True)
@task_ids_input
@click.option("--all-assigned", is_flag=True, help="every task of yours still assigned")
def task_ack(
    incident_id: str, task_ids: list[str], all_assigned: bool, idempotency_key: str | None
) -> Call:
    """Acknowledge receipt of tasks (250 per request)."""

    def make(task_id: str) -> TaskReport:
        return TaskReport(task_id=task_id, outcome=Outcome.acknowledged)

    every = TaskState.assigned if all_assigned else None
    return report_on(incident_id, task_ids, every, make, idempotency_key)


@command(task, "report", show_report_answer, idempotent=True)
@task_ids_input
@click.option(
    "--outcome", type=click.Choice(Outcome), required=True, help="what happened to the content"
)
@click.option("--reason", help="why (required to decline)")
@click.option(
    "--cannot-comply",
    "cannot_comply",
    type=click.Choice(CannotComplyReason),
    help="TCO Annex III reason, with --outcome cannot_comply",
)
@click.option(
    "--all-in",
    "all_in",
    type=click.Choice(TaskState),
    help="also every task of yours in this state",
)
def task_report(
    incident_id: str,
    task_ids: list[str],
    outcome: Outcome,
    reason: str | None,
    cannot_comply: CannotComplyReason | None,
    all_in: TaskState | None,
    idempotency_key: str | None,
) -> Call:
    """Report an outcome on tasks: removed, not_found, declined, cannot_comply, resumed,
    acknowledged (250 per request)."""
    if cannot_comply and outcome is not Outcome.cannot_comply:
        raise Invalid("--cannot-comply goes with --outcome cannot_comply")

    def make(task_id: str) -> TaskReport:
        return TaskReport(
            task_id=task_id, outcome=outcome, reason=reason, cannot_comply=cannot_comply
        )

    return report_on(incident_id, task_ids, all_in, make, idempotency_key)

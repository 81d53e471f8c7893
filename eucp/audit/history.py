"""An incident's histories: fetched from Temporal (every run of the crisis and of each platform
workflow, following continue-as-new links, decrypted with the client's codec), and checked for
completeness wherever they came from.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from temporalio.client import Client, WorkflowExecution, WorkflowHistory
from temporalio.service import RPCError, RPCStatusCode

from eucp.audit.events import (
    CRISIS_TYPE,
    PLATFORM_TYPE,
    HistoryError,
    RunInfo,
    belongs_to,
    child_workflow_ids,
    run_info,
)
from eucp.audit.models import Check, Finding
from eucp.runtime.codec import decrypt_history
from workflows.platform import platform_workflow_id


def subject(workflow_id: str, run_id: str | None = None, event_id: int | None = None) -> str:
    """How findings name a place in history."""
    where = workflow_id if run_id is None else f"{workflow_id} run {run_id}"
    return where if event_id is None else f"{where} event {event_id}"


async def crisis_executions(client: Client) -> dict[str, list[WorkflowExecution]]:
    """Every crisis workflow run that visibility knows, by incident id."""
    runs: dict[str, list[WorkflowExecution]] = defaultdict(list)
    async for execution in client.list_workflows(f"WorkflowType = '{CRISIS_TYPE}'"):
        runs[execution.id].append(execution)
    return dict(runs)


async def fetch_incident(
    client: Client, incident_id: str
) -> tuple[list[WorkflowHistory], list[Finding]]:
    """Every run of the incident's workflows, ordered and checked by `assemble`.

    Visibility names the workflows and runs; the crisis's child-start events add any platform
    workflow visibility has not indexed yet, and continue-as-new links add any missing run.
    """
    known = await _visible_runs(client, incident_id)
    crisis, findings = await fetch_runs(client, incident_id, known.pop(incident_id, set()))
    for history in crisis:
        for child in child_workflow_ids(history):
            known.setdefault(child, set())
    histories = list(crisis)
    for workflow_id in sorted(known):
        runs, problems = await fetch_runs(client, workflow_id, known[workflow_id])
        if runs and not belongs_to(incident_id, runs[0]):
            continue  # a platform workflow of incident `{incident_id}.platform.x`
        histories += runs
        findings += problems
    assembled, problems = assemble(incident_id, histories)
    return assembled, findings + problems


async def _visible_runs(client: Client, incident_id: str) -> dict[str, set[str]]:
    """The run ids visibility lists for the crisis and its platform workflows, by workflow id.
    A server whose visibility has no STARTS_WITH lists the crisis alone; its child-start events
    then name the platform workflows."""
    prefix = platform_workflow_id(incident_id, "")
    crisis_only = f"WorkflowId = '{incident_id}'"
    both = (
        f"{crisis_only} OR (WorkflowType = '{PLATFORM_TYPE}' AND WorkflowId STARTS_WITH '{prefix}')"
    )
    known: dict[str, set[str]] = defaultdict(set)
    for query in (both, crisis_only):
        try:
            async for execution in client.list_workflows(query):
                known[execution.id].add(execution.run_id)
            break
        except RPCError as err:
            if err.status is not RPCStatusCode.INVALID_ARGUMENT or query == crisis_only:
                raise
    return known


async def fetch_runs(
    client: Client, workflow_id: str, run_ids: Iterable[str]
) -> tuple[list[WorkflowHistory], list[Finding]]:
    """The named runs (the latest if none), plus every run their continue-as-new links reach;
    decrypted, so they read and replay without a key. A payload under a key the client lacks
    raises `eucp.runtime.codec.UnknownKeyError`, which names the key."""
    todo: list[str | None] = [*sorted(run_ids)] or [None]
    fetched: dict[str, WorkflowHistory] = {}
    findings: list[Finding] = []
    while todo:
        run_id = todo.pop()
        try:
            history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
            history = decrypt_history(history, client.data_converter.payload_codec)
            info = run_info(history)
        except RPCError as err:
            if err.status is not RPCStatusCode.NOT_FOUND:
                raise
            if run_id is None:
                continue  # no workflow at all: `assemble` names what is missing
            findings.append(
                Finding(
                    check=Check.history,
                    subject=subject(workflow_id, run_id),
                    problem="no history in Temporal (unknown, or deleted by retention)",
                )
            )
            continue
        except HistoryError as err:
            findings.append(
                Finding(check=Check.history, subject=subject(workflow_id, run_id), problem=str(err))
            )
            continue
        fetched[info.run_id] = history
        for link in (info.previous_run_id, info.next_run_id):
            if link is not None and link not in fetched and link not in todo:
                todo.append(link)
    return list(fetched.values()), findings


def assemble(
    incident_id: str, histories: Iterable[WorkflowHistory]
) -> tuple[list[WorkflowHistory], list[Finding]]:
    """The histories in audit order (the crisis, then each platform workflow by id; each
    workflow's runs along their continue-as-new chain), and what is missing or out of place:
    a history that is not the incident's, an absent crisis or child, a broken chain."""
    findings: list[Finding] = []
    by_workflow: dict[str, list[tuple[RunInfo, WorkflowHistory]]] = defaultdict(list)
    for history in histories:
        try:
            info = run_info(history)
        except HistoryError as err:
            findings.append(
                Finding(check=Check.history, subject=subject(history.workflow_id), problem=str(err))
            )
            continue
        expected_type = CRISIS_TYPE if info.workflow_id == incident_id else PLATFORM_TYPE
        if info.workflow_type != expected_type or not belongs_to(incident_id, history):
            findings.append(
                Finding(
                    check=Check.history,
                    subject=subject(info.workflow_id, info.run_id),
                    problem=f"a {info.workflow_type} that is not part of incident {incident_id}",
                )
            )
            continue
        by_workflow[info.workflow_id].append((info, history))
    ordered: list[WorkflowHistory] = []
    children: list[str] = []
    for workflow_id in [incident_id, *sorted(set(by_workflow) - {incident_id})]:
        runs = by_workflow.get(workflow_id, [])
        if not runs:
            findings.append(
                Finding(
                    check=Check.history,
                    subject=subject(workflow_id),
                    problem="no history: unknown incident, or deleted by retention",
                )
            )
            continue
        chain, problems = _chain(runs)
        ordered += chain
        findings += problems
        if workflow_id == incident_id:
            children = [c for h in chain for c in child_workflow_ids(h)]
    for child in dict.fromkeys(children):
        if child not in by_workflow:
            findings.append(
                Finding(
                    check=Check.history,
                    subject=subject(child),
                    problem="the crisis started this platform workflow, but its history is missing",
                )
            )
    return ordered, findings


def _chain(
    runs: list[tuple[RunInfo, WorkflowHistory]],
) -> tuple[list[WorkflowHistory], list[Finding]]:
    """One workflow's runs from its first along the continue-as-new links; gaps are findings."""
    by_run = {info.run_id: (info, history) for info, history in runs}
    findings: list[Finding] = []
    heads = [info for info, _ in runs if info.previous_run_id not in by_run]
    heads.sort(key=lambda info: info.started_at)
    ordered: list[WorkflowHistory] = []
    seen: set[str] = set()
    for head in heads:
        if head.previous_run_id is not None:
            findings.append(
                Finding(
                    check=Check.history,
                    subject=subject(head.workflow_id, head.run_id),
                    problem=f"continues from run {head.previous_run_id}, whose history is missing",
                )
            )
        info: RunInfo | None = head
        while info is not None and info.run_id not in seen:
            seen.add(info.run_id)
            ordered.append(by_run[info.run_id][1])
            following = by_run.get(info.next_run_id or "")
            if info.next_run_id is not None and following is None:
                findings.append(
                    Finding(
                        check=Check.history,
                        subject=subject(info.workflow_id, info.run_id),
                        problem=f"continued as new into run {info.next_run_id}, "
                        "whose history is missing",
                    )
                )
            info = following[0] if following is not None else None
    for info, history in runs:  # only forged links (a cycle) leave a run unreached
        if info.run_id not in seen:
            ordered.append(history)
            findings.append(
                Finding(
                    check=Check.history,
                    subject=subject(info.workflow_id, info.run_id),
                    problem="not reached along the continue-as-new links from the first run",
                )
            )
    return ordered, findings

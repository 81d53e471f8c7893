"""The eucp worker: the workflows and activities of its role on the task queue, until SIGINT or
SIGTERM.

`EUCP_WORKER_ROLE` picks the role: `all` (default) runs both; `workflows` and `activities` run
one kind each, so that ledger writes and deliveries do not compete with workflow code for one
interpreter lock (run one process of each role, or more, on the same task queue)."""

from __future__ import annotations

import asyncio
import compileall
import signal
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import httpx
import structlog
from temporalio.client import Client
from temporalio.worker import Worker

from activities.ledger import LedgerActivities
from activities.notify import Mailer, NotifyActivities
from activities.platforms import PlatformActivities
from activities.report import ReportActivities
from eucp.runtime import logs, visibility
from eucp.runtime.ledger import open_ledger
from eucp.runtime.registry import RegistryFile
from eucp.runtime.settings import Settings
from eucp.runtime.temporal import connect
from workflows.crisis import CrisisWorkflow
from workflows.platform import PlatformTasksWorkflow

WORKFLOWS = [CrisisWorkflow, PlatformTasksWorkflow]
ROLES = ("all", "workflows", "activities")


def compile_workflows() -> None:
    """Writes the workflow modules' bytecode where it is missing or stale. The sandbox imports
    them anew for every workflow run and every replayed history; without bytecode (as under
    PYTHONDONTWRITEBYTECODE, set in many container images) it compiles their source each time,
    a quarter of the workflow worker's CPU in an activation of 200 platforms. Where the code's
    directory is read-only nothing is written, and the sandbox compiles as before."""
    compileall.compile_dir(Path(__file__).parent / "workflows", quiet=2)


@asynccontextmanager
async def running_worker(
    client: Client, settings: Settings, role: str | None = None
) -> AsyncIterator[Worker]:
    """A started worker with its ledger, registry and HTTP client; all closed on exit.

    `role` (default `settings.worker_role`): `all`, `workflows` or `activities`."""
    role = role or settings.worker_role
    if role not in ROLES:
        raise ValueError(f"worker role {role!r}: use one of {', '.join(ROLES)}")
    if role != "activities":
        compile_workflows()
    if role == "workflows":
        async with Worker(
            client,
            task_queue=settings.task_queue,
            workflows=WORKFLOWS,
            max_cached_workflows=settings.workflow_cache,
            graceful_shutdown_timeout=timedelta(seconds=10),
        ) as worker:
            yield worker
        return
    ledger = open_ledger(settings.ledger_url)
    registry = RegistryFile(settings.registry_path)  # read again whenever it changes
    executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="eucp-activity")
    ledger_activities = LedgerActivities(ledger)
    try:
        async with httpx.AsyncClient(timeout=10.0) as http:
            worker = Worker(
                client,
                task_queue=settings.task_queue,
                workflows=WORKFLOWS if role == "all" else [],
                activities=[
                    ledger_activities.record_decisions,
                    ledger_activities.read_items,
                    ledger_activities.read_open_items,
                    NotifyActivities(registry, http, mail=Mailer(settings)).notify,
                    PlatformActivities(client).start_platforms,
                    ReportActivities(ledger, settings.reports_dir).write_report,
                ],
                activity_executor=executor,
                max_cached_workflows=settings.workflow_cache,
                graceful_shutdown_timeout=timedelta(seconds=10),
            )
            async with worker:
                yield worker
    finally:
        executor.shutdown(wait=True)
        ledger.close()


async def serve(settings: Settings) -> None:
    """Runs the worker until SIGINT or SIGTERM, then lets in-flight tasks finish."""
    log = structlog.get_logger("eucp.worker")
    client = await connect(settings, with_metrics=True)
    await visibility.check(client)  # or every crisis run would fail as it sets its attributes
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with running_worker(client, settings):
        log.info(
            "worker started",
            task_queue=settings.task_queue,
            address=settings.temporal_address,
            role=settings.worker_role,
        )
        await stop.wait()
        log.info("worker stopping")
    log.info("worker stopped")


def main() -> None:
    try:
        asyncio.run(serve(logs.configured_settings()))
    except visibility.Unregistered as err:
        raise SystemExit(f"eucp worker: {err}") from None


if __name__ == "__main__":
    main()

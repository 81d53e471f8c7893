"""The eucp worker: every workflow and activity on the task queue, until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
import structlog
from temporalio.client import Client
from temporalio.worker import Worker

from activities.ledger import LedgerActivities
from activities.notify import Mailer, NotifyActivities
from activities.report import ReportActivities
from eucp import logs
from eucp.ledger import open_ledger
from eucp.participants import Registry
from eucp.settings import Settings, get_settings
from eucp.temporal import connect
from workflows.crisis import CrisisWorkflow
from workflows.platform import PlatformTasksWorkflow

WORKFLOWS = [CrisisWorkflow, PlatformTasksWorkflow]


@asynccontextmanager
async def running_worker(client: Client, settings: Settings) -> AsyncIterator[Worker]:
    """A started worker with its ledger, registry and HTTP client; all closed on exit."""
    ledger = open_ledger(settings.ledger_url)
    registry = Registry.load(settings.registry_path)
    executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="eucp-activity")
    try:
        async with httpx.AsyncClient(timeout=10.0) as http:
            worker = Worker(
                client,
                task_queue=settings.task_queue,
                workflows=WORKFLOWS,
                activities=[
                    LedgerActivities(ledger).record_decisions,
                    NotifyActivities(registry, http, mail=Mailer(settings)).notify,
                    ReportActivities(ledger, settings.reports_dir).write_report,
                ],
                activity_executor=executor,
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
    client = await connect(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with running_worker(client, settings):
        log.info(
            "worker started", task_queue=settings.task_queue, address=settings.temporal_address
        )
        await stop.wait()
        log.info("worker stopping")
    log.info("worker stopped")


def main() -> None:
    settings = get_settings()
    logs.configure(json=settings.log_json)
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()

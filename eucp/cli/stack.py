"""The commands that run eucp: the worker, the embedded stack (`up`), the HTTP API and the demo,
each configured from the EUCP_* environment.
"""

from __future__ import annotations

import asyncio

import click
import uvicorn

from eucp.demo.run import main as demo_main
from eucp.demo.run import registry as starter_registry
from eucp.runtime import logs, visibility
from eucp.runtime.devserver import embedded_temporal
from eucp.runtime.settings import get_settings
from worker import main as worker_main
from worker import serve


@click.command()
def worker() -> None:
    """Run the worker against the configured Temporal (EUCP_TEMPORAL_ADDRESS)."""
    worker_main()


@click.command()
def up() -> None:
    """The embedded stack in the foreground: dev server (var/temporal.db, UI on 8233) and worker.

    Ctrl-C stops both.
    """
    settings = logs.configured_settings()
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    if not settings.registry_path.exists():
        starter_registry().save(settings.registry_path)
        click.echo(f"wrote a starter participants registry to {settings.registry_path}: edit it")

    async def run() -> None:
        async with embedded_temporal(settings) as ui:
            click.echo(
                f"Temporal at {settings.temporal_address}, Web UI {ui or '(existing server)'}"
            )
            await serve(settings)

    try:
        asyncio.run(run())
    except visibility.Unregistered as err:  # a server it found running, started without them
        raise click.ClickException(str(err)) from None


@click.command()
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    help="API processes sharing the port (default EUCP_API_WORKERS, 1); they share their "
    "limits and console sessions in the database (docs/operations.md, Scaling out)",
)
def api(workers: int | None) -> None:
    """Serve the HTTP API (EUCP_API_HOST:EUCP_API_PORT) until Ctrl-C."""
    settings = logs.configured_settings()
    uvicorn.run(
        "eucp.api.app:from_environment",  # each process builds its own app from EUCP_*
        factory=True,
        host=settings.api_host,
        port=settings.api_port,
        workers=workers or settings.api_workers,
        log_config=None,
    )


@click.command()
def demo() -> None:
    """Run a Christchurch-like crisis end to end on the embedded default."""
    settings = get_settings()
    logs.configure(json=False, level=30)
    asyncio.run(demo_main(settings))

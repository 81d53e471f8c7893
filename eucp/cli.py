"""The `eucp` command: run the stack, the demo, and read the ledger."""

from __future__ import annotations

import asyncio
import json
import sys

import click

from eucp import logs
from eucp.settings import Settings, get_settings


@click.group()
def main() -> None:
    """eucp: the EU Crisis Protocol as durable Temporal workflows."""


@main.command()
def worker() -> None:
    """Run the worker against the configured Temporal (EUCP_TEMPORAL_ADDRESS)."""
    from worker import main as worker_main

    worker_main()


@main.command()
def up() -> None:
    """The embedded stack in the foreground: dev server (var/temporal.db, UI on 8233) and worker.

    Ctrl-C stops both.
    """
    from eucp.devserver import embedded_temporal
    from worker import serve

    settings = get_settings()
    logs.configure(json=settings.log_json)
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    if not settings.registry_path.exists():
        from eucp.demo import registry

        settings.registry_path.parent.mkdir(parents=True, exist_ok=True)
        settings.registry_path.write_text(registry().model_dump_json(indent=2))
        click.echo(f"wrote a starter participants registry to {settings.registry_path}: edit it")

    async def run() -> None:
        async with embedded_temporal(settings) as ui:
            click.echo(
                f"Temporal at {settings.temporal_address}, Web UI {ui or '(existing server)'}"
            )
            await serve(settings)

    asyncio.run(run())


@main.command()
def api() -> None:
    """Serve the HTTP API (EUCP_API_HOST:EUCP_API_PORT) until Ctrl-C."""
    import uvicorn

    from eucp.api.app import create_app

    settings = get_settings()
    logs.configure(json=settings.log_json)
    uvicorn.run(
        create_app(settings), host=settings.api_host, port=settings.api_port, log_config=None
    )


@main.command()
def demo() -> None:
    """Run a Christchurch-like crisis end to end on the embedded default."""
    from eucp.demo import main as demo_main

    settings = get_settings()
    logs.configure(json=False, level=30)
    asyncio.run(demo_main(settings))


@main.group()
def ledger() -> None:
    """Read and verify the decision ledger (EUCP_LEDGER_URL)."""


@ledger.command("verify")
@click.argument("incident_id")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def ledger_verify(incident_id: str, as_json: bool) -> None:
    """Recompute an incident's hash chain; exit 1 on any break."""
    from eucp.ledger import open_ledger

    with open_ledger(_settings().ledger_url) as opened:
        report = opened.verify(incident_id)
    if as_json:
        click.echo(report.model_dump_json())
    elif report.ok:
        click.echo(f"{incident_id}: {report.rows_checked} decisions, chain verified")
    else:
        click.echo(f"{incident_id}: BROKEN at row {report.first_bad_seq}: {report.problem}")
    sys.exit(0 if report.ok else 1)


@ledger.command("list")
@click.argument("incident_id", required=False)
def ledger_list(incident_id: str | None) -> None:
    """Incidents in the ledger, or one incident's decisions as JSON lines."""
    from eucp.ledger import open_ledger

    with open_ledger(_settings().ledger_url) as opened:
        if incident_id is None:
            for name in opened.incidents():
                click.echo(name)
            return
        for row in opened.rows(incident_id):
            click.echo(json.dumps(row.model_dump(mode="json")))


def _settings() -> Settings:
    return get_settings()

"""`eucp ledger`: read the decision ledger (EUCP_LEDGER_URL) directly, not over the API, and
verify an incident's hash chain (exit 1 on any break).
"""

from __future__ import annotations

import json
import sys

import click

from eucp.cli.framework import current_target
from eucp.runtime.ledger import open_ledger
from eucp.runtime.settings import get_settings


@click.group()
def ledger() -> None:
    """Read and verify the decision ledger (EUCP_LEDGER_URL)."""


@ledger.command("verify")
@click.argument("incident_id")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def ledger_verify(incident_id: str, as_json: bool) -> None:
    """Recompute an incident's hash chain; exit 1 on any break."""
    with open_ledger(get_settings().ledger_url) as opened:
        report = opened.verify(incident_id)
    if as_json or current_target().json:
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
    with open_ledger(get_settings().ledger_url) as opened:
        if incident_id is None:
            for name in opened.incidents():
                click.echo(name)
            return
        for row in opened.rows(incident_id):
            click.echo(json.dumps(row.model_dump(mode="json")))

"""The `eucp` command: run the stack, the demo, read the ledger; the coordinators' and platforms'
verbs as a thin client of the HTTP API (`eucp crisis`, `eucp task`); the operator's
participants and tokens (`eucp participants`, local files); and exercises on a running stack
(`eucp exercise`). One module per command group; what they share is in `eucp.cli.framework`.

Exit codes: 0 done, 1 refused by the protocol (403, 404, 409), 2 invalid input (422, bad
arguments), 3 the API cannot be reached, failed, or does not know the token (401), or a
hashing library `eucp hash` needs is not installed.
"""

from __future__ import annotations

import click

from eucp.audit.cli import audit
from eucp.cli import crisis, exercise, identifiers, ledger, participants, stack, task
from eucp.cli.framework import target_options
from eucp.cli.hash import hash_files
from eucp.demo.simulator import simulate_platform


@click.group()
@target_options(top=True)
def main() -> None:
    """eucp: the EU Crisis Protocol as durable Temporal workflows."""


for subcommand in (
    stack.worker,
    stack.up,
    stack.api,
    stack.demo,
    ledger.ledger,
    crisis.crisis,
    task.task,
    participants.participants,
    hash_files,  # identifiers computed locally from content (eucp.cli.hash)
    identifiers.identifiers,  # hash lists out of and into an incident (csv, tx)
    exercise.exercise,  # a scenario played as an exercise on a running stack
    simulate_platform,  # a reference platform receiver (eucp.demo.simulator)
    audit,  # replay, timeline, verify, export (eucp.audit)
):
    main.add_command(subcommand)

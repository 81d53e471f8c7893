"""The fault scenarios, in the order the suite runs them. Each takes the folder to work in and
returns its `Result`; it stops everything it started, whatever happens."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from chaos.results import Result
from chaos.scenarios import (
    api_kill,
    coordinators,
    postgres_drop,
    postgres_restart,
    receivers,
    reports,
    server_restart,
    worker_kill,
)

Scenario = Callable[[Path], Awaitable[Result]]

SCENARIOS: dict[str, Scenario] = {
    "worker-kill-fan-out": worker_kill.fan_out,
    "worker-kill-sla": worker_kill.sla_escalation,
    "worker-kill-ledger": worker_kill.ledger_batch,
    "temporal-restart": server_restart.run,
    "postgres-drop": postgres_drop.run,
    "postgres-restart": postgres_restart.run,
    "api-kill": api_kill.run,
    "receivers-down": receivers.run,
    "reports-late-duplicate": reports.run,
    "coordinators-race": coordinators.run,
}

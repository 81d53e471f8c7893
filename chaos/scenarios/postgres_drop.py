"""The ledger in PostgreSQL, its connections dropped again and again while decisions are written:
a side connection runs `pg_terminate_backend` on every backend of this run (matched by its
`application_name`, in a schema of its own, so other runs on the server are untouched) every
few tens of milliseconds through the whole takedown and wind-down."""

from __future__ import annotations

import asyncio
import random
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg

from chaos.crisis import Crisis, platform, staff
from chaos.postgres import SERVER, ledger_url, schema
from chaos.results import Result
from chaos.rig import Rig
from eucp.runtime.registry import Registry

PLATFORMS = ["fastbook", "slowtube", "choosy"]
ITEMS = 300
BATCH = 50
MIN_DROPS = 10  # fewer dropped connections than this: the fault did not happen


@dataclass
class Drops:
    total: int = 0
    in_transaction: int = 0  # backends that were running a statement or holding a transaction


async def drop_connections(app: str, drops: Drops, stop: asyncio.Event) -> None:
    """Terminates every backend named `app` at random intervals of 5-50 ms until `stop`."""
    async with await psycopg.AsyncConnection.connect(SERVER, autocommit=True) as side:
        while not stop.is_set():
            cursor = await side.execute(
                "SELECT state, pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name = %s "
                "AND pid <> pg_backend_pid()",
                [app],
            )
            for state, terminated in await cursor.fetchall():
                if terminated:
                    drops.total += 1
                    drops.in_transaction += state != "idle"
            await asyncio.sleep(random.uniform(0.005, 0.05))


async def run(root: Path) -> Result:
    registry = Registry(participants=[*staff(), *(platform(p) for p in PLATFORMS)])
    app = f"eucp-chaos-{uuid.uuid4().hex[:8]}"
    with schema() as name:
        async with Rig(root / "postgres-drop", registry, ledger_url(name, app)) as rig:
            crisis = Crisis(rig, PLATFORMS)
            await crisis.report()
            await crisis.assess()
            await crisis.activate(ITEMS)
            drops, stop = Drops(), asyncio.Event()
            dropping = asyncio.create_task(drop_connections(app, drops, stop))
            try:
                await crisis.take_down(batch=BATCH)
                await crisis.wind_down()
                await crisis.completed()
            finally:
                stop.set()
                await dropping
            problems = [] if drops.total >= MIN_DROPS else [f"only {drops.total} drops"]
            if not drops.in_transaction:
                problems.append("no connection was dropped inside a statement or transaction")
            return await crisis.result(
                "postgres-drop",
                problems,
                [
                    f"{drops.total} ledger connections terminated, "
                    f"{drops.in_transaction} of them not idle"
                ],
            )

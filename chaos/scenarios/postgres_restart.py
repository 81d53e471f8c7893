"""The PostgreSQL server itself restarted mid-takedown with the ledger on it (`pg_ctlcluster
restart`, fast mode: every connection dropped, every open transaction rolled back), the moment
a bulk task report is in the ledger but not yet answered, with more in flight. The worker and
the API stay up and reconnect; the ledger writes retry until the server is back; the platforms
resend what got no answer, with their keys.

The server is the machine's: its other clients (other test suites) lose their connections
too. It needs root, as `pg_ctlcluster` does."""

from __future__ import annotations

import uuid
from pathlib import Path

from chaos.crisis import TAKEDOWN, Crisis, Strike, platform, staff
from chaos.postgres import connections, ledger_url, restart, schema
from chaos.results import Result
from chaos.rig import Rig
from eucp.runtime.registry import Registry

PLATFORMS = ["fastbook", "slowtube", "choosy"]
ITEMS = 300
BATCH = 50


async def run(root: Path) -> Result:
    registry = Registry(participants=[*staff(), *(platform(p) for p in PLATFORMS)])
    app = f"eucp-chaos-{uuid.uuid4().hex[:8]}"

    async def restarted() -> str:
        """The restart, once the run's processes hold ledger connections for it to drop."""
        held = await connections(app)
        if not held:
            raise RuntimeError(f"no ledger connection named {app} to drop")
        return f"{held} ledger connections of the run open; {await restart()}"

    with schema() as name:
        async with Rig(root / "postgres-restart", registry, ledger_url(name, app)) as rig:
            crisis = Crisis(rig, PLATFORMS)
            await crisis.report()
            await crisis.assess()
            await crisis.activate(ITEMS)
            before = crisis.book.answers
            strike = Strike(crisis)
            await strike.when(
                crisis.unanswered(*TAKEDOWN), crisis.take_down(batch=BATCH), restarted
            )
            answered = strike.answers_before - before
            total = 2 * len(PLATFORMS) * ITEMS // BATCH
            problems = [] if answered < total else ["the takedown was over before the restart"]
            await crisis.wind_down()
            return await crisis.result(
                "postgres-restart",
                problems,
                [f"{strike.evidence}, with {answered} of {total} bulk reports answered"],
            )

"""The Temporal dev server killed with SIGKILL mid-takedown and restarted on its SQLite file a few
seconds later. The worker and the API stay up and reconnect; platforms resend what got no
answer (503 while the server is away), with their idempotency keys."""

from __future__ import annotations

import asyncio
from pathlib import Path

from chaos.crisis import Crisis, platform, staff
from chaos.results import Result
from chaos.rig import Rig
from eucp.runtime.registry import Registry

PLATFORMS = ["fastbook", "slowtube", "choosy"]
ITEMS = 120
DOWN = 3.0  # seconds the server stays dead


async def run(root: Path) -> Result:
    registry = Registry(participants=[*staff(), *(platform(p) for p in PLATFORMS)])
    async with Rig(root / "temporal-restart", registry) as rig:
        crisis = Crisis(rig, PLATFORMS)
        await crisis.report()
        await crisis.assess()
        await crisis.activate(ITEMS)
        answered_before = crisis.book.answers
        taking_down = asyncio.create_task(crisis.take_down())
        try:
            while crisis.book.answers < answered_before + 2 and not taking_down.done():  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            answered = crisis.book.answers - answered_before
            killed = rig.kill("temporal")
            await asyncio.sleep(DOWN)
            await rig.start_temporal()
            restarted = rig.process("temporal").pid
            await taking_down
        finally:
            taking_down.cancel()
        problems = [] if answered < 6 * 2 else ["the takedown was over before the kill"]
        await crisis.wind_down()
        return await crisis.result(
            "temporal-restart",
            problems,
            [
                f"dev server: {killed} with {answered} bulk reports answered; back after "
                f"{DOWN:.0f}s as pid {restarted}"
            ],
        )

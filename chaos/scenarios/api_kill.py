"""The API process (`eucp api`) SIGKILLed mid-request and started again on its port: the moment
a large add-content (`WAVE` URLs in one request) is in the ledger but its answer has not reached
the coordinator, then the moment a bulk task report is, with more in flight. The clients resend
what got no answer with the same `Idempotency-Key`; the worker and the dev server stay up.

The API's access log (one line per answer, with its pid) shows the add-content answered by the
killed process's successor: the resend, so the killed process's answer never reached the
client. When the answer got through all the same (the kill came just after it left), another
wave is struck, up to `ATTEMPTS`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from chaos.crisis import TAKEDOWN, Crisis, Strike, platform, staff
from chaos.results import Result
from chaos.rig import Rig
from eucp.protocol.actions import ACTIONS, Action
from eucp.protocol.decisions import DecisionKind
from eucp.runtime.registry import Registry

PLATFORMS = ["fastbook", "slowtube", "choosy"]
ITEMS = 100
WAVE = 1000  # the most one add-content request takes
ATTEMPTS = 3  # add-content waves struck at most, until a kill lands mid-request
BATCH = 50
CONTENT = f"/v1/incidents/{{incident_id}}/{ACTIONS[Action.add_content].path}"


async def run(root: Path) -> Result:
    registry = Registry(participants=[*staff(), *(platform(p) for p in PLATFORMS)])
    async with Rig(root / "api-kill", registry) as rig:
        crisis = Crisis(rig, PLATFORMS)
        await crisis.report()
        await crisis.assess()
        await crisis.activate(ITEMS)
        landed, struck = await content_struck(crisis)
        problems = [] if landed else [f"no kill in {ATTEMPTS} add-content waves came mid-request"]
        reports = Strike(crisis)
        before = crisis.book.answers
        await reports.when(
            crisis.unanswered(*TAKEDOWN), crisis.take_down(batch=BATCH), rig.replace_api
        )
        answered = reports.answers_before - before
        total = 2 * len(PLATFORMS) * len(crisis.book.items) // BATCH
        if answered >= total:
            problems.append("the takedown was over before the kill")
        await crisis.wind_down()
        return await crisis.result(
            "api-kill",
            problems,
            [*struck, f"{reports.evidence} with {answered} of {total} bulk reports answered"],
        )


async def content_struck(crisis: Crisis) -> tuple[bool, list[str]]:
    """Add-content waves, the API killed as each is in the ledger unanswered, until the
    successor of a killed process answers the resend. Returns whether one did, and the
    evidence of each."""
    rig, notes = crisis.rig, []
    for wave in range(1, ATTEMPTS + 1):
        killed = rig.process("api").pid
        before = rig.answered("api", CONTENT)[killed]
        strike = Strike(crisis)
        await strike.when(
            crisis.unanswered(DecisionKind.content_added),
            crisis.add_content(ITEMS + 1 + (wave - 1) * WAVE, WAVE),
            rig.replace_api,
        )
        answered = await answers(rig, killed, before)
        row = strike.row.decision.decision_id if strike.row else None
        notes.append(
            f"wave {wave}: {strike.evidence} when {row} (content_added, {WAVE} URLs) was in "
            f"the ledger, unanswered; answered by the killed process {answered[0]} times, by "
            f"its successor {answered[1]}"
        )
        if answered[1]:  # the resend: the killed process's answer never reached the client
            return True, notes
    return False, notes


async def answers(rig: Rig, killed: int, before: int, within: float = 5.0) -> tuple[int, int]:
    """The add-content answers the killed API process gave since it had given `before`, and
    those its successor gave, once either has logged one (each logs just after it answered),
    or after `within` seconds (the killed process answered, then died before logging it)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        by_pid = rig.answered("api", CONTENT)
        found = by_pid[killed] - before, by_pid[rig.process("api").pid]
        if any(found) or loop.time() > deadline:
            return found
        await asyncio.sleep(0.1)

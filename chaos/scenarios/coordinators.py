"""Two coordinators acting on one incident at the same moment with conflicting decisions, through
the API, in several incidents at once: activate against decline, de-escalate against
de-escalate, start the review against re-escalate, close against close. Each race has exactly
one winner; the other coordinator gets a 409 naming the rule, and only the winner's decision
is in the ledger."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from chaos.crisis import COORDINATOR, Crisis, Desk, platform, staff, url
from chaos.results import Result
from chaos.rig import Rig
from chaos.tally import combine
from eucp.client import ApiClient
from eucp.protocol.actions import Action
from eucp.protocol.phases import Phase
from eucp.protocol.refusal import Refusal
from eucp.protocol.state import Answer
from eucp.runtime.registry import Registry

RIVAL = "nl-nctv"
PLATFORMS = ["fastbook", "choosy"]
INCIDENTS = 3
ITEMS = 10

Move = Callable[[ApiClient, str, str], Awaitable[Answer]]  # client, incident, key


async def _activate(api: ApiClient, incident: str, key: str) -> Answer:
    identifiers = [url(n) for n in range(1, ITEMS + 1)]
    return await api.act(
        incident,
        Action.activate,
        reason="criteria met",
        identifiers=identifiers,
        platforms=PLATFORMS,
        idempotency_key=key,
    )


async def _decline(api: ApiClient, incident: str, key: str) -> Answer:
    return await api.act(incident, Action.decline, reason="no viral spread", idempotency_key=key)


async def _de_escalate(api: ApiClient, incident: str, key: str) -> Answer:
    return await api.act(incident, Action.de_escalate, reason="event over", idempotency_key=key)


async def _re_escalate(api: ApiClient, incident: str, key: str) -> Answer:
    return await api.act(incident, Action.re_escalate, reason="new uploads", idempotency_key=key)


async def _review(api: ApiClient, incident: str, key: str) -> Answer:
    return await api.act(incident, Action.start_review, idempotency_key=key)


async def _close(api: ApiClient, incident: str, key: str) -> Answer:
    return await api.act(incident, Action.close, reason="debrief held", idempotency_key=key)


class Races:
    """The races run on one incident, and what each coordinator was told."""

    def __init__(self, crisis: Crisis, swap: bool) -> None:
        self.crisis = crisis
        desks = (crisis.coordinator, crisis.desk(RIVAL))
        self.desks = desks[::-1] if swap else desks  # who makes the first move of each race
        self.told: list[str] = []
        self.problems: list[str] = []

    async def race(self, name: str, first: Move, second: Move) -> Phase | None:
        """Both moves at once; returns the phase the winner left the crisis in."""
        incident = self.crisis.incident_id

        async def move(desk: Desk, how: Move) -> Answer | Refusal:
            try:
                return await self.move(desk, how)
            except Refusal as refused:
                return refused

        outcomes = await asyncio.gather(move(self.desks[0], first), move(self.desks[1], second))
        won = [o for o in outcomes if isinstance(o, Answer)]
        lost = [o for o in outcomes if isinstance(o, Refusal)]
        if len(won) != 1 or len(lost) != 1:
            self.problems.append(f"{incident} {name}: {len(won)} winners, {len(lost)} refused")
            return won[0].phase if won else None
        refusal = lost[0]
        self.told.append(f"{name}: loser told {refusal.status} {refusal.kind}: {refusal.rule}")
        if refusal.status != 409 or refusal.kind != "conflict" or not refusal.rule:
            self.problems.append(f"{incident} {name}: the loser was told {refusal}")
        return won[0].phase

    async def move(self, desk: Desk, how: Move) -> Answer:
        """One coordinator's move, resent with its key until answered."""

        async def request(key: str) -> Answer:
            return await how(desk.api, self.crisis.incident_id, key)

        return await desk.act(request)

    async def run(self) -> None:
        crisis = self.crisis
        await crisis.report()
        await crisis.assess()
        phase = await self.race("activate/decline", _activate, _decline)
        if phase is not Phase.active:
            return
        await crisis.take_down()
        await self.race("de-escalate/de-escalate", _de_escalate, _de_escalate)
        phase = await self.race("review/re-escalate", _review, _re_escalate)
        if phase is Phase.active:  # re-escalated: wind down once more, without a race
            await self.move(crisis.coordinator, _de_escalate)
            await self.move(crisis.coordinator, _review)
        await self.race("close/close", _close, _close)


async def run(root: Path) -> Result:
    registry = Registry(
        participants=[*staff((COORDINATOR, RIVAL)), *(platform(p) for p in PLATFORMS)]
    )
    async with Rig(root / "coordinators-race", registry) as rig:
        races = [Races(Crisis(rig, PLATFORMS), swap=n % 2 == 1) for n in range(INCIDENTS)]
        await asyncio.gather(*(r.run() for r in races))
        problems = [p for r in races for p in r.problems]
        for r in races:
            problems += await r.crisis.checked()
        tallies = [await r.crisis.tally() for r in races]
        lost = sum(len(r.told) for r in races)
        told = sorted({t for r in races for t in r.told})
        return Result(
            "coordinators-race",
            combine(tallies),
            problems,
            [f"{lost} races on {INCIDENTS} incidents, each lost with a 409", *told],
        )

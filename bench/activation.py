"""Benchmark 6: one activation naming many platforms (a referral action day: 200 platforms x 100
identifiers), timed from the call to each platform's webhooks at `bench.receivers`: its first
notice of any kind, and the `task_assigned` notice that carries the last of its tasks."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from bench import receivers
from bench.crisis import prepare
from bench.env import World, activation_platform
from bench.sightings import percentile
from eucp.protocol.actions import Action
from eucp.protocol.identifiers import UrlIdentifier


@dataclass
class ActivationResult:
    platforms: int
    identifiers: int
    call_seconds: float = 0.0  # until the activation's answer
    notified: int = 0  # platforms that had every one of their tasks by the end
    first_p50: float = 0.0
    first_p99: float = 0.0
    first_max: float = 0.0
    tasks_p50: float = 0.0
    tasks_p99: float = 0.0
    all_notified: float | None = None  # the last platform's last task, if all were notified


async def run(world: World, incident_id: str, within: float = 120.0) -> ActivationResult:
    opts = world.options
    platforms = [activation_platform(n) for n in range(opts.activation_platforms)]
    result = ActivationResult(len(platforms), opts.activation_identifiers)
    urls = {f"https://video.example/{incident_id}/{n}" for n in range(opts.activation_identifiers)}
    out = world.run_dir / f"{incident_id}-arrivals.jsonl"
    async with receivers.serving(world.receivers, out):
        iru = await prepare(world, incident_id, "Benchmark activation")
        try:
            start = time.time()
            await iru.act(
                incident_id,
                Action.activate,
                reason="benchmark activation",
                identifiers=[UrlIdentifier(value=u) for u in sorted(urls)],
                platforms=platforms,
            )
            result.call_seconds = time.time() - start
        finally:
            await iru.aclose()
        deadline = time.monotonic() + within
        while True:
            first: dict[str, float] = {}
            got: dict[str, dict[str, float]] = {p: {} for p in platforms}
            for at, platform, url, _ in receivers.read(out):
                first[platform] = min(at, first.get(platform, at))
                if url in urls:
                    got[platform].setdefault(url, at)
            complete = {p: max(seen.values()) for p, seen in got.items() if len(seen) == len(urls)}
            if len(complete) == len(platforms) or time.monotonic() > deadline:
                break
            world.stack.check()
            await asyncio.sleep(0.2)
    firsts = [at - start for at in first.values()]
    tasks = [at - start for at in complete.values()]
    result.notified = len(complete)
    result.first_p50 = percentile(firsts, 50)
    result.first_p99 = percentile(firsts, 99)
    result.first_max = max(firsts, default=0.0)
    result.tasks_p50 = percentile(tasks, 50)
    result.tasks_p99 = percentile(tasks, 99)
    if len(complete) == len(platforms):
        result.all_notified = round(max(tasks, default=0.0), 3)
    return result

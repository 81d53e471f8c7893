"""Benchmark 2: new sightings at a steady rate from one platform, timed from the API call to the
`task_assigned` webhook's arrival at each of the other platforms (`bench.receivers`)."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import httpx

from bench import receivers
from bench.crisis import prepare
from bench.env import World, sighting_platform
from eucp.client import ApiClient, ApiUnavailable
from eucp.protocol.actions import Action
from eucp.protocol.identifiers import UrlIdentifier
from eucp.protocol.refusal import Refusal

POOLS = 50  # HTTP connection pools the calls take turns on (25 x 8: p99 1.63 s; 10 x 20: 2.19 s)
POOL = 4  # connections of each


def percentile(values: list[float], p: float) -> float:
    """The nearest-rank percentile (p in 0..100); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(p / 100 * len(ordered))))
    return ordered[rank - 1]


@dataclass
class SightingResult:
    rate: float
    seconds: float
    sent: int = 0
    failed_calls: int = 0
    expected: int = 0
    arrived: int = 0
    lost: int = 0  # not arrived by the end of the drain window (late or lost)
    drain_seconds: float = 0.0
    twice: int = 0
    redelivered: int = 0
    p50: float = 0.0
    p99: float = 0.0
    max: float = 0.0
    api_p50: float = 0.0
    api_p99: float = 0.0
    send_seconds: float = 0.0
    latencies: list[float] = field(default_factory=list, repr=False)


async def run(world: World, incident_id: str) -> SightingResult:
    opts = world.options
    platforms = [sighting_platform(n) for n in range(opts.sighting_platforms)]
    reporter, others = platforms[0], platforms[1:]
    result = SightingResult(rate=opts.sighting_rate, seconds=opts.sighting_seconds)
    out = world.run_dir / "sighting-arrivals.jsonl"
    async with receivers.serving(world.receivers, out):
        iru = await prepare(world, incident_id, "Benchmark sightings")
        await iru.act(
            incident_id,
            Action.activate,
            reason="benchmark sightings",
            identifiers=[],
            platforms=platforms,
        )
        await iru.aclose()
        sent: dict[str, float] = {}
        api_times: list[float] = []
        # the calls spread over small pools: httpx looks over every connection of its pool on
        # each request, so one pool as wide as the calls in flight (about 100 once answers
        # take 2 s) took 40% of this process, and the CPU from the system it measures
        clients = [
            ApiClient(
                world.api_url,
                world.tokens[reporter],
                timeout=60.0,
                max_retries=20,
                transport=httpx.AsyncHTTPTransport(
                    limits=httpx.Limits(max_connections=POOL, max_keepalive_connections=POOL)
                ),
            )
            for _ in range(POOLS)
        ]

        async def sight(url: str, client: ApiClient) -> None:
            t = time.time()
            sent[url] = t
            try:
                await client.act(
                    incident_id, Action.report_sightings, identifiers=[UrlIdentifier(value=url)]
                )
            except (Refusal, ApiUnavailable):
                result.failed_calls += 1
            api_times.append(time.time() - t)

        total = int(opts.sighting_rate * opts.sighting_seconds)
        calls: list[asyncio.Task[None]] = []
        begin = time.perf_counter()
        for n in range(total):
            await asyncio.sleep(max(0.0, begin + n / opts.sighting_rate - time.perf_counter()))
            url = f"https://reupload.example/{reporter}/{n}"
            calls.append(asyncio.create_task(sight(url, clients[n % POOLS])))
        result.send_seconds = time.perf_counter() - begin
        # the calls still queued get the drain window too, then count as not arrived
        deadline = time.monotonic() + opts.sighting_drain
        _, pending = await asyncio.wait(calls, timeout=opts.sighting_drain) if calls else ((), ())
        for call in pending:
            call.cancel()
        result.failed_calls += len(pending)
        for client in clients:
            await client.aclose()
        result.sent = len(sent)
        result.expected = len(sent) * len(others)
        arrivals: dict[tuple[str, str], list[tuple[float, str]]] = defaultdict(list)
        while True:
            arrivals.clear()
            for at, platform, url, delivery in receivers.read(out):
                arrivals[(platform, url)].append((at, delivery))
            done = sum(1 for u in sent for p in others if (p, u) in arrivals)
            if done >= result.expected or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.2)
        result.drain_seconds = time.perf_counter() - begin - result.send_seconds
    for url, at in sent.items():
        for p in others:
            got = arrivals.get((p, url), [])
            if not got:
                result.lost += 1
                continue
            result.arrived += 1
            result.latencies.append(min(t for t, _ in got) - at)
            if len({d for _, d in got}) > 1:
                result.twice += 1
    copies = Counter((p, u, d) for (p, u), got in arrivals.items() for _, d in got)
    result.redelivered = sum(n - 1 for n in copies.values() if n > 1)
    result.p50 = percentile(result.latencies, 50)
    result.p99 = percentile(result.latencies, 99)
    result.max = max(result.latencies, default=0.0)
    result.api_p50 = percentile(api_times, 50)
    result.api_p99 = percentile(api_times, 99)
    return result

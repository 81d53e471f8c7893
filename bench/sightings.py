"""Benchmark 2: new sightings at a steady rate from one platform, timed from the API call to the
`task_assigned` webhook's arrival at each of the other platforms (receivers in this process)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.crisis import prepare
from bench.env import World, sighting_platform
from eucp.client import ApiClient, ClientError
from eucp.identifiers import UrlIdentifier
from eucp.signing import DELIVERY_HEADER


def percentile(values: list[float], p: float) -> float:
    """The nearest-rank percentile (p in 0..100); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(p / 100 * len(ordered))))
    return ordered[rank - 1]


class Receivers:
    """Every sighting platform's webhook: records when each item arrives, by platform."""

    def __init__(self) -> None:
        # (platform, url) -> [(arrival, delivery id)]
        self.arrivals: dict[tuple[str, str], list[tuple[float, str]]] = defaultdict(list)
        self.deliveries: dict[str, int] = defaultdict(int)
        self.app = Starlette(routes=[Route("/hook/{platform}", self.hook, methods=["POST"])])

    async def hook(self, request: Request) -> Response:
        now = time.time()
        body = json.loads(await request.body())
        delivery = request.headers.get(DELIVERY_HEADER, body.get("delivery_id", ""))
        self.deliveries[delivery] += 1
        platform = request.path_params["platform"]
        if body.get("kind") == "task_assigned":
            for task in body.get("data", {}).get("tasks", []):
                url = task.get("identifier", {}).get("value")
                if isinstance(url, str):
                    self.arrivals[(platform, url)].append((now, delivery))
        return Response(status_code=200)

    @contextlib.asynccontextmanager
    async def serving(self, port: int) -> AsyncIterator[None]:
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=port, log_config=None, access_log=False
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 (uvicorn offers no event)
            await asyncio.sleep(0.05)
        try:
            yield
        finally:
            server.should_exit = True
            await task


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


async def run(world: World, incident_id: str = "bench-sightings") -> SightingResult:
    opts = world.options
    platforms = [sighting_platform(n) for n in range(opts.sighting_platforms)]
    reporter, others = platforms[0], platforms[1:]
    result = SightingResult(rate=opts.sighting_rate, seconds=opts.sighting_seconds)
    receivers = Receivers()
    async with receivers.serving(world.sighting_port):
        iru = await prepare(world, incident_id, "Benchmark sightings")
        await iru.activate(incident_id, "benchmark sightings", [], platforms=platforms)
        await iru.aclose()
        sent: dict[str, float] = {}
        api_times: list[float] = []
        # a pool wide enough for every call the API may queue: httpx's default of 100
        # connections, with thousands of calls waiting, made this harness the bottleneck
        pool = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=1000))
        client = ApiClient(
            world.api_url, world.tokens[reporter], timeout=60.0, max_retries=20, transport=pool
        )

        async def sight(url: str) -> None:
            t = time.time()
            sent[url] = t
            try:
                await client.report_sightings(incident_id, [UrlIdentifier(value=url)])
            except ClientError:
                result.failed_calls += 1
            api_times.append(time.time() - t)

        total = int(opts.sighting_rate * opts.sighting_seconds)
        calls: list[asyncio.Task[None]] = []
        begin = time.perf_counter()
        for n in range(total):
            await asyncio.sleep(max(0.0, begin + n / opts.sighting_rate - time.perf_counter()))
            url = f"https://reupload.example/{reporter}/{n}"
            calls.append(asyncio.create_task(sight(url)))
        result.send_seconds = time.perf_counter() - begin
        # the calls still queued get the drain window too, then count as not arrived
        deadline = time.monotonic() + opts.sighting_drain
        _, pending = await asyncio.wait(calls, timeout=opts.sighting_drain) if calls else ((), ())
        for call in pending:
            call.cancel()
        result.failed_calls += len(pending)
        await client.aclose()
        result.sent = len(sent)
        result.expected = len(sent) * len(others)
        while time.monotonic() < deadline:
            if (
                sum(1 for u in sent for p in others if (p, u) in receivers.arrivals)
                >= result.expected
            ):
                break
            await asyncio.sleep(0.2)
        result.drain_seconds = time.perf_counter() - begin - result.send_seconds
    for url, at in sent.items():
        for p in others:
            got = receivers.arrivals.get((p, url), [])
            if not got:
                result.lost += 1
                continue
            result.arrived += 1
            result.latencies.append(min(t for t, _ in got) - at)
            if len({d for _, d in got}) > 1:
                result.twice += 1
    result.redelivered = sum(n - 1 for n in receivers.deliveries.values() if n > 1)
    result.p50 = percentile(result.latencies, 50)
    result.p99 = percentile(result.latencies, 99)
    result.max = max(result.latencies, default=0.0)
    result.api_p50 = percentile(api_times, 50)
    result.api_p99 = percentile(api_times, 99)
    return result

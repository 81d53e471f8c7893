"""Listing incidents with 10,000 in visibility: `python -m bench.listing [--incidents N]`.

A fresh dev server on a SQLite file (WAL, eucp's search attributes registered, as `eucp up`
starts it) is given N crisis runs' visibility records cheaply: N `CrisisWorkflow` executions
started with the search attributes a crisis carries (`workflows.search`) on a task queue no
worker polls, so each stays a running record and costs no workflow code. Their phases,
platforms, reporters and exercise flags are drawn (seeded) as a year of incidents might have
them. Then each list is read through the service (`Incidents.listings`), as `GET
/v1/incidents` reads it, 3 times: the median and the range, with the load average.

Before the search attributes, a platform's list read every crisis run and every task workflow
of the namespace: `--before` starts the task workflows' records too (one per platform of an
incident) and times a platform's list read that way. The run dir is kept (`--fresh` removes
it), so a second run starts nothing and measures again."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.contrib.pydantic import pydantic_data_converter

from bench.report import load_average
from eucp.protocol.phases import Phase
from eucp.protocol.search import IncidentSearch
from eucp.runtime.devserver import start_dev_server, wait_for_port
from eucp.runtime.settings import Settings
from eucp.runtime.stack import free_port
from eucp.service.incidents import Incidents
from workflows.platform import platform_workflow_id
from workflows.search import EXERCISE, PHASE, PLATFORMS, REPORTER

TASK_QUEUE = "eucp-bench-listing"  # no worker polls it: the runs stay as they were started
RESULTS = Path(__file__).parent / "listing.json"
PHASES = {  # share of incidents in each phase
    Phase.closed: 0.55,
    Phase.not_activated: 0.15,
    Phase.active: 0.08,
    Phase.de_escalating: 0.04,
    Phase.review: 0.04,
    Phase.assessing: 0.07,
    Phase.reported: 0.07,
}
ACTIVATED = {Phase.active, Phase.de_escalating, Phase.review, Phase.closed}
REPORTERS = {"eu-iru": 0.7, "fr-pharos": 0.1, "de-bka": 0.1, "nl-nctv": 0.1}
EXERCISES = 0.1  # share of exercises
STARTS_AT_ONCE = 64


def platform(n: int) -> str:
    return f"p{n:02d}"


@dataclass(frozen=True)
class Drawn:
    phase: Phase
    platforms: list[str]
    reporter: str
    exercise: bool


def draw(rng: random.Random, platforms: int) -> Drawn:
    """One incident as a year of them might be: an activated one has 1 to 8 platforms, the
    first few of the registry (the large services) more often."""
    phase = rng.choices(list(PHASES), weights=list(PHASES.values()))[0]
    taking_part: list[str] = []
    if phase in ACTIVATED:
        weights = [1 / (n + 1) for n in range(platforms)]
        wanted = rng.randint(1, min(8, platforms))
        while len(taking_part) < wanted:
            chosen = platform(rng.choices(range(platforms), weights=weights)[0])
            if chosen not in taking_part:
                taking_part.append(chosen)
    reporter = rng.choices(list(REPORTERS), weights=list(REPORTERS.values()))[0]
    return Drawn(phase, taking_part, reporter, rng.random() < EXERCISES)


def attributes(drawn: Drawn) -> TypedSearchAttributes:
    pairs: list[SearchAttributePair[Any]] = [
        SearchAttributePair(PHASE, drawn.phase.value),
        SearchAttributePair(REPORTER, drawn.reporter),
        SearchAttributePair(EXERCISE, drawn.exercise),
    ]
    if drawn.platforms:
        pairs.append(SearchAttributePair(PLATFORMS, drawn.platforms))
    return TypedSearchAttributes(pairs)


async def fill(client: Client, incidents: int, platforms: int, seed: int) -> dict[str, float]:
    """Starts the crisis runs not started yet (a run dir kept from before keeps its own):
    how many were there already, how many it started, and in how many seconds."""
    rng = random.Random(seed)
    drawn = [draw(rng, platforms) for _ in range(incidents)]
    query = f"WorkflowType = 'CrisisWorkflow' AND TaskQueue = '{TASK_QUEUE}'"
    have = (await client.count_workflows(query)).count
    gate = asyncio.Semaphore(STARTS_AT_ONCE)
    started = time.perf_counter()

    async def start(n: int) -> None:
        async with gate:
            await client.start_workflow(
                "CrisisWorkflow",
                {"incident_id": f"inc-{n:06d}"},
                id=f"inc-{n:06d}",
                task_queue=TASK_QUEUE,
                search_attributes=attributes(drawn[n]),
            )
        if (n + 1) % 1000 == 0:
            say(f"   {n + 1:,} started")

    await asyncio.gather(*(start(n) for n in range(have, incidents)))
    seconds = time.perf_counter() - started
    while (await client.count_workflows(query)).count < incidents:  # noqa: ASYNC110
        await asyncio.sleep(0.5)
    return {"there": have, "started": max(0, incidents - have), "seconds": seconds}


async def fill_tasks(client: Client, incidents: int, platforms: int, seed: int) -> dict[str, float]:
    """For `--before`: the task workflows' records too (one per platform of an incident),
    which the list of a platform read before the search attributes."""
    rng = random.Random(seed)
    drawn = [draw(rng, platforms) for _ in range(incidents)]
    wanted = [
        platform_workflow_id(f"inc-{n:06d}", p) for n, d in enumerate(drawn) for p in d.platforms
    ]
    query = f"WorkflowType = 'PlatformTasksWorkflow' AND TaskQueue = '{TASK_QUEUE}'"
    have = (await client.count_workflows(query)).count
    gate = asyncio.Semaphore(STARTS_AT_ONCE)
    started = time.perf_counter()

    async def start(workflow_id: str) -> None:
        async with gate:
            await client.start_workflow(
                "PlatformTasksWorkflow", {}, id=workflow_id, task_queue=TASK_QUEUE
            )

    await asyncio.gather(*(start(w) for w in wanted[have:]))
    seconds = time.perf_counter() - started
    while (await client.count_workflows(query)).count < len(wanted):  # noqa: ASYNC110
        await asyncio.sleep(0.5)
    return {"there": have, "started": max(0, len(wanted) - have), "seconds": seconds}


async def listed_before(client: Client, platform_id: str) -> list[str]:
    """A platform's list as eucp read it before the search attributes: every task workflow's
    id, to find the platform's, then every crisis run, kept if the platform had one."""
    suffix = platform_workflow_id("", platform_id)
    mine = {
        found.id.removesuffix(suffix)
        async for found in client.list_workflows("WorkflowType = 'PlatformTasksWorkflow'")
        if found.id.endswith(suffix)
    }
    listed: dict[str, str] = {}
    async for found in client.list_workflows("WorkflowType = 'CrisisWorkflow'"):
        if found.id not in listed and found.id in mine:
            listed[found.id] = found.status.name.lower() if found.status else "unknown"
    return list(listed)


@dataclass(frozen=True)
class Figure:
    name: str
    rows: int
    median_s: float
    min_s: float
    max_s: float
    load_average: list[float]


async def timed(name: str, runs: int, read: Any) -> Figure:
    seconds: list[float] = []
    rows = 0
    load = load_average()
    for _ in range(runs):
        started = time.perf_counter()
        rows = len(await read())
        seconds.append(time.perf_counter() - started)
    figure = Figure(name, rows, statistics.median(seconds), min(seconds), max(seconds), load)
    say(
        f"   {name}: {rows:,} rows, median {figure.median_s * 1000:,.0f} ms "
        f"({figure.min_s * 1000:,.0f}-{figure.max_s * 1000:,.0f}), load {load}"
    )
    return figure


async def measure(incidents: Incidents, runs: int) -> list[Figure]:
    """Each list as the API reads it, through the service."""
    lists: list[tuple[str, IncidentSearch | None]] = [
        ("every incident (a coordinator's list)", None),
        ("a large platform's list (p00)", IncidentSearch(platform=platform(0))),
        ("a small platform's list (p39)", IncidentSearch(platform=platform(39))),
        ("p00's active incidents", IncidentSearch(phase=Phase.active, platform=platform(0))),
        ("active incidents", IncidentSearch(phase=Phase.active)),
        ("exercises", IncidentSearch(exercise=True)),
        ("reported by fr-pharos", IncidentSearch(reporter="fr-pharos")),
    ]
    return [
        await timed(name, runs, lambda s=search: incidents.listings(s)) for name, search in lists
    ]


def say(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')}  {message}", file=sys.stderr, flush=True)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    run_dir: Path = args.run_dir  # made, and resolved, by `main`
    port = free_port()
    results: dict[str, Any] = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "cpus": os.cpu_count(),
        "load_average_at_start": load_average(),
        "incidents": args.incidents,
        "platforms": args.platforms,
        "runs": args.runs,
    }
    say(f"load average {results['load_average_at_start']}; starting the dev server")
    server = start_dev_server(run_dir / "temporal.db", port, free_port())  # its log beside it
    try:
        await wait_for_port("127.0.0.1", port)
        client = await connected(f"127.0.0.1:{port}")
        say(f"{args.incidents:,} incidents in visibility")
        filled = results["fill"] = await fill(client, args.incidents, args.platforms, args.seed)
        say(f"   {filled['started']:,.0f} started in {filled['seconds']:.1f} s; listing")
        settings = Settings(task_queue=TASK_QUEUE, registry_path=run_dir / "participants.json")
        figures = await measure(Incidents(client, settings), args.runs)
        if args.before:
            say("the task workflows' records, for the list as it was read before")
            results["fill_tasks"] = await fill_tasks(
                client, args.incidents, args.platforms, args.seed
            )
            for n in (0, 39):
                name = f"p{n:02d}'s list read as before (task workflows)"
                read = partial(listed_before, client, platform(n))
                figures.append(await timed(name, args.runs, read))
        results["figures"] = [asdict(f) for f in figures]
        results["load_average_at_end"] = load_average()
    finally:
        server.terminate()
        await asyncio.to_thread(server.wait, 15)
    return results


async def connected(address: str, within: float = 30.0) -> Client:
    """The frontend answers before the namespace is served: until a call succeeds."""
    deadline = time.monotonic() + within
    while True:
        try:
            client = await Client.connect(address, data_converter=pydantic_data_converter)
            await client.count_workflows()
            return client
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


def table(results: dict[str, Any]) -> str:
    lines = [f"{'list':<40} {'rows':>7} {'median':>9} {'range':>15}"]
    for f in results["figures"]:
        spread = f"{f['min_s'] * 1000:,.0f}-{f['max_s'] * 1000:,.0f} ms"
        lines.append(
            f"{f['name']:<40} {f['rows']:>7,} {f['median_s'] * 1000:>6,.0f} ms {spread:>15}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.listing", description=__doc__)
    p.add_argument("--incidents", type=int, default=10_000, help="default 10,000")
    p.add_argument("--platforms", type=int, default=40, help="in the registry (default 40)")
    p.add_argument("--runs", type=int, default=3, help="of each list (default 3)")
    p.add_argument("--seed", type=int, default=15)
    p.add_argument(
        "--run-dir",
        type=Path,
        default=Path("var/bench-listing"),
        help="the dev server's database: kept, so a second run starts none again",
    )
    p.add_argument(
        "--before",
        action="store_true",
        help="also start the task workflows and read a platform's list as it was read before",
    )
    p.add_argument("--out", type=Path, default=RESULTS, help="default bench/listing.json")
    p.add_argument("--fresh", action="store_true", help="remove the run dir first")
    args = p.parse_args(argv)
    args.run_dir = args.run_dir.resolve()
    if args.fresh and args.run_dir.exists():
        shutil.rmtree(args.run_dir)
    args.run_dir.mkdir(parents=True, exist_ok=True)
    results = asyncio.run(run(args))
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(table(results))
    print(
        f"\n{results['incidents']:,} incidents on {results['cpus']} cpus; load average at start "
        f"{results['load_average_at_start']}, at end {results['load_average_at_end']}; "
        f"results in {args.out}"
    )


if __name__ == "__main__":
    main()

"""`make bench`: `python -m bench [--quick] [--identifiers N] [--platforms P] ...`"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import audit_speed, crisis, histories, naive, report, sightings
from bench.env import Options, World, _start, load_average, start_world
from bench.memory import peaks

RESULTS = Path(__file__).parent / "results.json"
QUICK: dict[str, Any] = {
    "identifiers": 50,
    "platforms": 3,
    "naive_tasks": 60,
    "sighting_rate": 10.0,
    "sighting_seconds": 3.0,
    "sighting_platforms": 3,
}


def parse(argv: list[str] | None = None) -> tuple[Options, Path]:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--identifiers", type=int, default=1000, help="content items (default 1000)")
    p.add_argument("--platforms", type=int, default=10, help="takedown platforms (default 10)")
    p.add_argument("--naive-tasks", type=int, default=1000, help="naive sample (default 1000)")
    p.add_argument("--sighting-rate", type=float, default=50.0, help="per second (default 50)")
    p.add_argument("--sighting-seconds", type=float, default=60.0, help="default 60")
    p.add_argument("--sighting-platforms", type=int, default=10, help="default 10")
    p.add_argument(
        "--sighting-drain",
        type=float,
        default=120.0,
        help="after the last send, wait this long for answers and webhooks (default 120)",
    )
    p.add_argument("--workflow-workers", type=int, default=1)
    p.add_argument("--activity-workers", type=int, default=1)
    p.add_argument("--act-after", type=float, default=0.2, help="platform removes after (s)")
    p.add_argument("--skip-naive", action="store_true")
    p.add_argument("--skip-sightings", action="store_true")
    p.add_argument("--profile", type=Path, help="py-spy profiles of benchmark 1 into this dir")
    p.add_argument("--run-dir", type=Path, default=Path("var/bench"))
    p.add_argument("--out", type=Path, default=RESULTS, help="default bench/results.json")
    p.add_argument(
        "--quick",
        action="store_true",
        help="a small run: 50 identifiers x 3 platforms, 60 naive tasks, 3 s of sightings",
    )
    if "--quick" in (sys.argv[1:] if argv is None else argv):  # explicit sizes still win
        p.set_defaults(**QUICK)
    a = p.parse_args(argv)
    options = Options(
        identifiers=a.identifiers,
        platforms=a.platforms,
        naive_tasks=a.naive_tasks,
        sighting_rate=a.sighting_rate,
        sighting_seconds=a.sighting_seconds,
        sighting_platforms=a.sighting_platforms,
        sighting_drain=a.sighting_drain,
        workflow_workers=a.workflow_workers,
        activity_workers=a.activity_workers,
        act_after=a.act_after,
        run_dir=a.run_dir,
        skip_naive=a.skip_naive,
        skip_sightings=a.skip_sightings,
        profile=a.profile,
    )
    return options, a.out


def say(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')}  {message}", file=sys.stderr, flush=True)


async def run(options: Options, out: Path) -> dict[str, Any]:
    results: dict[str, Any] = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "load_average_at_start": load_average(),
        "cpus": os.cpu_count(),
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(options).items()},
    }
    say(f"load average {results['load_average_at_start']}; starting the stack")
    world = await start_world(options)
    try:
        await _benchmarks(world, results, out)
        results["memory_mb"] = peaks(world.pids)
    finally:
        results.setdefault("memory_mb", peaks(world.pids))
        world.stack.stop()
        results["targets"] = report.targets(results)
        report.write(results, out)  # partial results survive an interrupted run
    return results


async def _benchmarks(world: World, results: dict[str, Any], out: Path) -> None:
    options = world.options
    client = await world.connect()
    say(f"1. crisis: {options.identifiers} identifiers x {options.platforms} platforms")
    c = await crisis.run(world)
    results["crisis"] = asdict(c) | {"tasks_per_s": c.tasks_per_s}
    results["load_average_after_crisis"] = load_average()
    say(f"   {c.tasks} tasks in {c.seconds:.2f} s: {c.tasks_per_s:,.0f} tasks/s")
    report.write(results, out)
    say("3. histories")
    runs = await histories.fetch(client, c.incident_id)
    sizes = histories.sizes(runs)
    results["histories"] = {
        "runs": [asdict(s) for s in sizes],
        "max_events": max(s.events for s in sizes),
        "max_bytes": max(s.bytes for s in sizes),
    }
    say("4. audit speed")
    a = await audit_speed.measure([h for _, h in runs], world.ledger_url, c.incident_id)
    results["audit"] = asdict(a) | {"events_per_s": a.events_per_s, "rows_per_s": a.rows_per_s}
    if not options.skip_naive:
        say(f"1. naive baseline: {options.naive_tasks} tasks")
        _start(world, "naive-worker", [sys.executable, "-m", "bench.naive"])
        await asyncio.sleep(1.0)
        n = await naive.drive(client, "bench-naive", options.platforms, options.naive_tasks)
        results["naive"] = asdict(n) | {"tasks_per_s": n.tasks_per_s}
        say(f"   {n.tasks} tasks in {n.seconds:.2f} s: {n.tasks_per_s:,.1f} tasks/s")
        report.write(results, out)
    if not options.skip_sightings:
        say(f"2. sightings: {options.sighting_rate}/s for {options.sighting_seconds} s")
        s = await sightings.run(world)
        results["sightings"] = {k: v for k, v in asdict(s).items() if k != "latencies"}
        say(f"   p50 {s.p50:.3f} s, p99 {s.p99:.3f} s, lost {s.lost}, twice {s.twice}")


def main(argv: list[str] | None = None) -> None:
    options, out = parse(argv)
    results = asyncio.run(run(options, out))
    results["load_average_at_end"] = load_average()
    report.write(results, out)
    print(report.table(results["targets"]))
    print(f"\nload average at start {results['load_average_at_start']}; results in {out}")


if __name__ == "__main__":
    main()

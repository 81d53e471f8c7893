"""`make bench`: `python -m bench [--quick] [--identifiers N] [--platforms P] ...`"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import activation, audit_speed, crisis, histories, naive, report, sightings
from bench.env import Options, World, _start, start_api, start_world
from bench.memory import peaks
from bench.profile import profiled
from bench.report import add_round, load_average

RESULTS = Path(__file__).parent / "results.json"  # the full run's, committed
QUICK: dict[str, Any] = {
    "rounds": 1,
    "identifiers": 50,
    "platforms": 3,
    "activation_identifiers": 10,
    "activation_platforms": 5,
    "naive_tasks": 60,
    "sighting_rate": 10.0,
    "sighting_seconds": 3.0,
    "sighting_platforms": 3,
    "held_api_workers": 0,
}


def parse(argv: list[str] | None = None) -> tuple[Options, Path]:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--rounds", type=int, default=3, help="runs of each benchmark (default 3)")
    p.add_argument("--identifiers", type=int, default=1000, help="content items (default 1000)")
    p.add_argument("--platforms", type=int, default=10, help="takedown platforms (default 10)")
    p.add_argument("--activation-identifiers", type=int, default=100, help="default 100")
    p.add_argument("--activation-platforms", type=int, default=200, help="default 200")
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
    p.add_argument("--api-workers", type=int, default=1, help="API processes (default 1)")
    p.add_argument(
        "--held-api-workers",
        type=int,
        default=3,
        help="the crisis again with this many API processes (`eucp api --workers`; default 3, "
        "0 to skip)",
    )
    p.add_argument("--act-after", type=float, default=0.2, help="platform removes after (s)")
    p.add_argument("--skip-naive", action="store_true")
    p.add_argument("--skip-sightings", action="store_true")
    p.add_argument("--skip-activation", action="store_true")
    p.add_argument("--profile", type=Path, help="py-spy profiles of each first round, in DIR")
    p.add_argument("--run-dir", type=Path, default=Path("var/bench"))
    p.add_argument(
        "--out",
        type=Path,
        help="default bench/results.json; for --quick RUN_DIR/results.json (so a quick run "
        "never replaces the committed figures)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="a small run, once: 50 identifiers x 3 platforms, 5 platforms x 10 activated, 60 "
        "naive tasks, 3 s of sightings, no second API",
    )
    if "--quick" in (sys.argv[1:] if argv is None else argv):  # explicit sizes still win
        p.set_defaults(**QUICK)
    a = p.parse_args(argv)
    options = Options(
        rounds=a.rounds,
        identifiers=a.identifiers,
        platforms=a.platforms,
        activation_identifiers=a.activation_identifiers,
        activation_platforms=a.activation_platforms,
        naive_tasks=a.naive_tasks,
        sighting_rate=a.sighting_rate,
        sighting_seconds=a.sighting_seconds,
        sighting_platforms=a.sighting_platforms,
        sighting_drain=a.sighting_drain,
        workflow_workers=a.workflow_workers,
        activity_workers=a.activity_workers,
        act_after=a.act_after,
        api_workers=a.api_workers,
        held_api_workers=a.held_api_workers,
        run_dir=a.run_dir,
        skip_naive=a.skip_naive,
        skip_sightings=a.skip_sightings,
        skip_activation=a.skip_activation,
        profile=a.profile,
    )
    return options, a.out or (a.run_dir / "results.json" if a.quick else RESULTS)


def say(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')}  {message}", file=sys.stderr, flush=True)


async def run(options: Options, out: Path) -> dict[str, Any]:
    results: dict[str, Any] = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "load_average_at_start": load_average(),
        "cpus": os.cpu_count(),
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(options).items()},
        "memory_mb": {},
    }
    say(f"load average {results['load_average_at_start']}; starting the stack")
    world = await start_world(options)
    try:
        await _benchmarks(world, results, out)
    finally:
        _memory(world, results)
        world.stack.stop()
        world.receivers.close()
        results["load_average_at_end"] = load_average()
        results["targets"] = report.targets(results)
        report.write(results, out)  # partial results survive an interrupted run
    return results


def _memory(world: World, results: dict[str, Any]) -> None:
    """The peaks of the processes still running (an API replaced keeps its last figure)."""
    results["memory_mb"] |= {k: v for k, v in peaks(world.pids).items() if v is not None}


def _profile(world: World, benchmark: str, round_: int) -> contextlib.AbstractContextManager[None]:
    """The first round of each benchmark is profiled when `--profile` says where."""
    out = world.options.profile
    return profiled(out / benchmark if out and round_ == 0 else None, world.pids)


Round = Callable[[int], Awaitable[dict[str, Any]]]


async def _benchmarks(world: World, results: dict[str, Any], out: Path) -> None:
    o = world.options
    client = await world.connect()

    async def crisis_round(r: int, name: str = "bench-crisis") -> dict[str, Any]:
        c = await crisis.run(world, f"{name}-{r}")
        return asdict(c) | {"tasks_per_s": c.tasks_per_s}

    async def audited_crisis_round(r: int) -> dict[str, Any]:
        """A crisis, then the size of its histories and the audit's speed on them."""
        figures = await crisis_round(r)
        runs = await histories.fetch(client, figures["incident_id"])
        sizes = histories.sizes(runs)
        most = {
            "max_events": max(s.events for s in sizes),
            "max_bytes": max(s.bytes for s in sizes),
        }
        add_round(results, "histories", most)
        a = await audit_speed.measure(
            [h for _, h in runs], world.ledger_url, figures["incident_id"]
        )
        add_round(
            results,
            "audit",
            asdict(a) | {"events_per_s": a.events_per_s, "rows_per_s": a.rows_per_s},
        )
        say(f"   audit: {a.events} events replayed at {a.events_per_s:,.0f}/s")
        return figures

    async def activation_round(r: int) -> dict[str, Any]:
        return asdict(await activation.run(world, f"bench-activation-{r}"))

    async def sightings_round(r: int) -> dict[str, Any]:
        s = await sightings.run(world, f"bench-sightings-{r}")
        return {k: v for k, v in asdict(s).items() if k != "latencies"}

    async def naive_round(r: int) -> dict[str, Any]:
        n = await naive.drive(client, f"bench-naive-{r}", o.platforms, o.naive_tasks)
        return asdict(n) | {"tasks_per_s": n.tasks_per_s}

    throughput = "{tasks} tasks in {seconds:.2f} s: {tasks_per_s:,.0f} tasks/s"
    size = f"{o.identifiers} identifiers x {o.platforms} platforms"
    await _rounds(
        world, results, out, "crisis", f"1. crisis, {size}", audited_crisis_round, throughput
    )
    if o.held_api_workers > 1:
        _memory(world, results)
        await start_api(world, o.held_api_workers)
        title = f"1. crisis, {size}, {o.held_api_workers} API processes"
        await _rounds(
            world,
            results,
            out,
            "crisis_held",
            title,
            lambda r: crisis_round(r, "bench-crisis-held"),
            throughput,
        )
        _memory(world, results)
        await start_api(world, o.api_workers)
    if not o.skip_sightings:
        title = f"3. sightings, {o.sighting_rate}/s for {o.sighting_seconds} s"
        line = "p50 {p50:.3f} s, p99 {p99:.3f} s, lost {lost}, twice {twice}"
        await _rounds(world, results, out, "sightings", title, sightings_round, line)
    if not o.skip_activation:
        title = f"2. activation, {o.activation_platforms} platforms x {o.activation_identifiers}"
        line = "answered in {call_seconds:.2f} s, first webhook p99 {first_p99:.2f} s, "
        line += "every platform's tasks by {all_notified} s"
        await _rounds(world, results, out, "activation", title, activation_round, line)
    if not o.skip_naive:
        _start(world, "naive-worker", [sys.executable, "-m", "bench.naive"])
        await asyncio.sleep(1.0)
        await _rounds(
            world,
            results,
            out,
            "naive",
            f"1. naive baseline, {o.naive_tasks} tasks",
            naive_round,
            throughput,
        )


async def _rounds(
    world: World,
    results: dict[str, Any],
    out: Path,
    benchmark: str,
    title: str,
    one: Round,
    line: str,
) -> None:
    """`--rounds` rounds of one benchmark, each said with `line` (formatted with its figures)
    and the load average, the results file written after each; the first one profiled."""
    for r in range(world.options.rounds):
        say(f"{title}: round {r + 1} of {world.options.rounds}")
        with _profile(world, benchmark, r):
            figures = await one(r)
        add_round(results, benchmark, figures)
        say(f"   {line.format(**figures)}; {_load()}")
        report.write(results, out)


def _load() -> str:
    return "load average " + " ".join(f"{v:.2f}" for v in load_average())


def main(argv: list[str] | None = None) -> None:
    options, out = parse(argv)
    # stopped with SIGTERM (or SIGINT where a shell left it ignored), it stops what it started
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    results = asyncio.run(run(options, out))
    print(report.table(results["targets"]))
    print(
        f"\n{options.rounds} round(s) each; load average at start "
        f"{results['load_average_at_start']}, at end {results['load_average_at_end']}; "
        f"results in {out}"
    )


if __name__ == "__main__":
    main()

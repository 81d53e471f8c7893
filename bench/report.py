"""Each benchmark's rounds with the median and range of every figure, the results table (each
target beside its median and range) and the results file."""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

MB = 1024 * 1024


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def add_round(results: dict[str, Any], benchmark: str, figures: dict[str, Any]) -> None:
    """Adds one round's figures, with the load average at its end, and summarises every
    numeric figure over the rounds so far: median and [lowest, highest]."""
    entry = results.setdefault(benchmark, {"rounds": []})
    entry["rounds"].append(figures | {"load_average": load_average()})
    numeric = [
        k for k, v in figures.items() if isinstance(v, int | float) and not isinstance(v, bool)
    ]
    entry["median"], entry["range"] = {}, {}
    for name in numeric:
        values = [r[name] for r in entry["rounds"] if isinstance(r.get(name), int | float)]
        entry["median"][name] = statistics.median(values)
        entry["range"][name] = [min(values), max(values)]


def target(
    results: dict[str, Any],
    benchmark: str,
    figure: str,
    name: str,
    unit: str,
    goal: str = "",
    ok: Callable[[float], bool] | None = None,
    scale: float = 1.0,
) -> dict[str, Any] | None:
    """One row of the table: a figure's median and range over the rounds, and whether its
    median meets the goal (None when it has no goal); None when the figure was not run."""
    entry = results.get(benchmark)
    if not entry or figure not in entry["median"]:
        return None
    median = entry["median"][figure] / scale
    low, high = (v / scale for v in entry["range"][figure])
    return {
        "figure": name,
        "median": median,
        "range": [low, high],
        "rounds": len(entry["rounds"]),
        "unit": unit,
        "target": goal,
        "pass": None if ok is None else ok(median),
    }


def every_round(
    results: dict[str, Any], benchmark: str, check: Callable[[dict[str, Any]], bool]
) -> bool:
    return all(check(r) for r in results.get(benchmark, {}).get("rounds", []))


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    held = results.get("options", {}).get("held_api_workers")
    rows = [
        target(
            results,
            "crisis",
            "tasks_per_s",
            "1. crisis throughput",
            "tasks/s",
            ">= 1800",
            lambda v: v >= 1800,
        ),
        target(results, "crisis", "activate_seconds", "1. crisis: the activation call", "s"),
        target(
            results,
            "crisis_held",
            "tasks_per_s",
            f"1. the same, {held} API processes",
            "tasks/s",
            ">= 1800",
            lambda v: v >= 1800,
        ),
        target(results, "naive", "tasks_per_s", "1. naive baseline", "tasks/s", "(baseline)"),
        target(results, "activation", "call_seconds", "2. activation: the call", "s"),
        target(
            results,
            "activation",
            "first_p99",
            "2. activation: first webhook p99",
            "s",
            "< 2",
            lambda v: v < 2,
        ),
        target(results, "activation", "tasks_p99", "2. activation: tasks webhook p99", "s"),
        target(
            results,
            "activation",
            "all_notified",
            "2. activation: every platform's tasks",
            "s",
            "< 10",
            lambda v: v < 10,
        ),
        target(results, "sightings", "p50", "3. sighting latency p50", "s"),
        target(results, "sightings", "p99", "3. sighting latency p99", "s", "< 1", lambda v: v < 1),
        target(results, "sightings", "max", "3. sighting latency max", "s"),
        target(
            results,
            "histories",
            "max_events",
            "4. largest history",
            "events",
            "< 5120",
            lambda v: v < 5120,
        ),
        target(
            results,
            "histories",
            "max_bytes",
            "4. largest history",
            "MB",
            "< 5",
            lambda v: v < 5,
            scale=MB,
        ),
        target(
            results,
            "audit",
            "events_per_s",
            "5. audit replay",
            "events/s",
            ">= 2000",
            lambda v: v >= 2000,
        ),
        target(results, "audit", "rows_per_s", "5. ledger verify", "rows/s"),
    ]
    found = [r for r in rows if r is not None]
    checks = {
        "every task resolved, chain verified": every_round(
            results, "crisis", lambda r: bool(r["all_resolved"] and r["removed"] == r["tasks"])
        )
        and every_round(
            results, "audit", lambda r: bool(r["chain_ok"] and not r["replay_failures"])
        ),
        "every platform told of its tasks": every_round(
            results, "activation", lambda r: bool(r["notified"] == r["platforms"])
        ),
        "no sighting lost or told twice": every_round(
            results, "sightings", lambda r: bool(r["lost"] == 0 and r["twice"] == 0)
        ),
    }
    for name, ok in checks.items():
        found.append(
            {
                "figure": name,
                "median": None,
                "range": None,
                "unit": "",
                "target": "all rounds",
                "pass": ok,
            }
        )
    for name, mb in results.get("memory_mb", {}).items():
        if name.startswith(("worker", "api")) and mb is not None:
            found.append(
                {
                    "figure": f"6. peak RSS {name}",
                    "median": mb,
                    "range": None,
                    "unit": "MB",
                    "target": "< 500",
                    "pass": mb < 500,
                }
            )
    return found


def _number(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.3f}".rstrip("0").rstrip(".") if v else "0"


def table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'figure':<44} {'median':>10} {'range':>19} {'unit':<9} {'target':<11} result"]
    for r in rows:
        span = "" if r["range"] is None else f"{_number(r['range'][0])}-{_number(r['range'][1])}"
        verdict = {True: "met", False: "MISSED", None: ""}[r["pass"]]
        lines.append(
            f"{r['figure']:<44} {_number(r['median']):>10} {span:>19} {r['unit']:<9} "
            f"{r['target']:<11} {verdict}"
        )
    return "\n".join(lines)


def write(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1, default=str) + "\n")

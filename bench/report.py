"""The results table, with each target beside its figure, and bench/results.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MB = 1024 * 1024


def target(
    name: str, value: float | None, goal: str, ok: bool | None, unit: str = ""
) -> dict[str, Any]:
    return {"figure": name, "value": value, "unit": unit, "target": goal, "pass": ok}


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    crisis = results.get("crisis")
    naive = results.get("naive")
    if crisis:
        tps = crisis["tasks_per_s"]
        rows.append(target("1. crisis throughput", tps, ">= 1500", tps >= 1500, "tasks/s"))
        rows.append(
            target(
                "1. every task resolved, chain verified",
                crisis["removed"],
                f"== {crisis['tasks']}",
                crisis["all_resolved"] and results.get("audit", {}).get("chain_ok", False),
                "tasks",
            )
        )
    if crisis and naive:
        ratio = crisis["tasks_per_s"] / naive["tasks_per_s"] if naive["tasks_per_s"] else None
        rows.append(
            target("1. naive baseline", naive["tasks_per_s"], "(baseline)", None, "tasks/s")
        )
        rows.append(
            target("1. speed-up over naive", ratio, ">= 50", ratio is not None and ratio >= 50, "x")
        )
    s = results.get("sightings")
    if s:
        rows.append(target("2. sighting latency p50", s["p50"], "", None, "s"))
        rows.append(target("2. sighting latency p99", s["p99"], "< 1", s["p99"] < 1.0, "s"))
        rows.append(target("2. sighting latency max", s["max"], "", None, "s"))
        rows.append(target("2. lost", s["lost"], "0", s["lost"] == 0, "deliveries"))
        rows.append(target("2. twice", s["twice"], "0", s["twice"] == 0, "deliveries"))
    h = results.get("histories")
    if h:
        rows.append(
            target(
                "3. largest history", h["max_events"], "< 5120", h["max_events"] < 5120, "events"
            )
        )
        rows.append(
            target("3. largest history", h["max_bytes"] / MB, "< 5", h["max_bytes"] < 5 * MB, "MB")
        )
    a = results.get("audit")
    if a:
        rows.append(target("4. replay", a["events_per_s"], "", None, "events/s"))
        rows.append(target("4. ledger verify", a["rows_per_s"], "", None, "rows/s"))
    for name, mb in results.get("memory_mb", {}).items():
        if name.startswith(("worker", "api")):
            rows.append(
                target(f"5. peak RSS {name}", mb, "< 500", mb is not None and mb < 500, "MB")
            )
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'figure':<40} {'value':>12} {'unit':<10} {'target':<10} result"]
    for r in rows:
        v = r["value"]
        value = "-" if v is None else (f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.3f}")
        verdict = {True: "pass", False: "MISS", None: ""}[r["pass"]]
        lines.append(f"{r['figure']:<40} {value:>12} {r['unit']:<10} {r['target']:<10} {verdict}")
    return "\n".join(lines)


def write(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1, default=str) + "\n")

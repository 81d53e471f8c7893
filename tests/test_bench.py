"""The benchmark's code paths at a tiny size (a smoke test: no timing is asserted)."""

from __future__ import annotations

import json
from pathlib import Path

from bench.__main__ import main
from bench.sightings import percentile


def test_percentile() -> None:
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([], 99) == 0.0


def test_bench_runs_small(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    main(
        [
            "--quick",
            "--identifiers",
            "20",
            "--platforms",
            "2",
            "--naive-tasks",
            "10",
            "--sighting-seconds",
            "1",
            "--run-dir",
            str(tmp_path / "run"),
            "--out",
            str(out),
        ]
    )
    results = json.loads(out.read_text())
    crisis = results["crisis"]
    assert crisis["tasks"] == 40
    assert crisis["removed"] == 40 and crisis["acknowledged"] == 40
    assert crisis["all_resolved"]
    assert results["audit"]["chain_ok"] and results["audit"]["replay_failures"] == 0
    assert results["histories"]["max_events"] > 0
    assert results["naive"]["tasks"] == 10
    assert results["sightings"]["lost"] == 0 and results["sightings"]["twice"] == 0
    assert {"worker-workflows-0", "worker-activities-0", "api"} <= results["memory_mb"].keys()
    assert any(t["figure"].startswith("1. crisis") for t in results["targets"])

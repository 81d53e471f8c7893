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
    """Two rounds of each benchmark; the activation large enough (25 platforms x 100) to go
    to its platforms by reference, as 200 x 100 does."""
    main(
        [
            "--quick",
            "--rounds",
            "2",
            "--identifiers",
            "20",
            "--platforms",
            "2",
            "--activation-platforms",
            "25",
            "--activation-identifiers",
            "100",
            "--naive-tasks",
            "10",
            "--sighting-seconds",
            "1",
            "--run-dir",
            str(tmp_path / "run"),
        ]
    )
    results = json.loads((tmp_path / "run" / "results.json").read_text())  # not bench/'s
    crisis = results["crisis"]
    assert [r["tasks"] for r in crisis["rounds"]] == [40, 40]
    assert all(r["removed"] == 40 and r["acknowledged"] == 40 for r in crisis["rounds"])
    low, high = crisis["range"]["tasks_per_s"]
    assert low <= crisis["median"]["tasks_per_s"] <= high
    assert all(len(r["load_average"]) == 3 for r in crisis["rounds"])
    assert [r["notified"] for r in results["activation"]["rounds"]] == [25, 25]
    assert all(r["replay_failures"] == 0 for r in results["audit"]["rounds"])
    assert results["naive"]["median"]["tasks"] == 10
    assert {"worker-workflows-0", "worker-activities-0", "api"} <= results["memory_mb"].keys()
    verdicts = {t["figure"]: t["pass"] for t in results["targets"]}
    assert verdicts["every task resolved, chain verified"]
    assert verdicts["every platform told of its tasks"]
    assert verdicts["no sighting lost or told twice"]

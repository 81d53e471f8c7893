"""`python -m chaos [SCENARIO ...]`: runs the scenarios (all by default) one after another,
prints the table, writes it as JSON and exits 1 if any scenario failed."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
import time
from pathlib import Path

from chaos.results import Result, as_json, markdown, table
from chaos.scenarios import SCENARIOS, Scenario

DEADLINE = 180.0  # seconds one scenario may take before it counts as failed


async def run(name: str, scenario: Scenario, root: Path) -> Result:
    """One scenario; an exception or a scenario past its deadline is a failure, not a crash."""
    started = time.monotonic()
    try:
        result = await asyncio.wait_for(scenario(root), DEADLINE)
    except Exception as err:  # reported in the table; the suite goes on
        result = Result(name, problems=[f"{type(err).__name__}: {err}"])
    return dataclasses.replace(result, seconds=time.monotonic() - started)


def say(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')}  {message}", flush=True)


async def run_all(names: list[str], root: Path) -> list[Result]:
    results = []
    for name in names:
        say(f"{name} ...")
        result = await run(name, SCENARIOS[name], root)
        say(f"{name}: {'pass' if result.ok else 'FAIL'} in {result.seconds:.0f}s")
        results.append(result)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO", help=", ".join(SCENARIOS))
    parser.add_argument("--root", type=Path, default=Path("var/chaos"), help="work folder")
    parser.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    args = parser.parse_args(argv)
    names = args.scenarios or list(SCENARIOS)
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown:
        parser.error(
            f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}"
        )
    started = time.monotonic()
    results = asyncio.run(run_all(names, args.root))
    seconds = time.monotonic() - started
    print()
    print(table(results))
    if args.markdown:
        print()
        print(markdown(results))
    out = args.root / "results.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(as_json(results, seconds), indent=1) + "\n")
    print(f"\n{len(results)} scenario(s) in {seconds:.0f}s; results in {out}")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())

"""Optional profiles of the eucp processes during the first round of each benchmark
(`--profile DIR`): `py-spy record` in raw (collapsed stack) format, one file per process and
benchmark (DIR/BENCHMARK/PROCESS.txt, an API's own processes included), and the top frames by
sample count (`python -m bench.profile FILE`)."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

PY_SPY = str(Path(sys.executable).parent / "py-spy")


class Profiles:
    def __init__(self, out: Path, pids: dict[str, int]) -> None:
        self.out = out
        self.pids = {n: p for n, p in pids.items() if n.startswith(("worker", "api"))}
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        for name, pid in self.pids.items():
            args = [PY_SPY, "record", "--pid", str(pid), "--format", "raw", "--rate", "50"]
            args += ["--subprocesses"]
            args += ["--output", str(self.out / f"{name}.txt"), "--nonblocking"]
            self.procs.append(
                subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )

    def stop(self) -> None:
        for proc in self.procs:
            proc.send_signal(signal.SIGINT)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def profiled(out: Path | None, pids: dict[str, int]) -> Iterator[None]:
    """Profiles the workers and the API while the block runs, when `out` is given."""
    if out is None:
        yield
        return
    profiles = Profiles(out, pids)
    profiles.start()
    try:
        yield
    finally:
        profiles.stop()


def top(path: Path, n: int = 15) -> list[tuple[str, int]]:
    """The functions with the most samples anywhere on the stack (inclusive), from a raw file."""
    counts: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        if not samples.isdigit():
            continue
        for frame in set(stack.split(";")):
            counts[frame] += int(samples)
    return counts.most_common(n)


if __name__ == "__main__":
    for frame, samples in top(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 40):
        print(f"{samples:>7}  {frame}")

"""Benchmark 5: peak resident memory (VmHWM) of each eucp process."""

from __future__ import annotations

from bench.env import children


def peak_mb(pid: int) -> float | None:
    """The process's high-water resident set in MB, None when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def peaks(pids: dict[str, int]) -> dict[str, float | None]:
    """Each process's peak; for one that serves through processes of its own (the API with
    `--workers`), the largest of them."""
    return {name: _largest([pid, *children(pid)]) for name, pid in pids.items()}


def _largest(pids: list[int]) -> float | None:
    return max((mb for mb in map(peak_mb, pids) if mb is not None), default=None)

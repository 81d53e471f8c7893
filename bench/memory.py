"""Benchmark 5: peak resident memory (VmHWM) of each eucp process."""

from __future__ import annotations


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
    return {name: peak_mb(pid) for name, pid in pids.items()}

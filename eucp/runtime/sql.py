"""The SQL databases eucp keeps state in: a SQLite file (the embedded default, one host) or
PostgreSQL (any number of processes on any hosts). The ledger and the API's shared state are
both `SqlStore`s; a `Dialect` holds what differs between the two databases."""

from __future__ import annotations

import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import psycopg

_T = TypeVar("_T")
SCHEMES = ("sqlite", "postgresql", "postgres")


class Cursor(Protocol):
    """The DB-API cursor subset that sqlite3 and psycopg share."""

    def execute(self, query: str, params: Sequence[Any] = ..., /) -> object: ...

    def executemany(self, query: str, params_seq: Iterable[Sequence[Any]], /) -> object: ...

    def fetchall(self) -> list[Any]: ...


class Dialect(ABC):
    """What differs between SQL databases; everything else is shared in `SqlStore`."""

    placeholder: str
    least: str  # the two-argument minimum: `min` in SQLite, `LEAST` in PostgreSQL
    greatest: str
    serial: str  # an integer key that numbers rows in insertion order

    @abstractmethod
    def read(self) -> AbstractContextManager[Cursor]:
        """A cursor for reads outside any explicit transaction."""

    @abstractmethod
    def write(self, lock_names: Sequence[str]) -> AbstractContextManager[Cursor]:
        """A cursor in a transaction that serialises with every other writer of `lock_names`."""

    @abstractmethod
    def reconnect_if_dropped(self) -> bool:
        """Replace a dropped connection; True if it did, so the failed work may be retried."""

    @abstractmethod
    def close(self) -> None:
        """Close the connection."""


class SqliteDialect(Dialect):
    """SQLite: WAL journal, and `BEGIN IMMEDIATE` so a writer holds the database's write lock
    from its first read, which keeps what it read stable until it commits."""

    placeholder = "?"
    least = "min"
    greatest = "max"
    serial = "INTEGER PRIMARY KEY AUTOINCREMENT"

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: no implicit transactions, `write` issues its own BEGIN.
        self._conn = sqlite3.connect(
            path, timeout=30, isolation_level=None, check_same_thread=False
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")

    @contextmanager
    def read(self) -> Iterator[Cursor]:
        cur = self._conn.cursor()
        try:
            yield cur
        finally:
            cur.close()

    @contextmanager
    def write(self, lock_names: Sequence[str]) -> Iterator[Cursor]:
        cur = self._conn.cursor()
        try:
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
                cur.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    cur.execute("ROLLBACK")
                raise
        finally:
            cur.close()

    def reconnect_if_dropped(self) -> bool:
        return False

    def close(self) -> None:
        self._conn.close()


class PostgresDialect(Dialect):
    """PostgreSQL: a transaction-scoped advisory lock per name, so writers in several processes
    take turns at what they share; reconnects when the server dropped us."""

    placeholder = "%s"
    least = "LEAST"
    greatest = "GREATEST"
    serial = "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"

    def __init__(self, url: str) -> None:
        self._url = url
        self._conn = self._connect()

    def _connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        return psycopg.connect(self._url, autocommit=True)

    @contextmanager
    def read(self) -> Iterator[Cursor]:
        with self._conn.cursor() as cur:
            yield cur

    @contextmanager
    def write(self, lock_names: Sequence[str]) -> Iterator[Cursor]:
        with self._conn.transaction(), self._conn.cursor() as cur:
            # Locks in one global order (by key, not name: names may share a key) avoid deadlocks.
            cur.execute(
                "SELECT DISTINCT hashtext(name) FROM unnest(%s::text[]) AS name ORDER BY 1",
                [list(lock_names)],
            )
            for (key,) in cur.fetchall():
                cur.execute("SELECT pg_advisory_xact_lock(%s)", [key])
            yield cur

    def reconnect_if_dropped(self) -> bool:
        if not self._conn.broken:  # alive, or closed on purpose
            return False
        self._conn = self._connect()
        return True

    def close(self) -> None:
        self._conn.close()


def dialect_of(url: str, what: str) -> Dialect:
    """The database at `url`: `sqlite:///relative/path`, `sqlite:////absolute/path` or
    `postgresql://user@host:port/db` (`postgres://` too). `what` names it in errors."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        if parts.netloc or not parts.path.startswith("/") or len(parts.path) < 2:
            raise ValueError(f"a sqlite {what} url looks like sqlite:///relative/path.sqlite3")
        return SqliteDialect(Path(parts.path[1:]))
    if parts.scheme in ("postgresql", "postgres"):
        return PostgresDialect(url)
    # Name only the scheme: a PostgreSQL url may carry a password.
    raise ValueError(
        f"unsupported {what} url scheme {parts.scheme!r}; use one of: {', '.join(SCHEMES)}"
    )


class SqlStore:
    """State over one connection of a `Dialect`; `lock` serialises its use across threads."""

    def __init__(self, dialect: Dialect, lock: threading.Lock) -> None:
        self._dialect = dialect
        self._lock = lock

    def close(self) -> None:
        with self._lock:
            self._dialect.close()

    def _sql(self, query: str) -> str:
        """The query with `?` placeholders turned into the dialect's."""
        return query.replace("?", self._dialect.placeholder)

    def _execute(self, cur: Cursor, query: str, params: Sequence[Any] = ()) -> None:
        cur.execute(self._sql(query), params)

    def _run(self, work: Callable[[Cursor], _T], write_locks: Sequence[str] | None = None) -> _T:
        """Run `work` on a cursor, in a write transaction holding `write_locks` if given.

        After a dropped connection it reconnects and runs `work` once more: the ledger's appends
        are idempotent by decision id, and a shared-state write repeated after a commit whose
        answer was lost spends one token more or holds a slot until its lease ends.
        """
        with self._lock:
            try:
                return self._attempt(work, write_locks)
            except Exception:
                if not self._dialect.reconnect_if_dropped():
                    raise
            return self._attempt(work, write_locks)

    def _attempt(self, work: Callable[[Cursor], _T], write_locks: Sequence[str] | None) -> _T:
        scope = self._dialect.read() if write_locks is None else self._dialect.write(write_locks)
        with scope as cur:
            return work(cur)

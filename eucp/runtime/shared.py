"""The state that every API process shares, so that N processes behave as one.

It lives in a database (`Settings.shared_state_url`: the ledger's PostgreSQL, or a SQLite file
beside a SQLite ledger), not in any one process's memory:

- request-rate buckets (per participant, and failed sign-ins per client address): one row per
  key, spent in one atomic upsert, so three processes together allow what one would;
- Update slots: one row per Update waiting for, or sent to, a workflow, in arrival order, so
  the workflow never has more than its limit in flight whichever process sends them; a row
  carries a lease that its process renews, so the slots of a killed process free themselves;
- console sessions, keyed by a digest of the cookie, holding the digest of the token (never a
  usable token or cookie), with the one-time notices of their pages;
- secrets the processes must agree on (the console's CSRF key).

Times are wall-clock seconds (`time.time()`): they are compared across processes and hosts.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

from eucp.runtime.sql import Cursor, SqlStore, dialect_of

SWEEP_EVERY = 1000  # takes between two deletions of full buckets, per process


def _schema(serial: str) -> list[str]:
    # times are epoch seconds: PostgreSQL's REAL (4 bytes) would round them to minutes
    return [
        """CREATE TABLE IF NOT EXISTS api_buckets (
            key TEXT PRIMARY KEY, tokens DOUBLE PRECISION NOT NULL,
            at DOUBLE PRECISION NOT NULL, rate DOUBLE PRECISION NOT NULL,
            burst DOUBLE PRECISION NOT NULL, allowed INTEGER NOT NULL)""",
        f"""CREATE TABLE IF NOT EXISTS api_update_slots (
            ticket {serial}, workflow_id TEXT NOT NULL, holder TEXT NOT NULL,
            expires DOUBLE PRECISION NOT NULL)""",
        """CREATE INDEX IF NOT EXISTS api_update_slots_by_workflow
            ON api_update_slots (workflow_id, ticket)""",
        """CREATE TABLE IF NOT EXISTS console_sessions (
            cookie_digest TEXT PRIMARY KEY, participant_id TEXT NOT NULL,
            token_digest TEXT NOT NULL, started DOUBLE PRECISION NOT NULL,
            seen DOUBLE PRECISION NOT NULL, notices TEXT NOT NULL)""",
        "CREATE TABLE IF NOT EXISTS api_secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ]


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class StoredSession:
    """A console session as stored: who signed in, with which token (its digest), and when."""

    participant_id: str
    token_digest: str
    started: float
    seen: float
    notices: dict[str, Any] = field(default_factory=dict)


class SharedState(SqlStore):
    """The shared tables over one connection; its methods block, so async code runs them in
    a thread."""

    def __init__(self, url: str) -> None:
        dialect = dialect_of(url, "API state")
        super().__init__(dialect, threading.Lock())
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._takes = 0

        def create(cur: Cursor) -> None:
            for statement in _schema(dialect.serial):
                cur.execute(statement)

        self._run(create, write_locks=["eucp api schema"])

    # ---- rate buckets --------------------------------------------------------------------

    def take(self, key: str, rate: float, burst: int, now: float) -> float:
        """Spends one token of `key`'s bucket (`rate` a second, at most `burst`); returns 0
        when allowed, else the seconds until a token is available."""
        least, greatest = self._dialect.least, self._dialect.greatest
        fill = (
            f"{least}(excluded.burst, api_buckets.tokens"
            f" + {greatest}(0, excluded.at - api_buckets.at) * excluded.rate)"
        )
        upsert = f"""INSERT INTO api_buckets (key, tokens, at, rate, burst, allowed)
            VALUES (?, ?, ?, ?, ?, 1)
            ON CONFLICT (key) DO UPDATE SET
                tokens = CASE WHEN {fill} >= 1 THEN {fill} - 1 ELSE {fill} END,
                allowed = CASE WHEN {fill} >= 1 THEN 1 ELSE 0 END,
                at = excluded.at, rate = excluded.rate, burst = excluded.burst
            RETURNING tokens, allowed"""

        def spend(cur: Cursor) -> tuple[float, int]:
            self._execute(cur, upsert, [key, burst - 1, now, rate, burst])
            tokens, allowed = cur.fetchall()[0]
            return float(tokens), int(allowed)

        tokens, allowed = self._run(spend, write_locks=[])
        self._takes += 1
        if self._takes % SWEEP_EVERY == 0:  # a full bucket is the same as none
            self._run(
                lambda cur: self._execute(
                    cur, "DELETE FROM api_buckets WHERE at + burst / rate < ?", [now]
                ),
                write_locks=[],
            )
        return 0.0 if allowed else (1 - tokens) / rate

    # ---- Update slots --------------------------------------------------------------------

    def enter(self, workflow_id: str, expires: float, now: float) -> tuple[int, int]:
        """A ticket at the end of `workflow_id`'s line, and how many live tickets are ahead of
        it. Tickets of dead processes (their lease past) are cleared first."""

        def join(cur: Cursor) -> tuple[int, int]:
            self._execute(
                cur,
                "DELETE FROM api_update_slots WHERE workflow_id = ? AND expires < ?",
                [workflow_id, now],
            )
            self._execute(
                cur, "SELECT count(*) FROM api_update_slots WHERE workflow_id = ?", [workflow_id]
            )
            ahead: int = cur.fetchall()[0][0]
            self._execute(
                cur,
                "INSERT INTO api_update_slots (workflow_id, holder, expires) VALUES (?, ?, ?)"
                " RETURNING ticket",
                [workflow_id, self.holder, expires],
            )
            ticket: int = cur.fetchall()[0][0]
            return ticket, ahead

        # the line's order is the order of its tickets: joins to one line take turns
        return self._run(join, write_locks=[f"slots:{workflow_id}"])

    def ahead(self, workflow_id: str, ticket: int, now: float) -> int:
        """How many live tickets of `workflow_id` came before `ticket`."""

        def count(cur: Cursor) -> int:
            self._execute(
                cur,
                "SELECT count(*) FROM api_update_slots"
                " WHERE workflow_id = ? AND ticket < ? AND expires >= ?",
                [workflow_id, ticket, now],
            )
            found: int = cur.fetchall()[0][0]
            return found

        return self._run(count)

    def leave(self, ticket: int) -> None:
        self._run(
            lambda cur: self._execute(
                cur, "DELETE FROM api_update_slots WHERE ticket = ?", [ticket]
            ),
            write_locks=[],
        )

    def renew(self, expires: float) -> None:
        """Extends the lease of every ticket this process holds."""
        self._run(
            lambda cur: self._execute(
                cur,
                "UPDATE api_update_slots SET expires = ? WHERE holder = ?",
                [expires, self.holder],
            ),
            write_locks=[],
        )

    # ---- console sessions ----------------------------------------------------------------

    def open_session(self, cookie: str, session: StoredSession) -> None:
        self._run(
            lambda cur: self._execute(
                cur,
                "INSERT INTO console_sessions (cookie_digest, participant_id, token_digest,"
                " started, seen, notices) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    digest(cookie),
                    session.participant_id,
                    session.token_digest,
                    session.started,
                    session.seen,
                    json.dumps(session.notices),
                ],
            ),
            write_locks=[],
        )

    def session(self, cookie: str) -> StoredSession | None:
        def read(cur: Cursor) -> StoredSession | None:
            self._execute(
                cur,
                "SELECT participant_id, token_digest, started, seen, notices"
                " FROM console_sessions WHERE cookie_digest = ?",
                [digest(cookie)],
            )
            found = cur.fetchall()
            if not found:
                return None
            participant_id, token_digest, started, seen, notices = found[0]
            return StoredSession(participant_id, token_digest, started, seen, json.loads(notices))

        return self._run(read)

    def touch_session(self, cookie: str, seen: float) -> None:
        self._run(
            lambda cur: self._execute(
                cur,
                "UPDATE console_sessions SET seen = ? WHERE cookie_digest = ?",
                [seen, digest(cookie)],
            ),
            write_locks=[],
        )

    def set_notice(self, cookie: str, key: str, notice: dict[str, Any] | None) -> Any:
        """Sets (or with None, takes away) the notice under `key`; returns the one it held."""

        def change(cur: Cursor) -> Any:
            self._execute(
                cur,
                "SELECT notices FROM console_sessions WHERE cookie_digest = ?",
                [digest(cookie)],
            )
            found = cur.fetchall()
            if not found:
                return None
            notices = json.loads(found[0][0])
            held = notices.pop(key, None)
            if notice is not None:
                notices[key] = notice
            self._execute(
                cur,
                "UPDATE console_sessions SET notices = ? WHERE cookie_digest = ?",
                [json.dumps(notices), digest(cookie)],
            )
            return held

        # SQLite's write lock, or PostgreSQL's advisory lock on the cookie, keeps the
        # read-change-write of two tabs' requests in turn
        return self._run(change, write_locks=[f"session:{digest(cookie)}"])

    def close_session(self, cookie: str) -> None:
        self._run(
            lambda cur: self._execute(
                cur, "DELETE FROM console_sessions WHERE cookie_digest = ?", [digest(cookie)]
            ),
            write_locks=[],
        )

    def forget_sessions(self, seen_before: float, started_before: float) -> None:
        """Deletes the sessions that ended (idle or past their lifetime)."""
        self._run(
            lambda cur: self._execute(
                cur,
                "DELETE FROM console_sessions WHERE seen < ? OR started < ?",
                [seen_before, started_before],
            ),
            write_locks=[],
        )

    # ---- secrets -------------------------------------------------------------------------

    def secret(self, name: str) -> bytes:
        """The secret `name`, made by whichever process asks first."""

        def get(cur: Cursor) -> bytes:
            self._execute(
                cur,
                "INSERT INTO api_secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
                [name, secrets.token_hex(32)],
            )
            self._execute(cur, "SELECT value FROM api_secrets WHERE name = ?", [name])
            return bytes.fromhex(cur.fetchall()[0][0])

        return self._run(get, write_locks=[f"secret:{name}"])

"""The decision ledger: every accepted decision, append-only, one hash chain per incident.

Row n of an incident stores the hash of row n-1 and its own hash covers its content and that
link, so editing, deleting, inserting or reordering stored rows breaks the chain at a row that
`verify_chain` finds and names. Appends are idempotent by decision id, so a retried activity
writes each decision exactly once.
"""

from __future__ import annotations

import json
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from types import TracebackType
from typing import Any, NamedTuple, Self

from pydantic import BaseModel, ConfigDict

from eucp.protocol.decisions import GENESIS_HASH, Decision, LedgerRow, canonical_json, row_hash
from eucp.runtime.sql import Cursor, Dialect, SqliteDialect, SqlStore, dialect_of


class ChainReport(BaseModel):
    """The outcome of verifying one incident's chain; `problem` tells a human what broke."""

    model_config = ConfigDict(frozen=True)

    incident_id: str
    ok: bool
    rows_checked: int
    head_hash: str | None = None
    """Hash of the last row that verified: anchor it elsewhere to also catch a cut-off tail."""
    first_bad_seq: int | None = None
    problem: str | None = None


def verify_chain(incident_id: str, rows: Sequence[LedgerRow]) -> ChainReport:
    """Check that `rows` are exactly the chain 1..n of `incident_id`; stop at the first break.

    No rows at all is a finding too: every incident's first decision is its report.
    """
    if not rows:
        return ChainReport(
            incident_id=incident_id,
            ok=False,
            rows_checked=0,
            head_hash=None,
            first_bad_seq=1,
            problem=f"no decisions recorded for {incident_id} (unknown incident, or all deleted)",
        )
    head: str | None = None
    for index, row in enumerate(rows):
        broken = _break_at(incident_id, index + 1, head or GENESIS_HASH, row)
        if broken is not None:
            bad_seq, problem = broken
            return ChainReport(
                incident_id=incident_id,
                ok=False,
                rows_checked=index + 1,
                head_hash=head,
                first_bad_seq=bad_seq,
                problem=problem,
            )
        head = row.hash
    return ChainReport(incident_id=incident_id, ok=True, rows_checked=len(rows), head_hash=head)


def _break_at(
    incident_id: str, expected_seq: int, prev_hash: str, row: LedgerRow
) -> tuple[int, str] | None:
    """The seq and description of what is wrong with `row` at this place in the chain, if any."""
    owner = row.incident_id if row.incident_id != incident_id else row.decision.incident_id
    if owner != incident_id:
        return row.seq, f"row {row.seq} belongs to incident {owner!r}"
    if row.seq > expected_seq:
        jump = f"jumps from {expected_seq - 1} to" if expected_seq > 1 else "starts at"
        return expected_seq, f"row {expected_seq} missing: sequence {jump} {row.seq} (deleted?)"
    if row.seq < expected_seq:
        return expected_seq, (
            f"row {expected_seq} expected but row {row.seq} found again (duplicated or reordered?)"
        )
    if row.prev_hash != prev_hash:
        link = "the genesis hash" if row.seq == 1 else f"row {row.seq - 1}'s hash"
        return row.seq, f"row {row.seq}: prev_hash does not match {link} (reordered or inserted?)"
    if row.hash != row_hash(incident_id, row.seq, row.decision, row.prev_hash):
        return row.seq, f"row {row.seq}: hash does not match its content (edited?)"
    return None


class Head(NamedTuple):
    """The last row of an incident's chain; (0, GENESIS_HASH) while it is empty."""

    seq: int
    hash: str


class Appended(BaseModel):
    """What an append did: each decision's row (stored before or now) and how many are new."""

    model_config = ConfigDict(frozen=True)

    rows: list[LedgerRow]
    new: int


class Ledger(ABC):
    """An append-only store of decisions, one hash chain per incident."""

    def append(self, decisions: Sequence[Decision]) -> list[LedgerRow]:
        """Store the decisions in one transaction and return each one's row, in order.

        A decision id already stored returns its stored row and adds nothing; new decisions
        take the next seq of their incident in the given order.
        """
        return self.record(decisions).rows

    @abstractmethod
    def record(self, decisions: Sequence[Decision]) -> Appended:
        """`append`, also saying how many rows are new (for the activity's result and logs)."""

    @abstractmethod
    def rows(
        self, incident_id: str, after_seq: int = 0, limit: int | None = None
    ) -> list[LedgerRow]:
        """An incident's rows with seq > `after_seq`, in order; at most `limit` of them."""

    @abstractmethod
    def decisions(self, decision_ids: Sequence[str]) -> list[Decision]:
        """The stored decisions with these ids, in the order asked; an unknown id is skipped."""

    @abstractmethod
    def head(self, incident_id: str) -> Head:
        """The incident's last row."""

    @abstractmethod
    def incidents(self) -> list[str]:
        """Every incident with at least one row, sorted."""

    @abstractmethod
    def verify(self, incident_id: str) -> ChainReport:
        """Re-check the incident's whole chain from the stored data alone."""

    @abstractmethod
    def close(self) -> None:
        """Release the database connection."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    incident_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    decision_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    at TEXT NOT NULL,
    payload TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (incident_id, seq)
)
"""
_SCHEMA_LOCK = "eucp ledger schema"
_COLUMNS = "incident_id, seq, decision_id, kind, actor, at, payload, prev_hash, hash"
_INSERT = f"INSERT INTO decisions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"


def _encode(
    row: LedgerRow, data: dict[str, Any], payload: str
) -> tuple[str, int, str, str, str, str, str, str, str]:
    """A row as stored: the decision's canonical JSON (`payload`, of `data`), with the fields
    auditors query also in columns."""
    return (
        row.incident_id,
        row.seq,
        data["decision_id"],
        data["kind"],
        data["actor"]["id"],
        data["at"],
        payload,
        row.prev_hash,
        row.hash,
    )


def _decode(record: Sequence[Any]) -> LedgerRow:
    """Rebuild a row from its columns alone; raises ValueError if they no longer make one.

    The query columns are laid over the payload, so an edit to either one changes the rebuilt
    decision and shows up as a hash mismatch.
    """
    incident_id, seq, decision_id, kind, actor, at, payload, prev_hash, hash_ = record
    data = json.loads(payload)
    if not isinstance(data, dict) or not isinstance(data.get("actor"), dict):
        raise ValueError("payload is not a decision")
    data.update(decision_id=decision_id, kind=kind, at=at, actor={**data["actor"], "id": actor})
    return LedgerRow(
        incident_id=incident_id,
        seq=seq,
        decision=Decision.model_validate(data),
        prev_hash=prev_hash,
        hash=hash_,
    )


class SqlLedger(SqlStore, Ledger):
    """The ledger over a SQL database; `dialect` supplies what differs between databases.

    `lock` serialises the use of its one connection across threads.
    """

    def __init__(self, dialect: Dialect, lock: threading.Lock) -> None:
        super().__init__(dialect, lock)
        self._run(lambda cur: cur.execute(_SCHEMA), write_locks=[_SCHEMA_LOCK])

    def record(self, decisions: Sequence[Decision]) -> Appended:
        if not decisions:
            return Appended(rows=[], new=0)
        incidents = sorted({d.incident_id for d in decisions})
        return self._run(lambda cur: self._record(cur, decisions), write_locks=incidents)

    def rows(
        self, incident_id: str, after_seq: int = 0, limit: int | None = None
    ) -> list[LedgerRow]:
        records = self._run(lambda cur: self._select(cur, incident_id, after_seq, limit))
        return [_decode(record) for record in records]

    def decisions(self, decision_ids: Sequence[str]) -> list[Decision]:
        ids = list(dict.fromkeys(decision_ids))
        if not ids:
            return []

        records = self._run(lambda cur: self._select_ids(cur, ids))
        found = {row.decision.decision_id: row.decision for row in map(_decode, records)}
        return [found[i] for i in decision_ids if i in found]

    def head(self, incident_id: str) -> Head:
        return self._run(lambda cur: self._head(cur, incident_id))

    def incidents(self) -> list[str]:
        def query(cur: Cursor) -> list[str]:
            cur.execute("SELECT DISTINCT incident_id FROM decisions ORDER BY incident_id")
            return [incident_id for (incident_id,) in cur.fetchall()]

        return self._run(query)

    def verify(self, incident_id: str) -> ChainReport:
        rows: list[LedgerRow] = []
        for record in self._run(lambda cur: self._select(cur, incident_id)):
            try:
                rows.append(_decode(record))
            except ValueError:
                report = verify_chain(incident_id, rows)
                if not report.ok:
                    return report
                seq = record[1]
                return ChainReport(
                    incident_id=incident_id,
                    ok=False,
                    rows_checked=len(rows) + 1,
                    head_hash=report.head_hash,
                    first_bad_seq=seq,
                    problem=f"row {seq}: stored content is not a valid decision (edited?)",
                )
        return verify_chain(incident_id, rows)

    def _record(self, cur: Cursor, decisions: Sequence[Decision]) -> Appended:
        """Inside the write transaction: reuse stored rows, chain and insert the new ones."""
        ids = list(dict.fromkeys(d.decision_id for d in decisions))
        by_id = {row.decision.decision_id: row for row in map(_decode, self._select_ids(cur, ids))}
        heads: dict[str, Head] = {}
        rows: list[LedgerRow] = []
        new: list[tuple[str, int, str, str, str, str, str, str, str]] = []
        for decision in decisions:
            row = by_id.get(decision.decision_id)
            if row is None:
                incident_id = decision.incident_id
                head = heads[incident_id] if incident_id in heads else self._head(cur, incident_id)
                seq = head.seq + 1
                data = decision.model_dump(mode="json")
                payload = canonical_json(data)  # serialised once: for the hash and the row
                row = LedgerRow(
                    incident_id=incident_id,
                    seq=seq,
                    decision=decision,
                    prev_hash=head.hash,
                    hash=row_hash(incident_id, seq, decision, head.hash, payload),
                )
                heads[incident_id] = Head(seq, row.hash)
                by_id[decision.decision_id] = row
                new.append(_encode(row, data, payload))
            rows.append(row)
        if new:
            cur.executemany(self._sql(_INSERT), new)
        return Appended(rows=rows, new=len(new))

    def _head(self, cur: Cursor, incident_id: str) -> Head:
        self._execute(
            cur,
            "SELECT seq, hash FROM decisions WHERE incident_id = ? ORDER BY seq DESC LIMIT 1",
            [incident_id],
        )
        found = cur.fetchall()
        return Head(*found[0]) if found else Head(0, GENESIS_HASH)

    def _select(
        self, cur: Cursor, incident_id: str, after_seq: int = 0, limit: int | None = None
    ) -> list[Any]:
        """An incident's stored records (raw columns) in seq order."""
        query = f"SELECT {_COLUMNS} FROM decisions WHERE incident_id = ? AND seq > ? ORDER BY seq"
        params: list[Any] = [incident_id, after_seq]
        if limit is not None:
            query += " LIMIT ?"
            params.append(limit)
        self._execute(cur, query, params)
        return cur.fetchall()

    def _select_ids(self, cur: Cursor, decision_ids: list[str]) -> list[Any]:
        """The stored records (raw columns) of these decision ids, in no particular order."""
        marks = ", ".join("?" * len(decision_ids))
        query = f"SELECT {_COLUMNS} FROM decisions WHERE decision_id IN ({marks})"
        self._execute(cur, query, decision_ids)
        return cur.fetchall()


_SQLITE_LOCK = threading.Lock()
"""Shared by every SQLite ledger in the process: writers here queue instead of busy-waiting."""


def open_ledger(url: str) -> Ledger:
    """Open the ledger at `url` (see `eucp.runtime.sql.dialect_of`); creates the schema if
    missing."""
    dialect = dialect_of(url, "ledger")
    lock = _SQLITE_LOCK if isinstance(dialect, SqliteDialect) else threading.Lock()
    return SqlLedger(dialect, lock)

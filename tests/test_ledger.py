"""The decision ledger, as an auditor relies on it: every decision stored exactly once, in one
hash chain per incident, and any later edit, deletion, insertion or reordering of stored rows
caught by `verify` at the row where it happened.

Every test runs against SQLite (a temporary file) and PostgreSQL (a fresh schema per test).
Tampering goes straight to the database with SQL, as someone with database access would.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise
from pathlib import Path

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs
from temporalio.testing import ActivityEnvironment

from activities.ledger import LedgerActivities, RecordDecisions, Recorded
from eucp.protocol.decisions import (
    GENESIS_HASH,
    Decision,
    DecisionKind,
    LedgerRow,
    canonical_json,
    row_hash,
)
from eucp.protocol.participants import SYSTEM, Actor, ParticipantKind
from eucp.runtime.ledger import Ledger, open_ledger, verify_chain

INCIDENT = "inc-2025-001"
COORDINATOR = Actor(id="coord-1", kind=ParticipantKind.coordinator)
T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


class Database:
    """Direct SQL access to a ledger's database; queries use `?` placeholders."""

    def __init__(self, url: str) -> None:
        self.url = url

    def execute(self, query: str, *params: object) -> None:
        if self.url.startswith("sqlite"):
            with closing(sqlite3.connect(self.url.removeprefix("sqlite:///"))) as conn, conn:
                conn.execute(query, params)
        else:
            with psycopg.connect(self.url, autocommit=True) as server:
                server.execute(query.replace("?", "%s"), params)

    def insert(self, row: LedgerRow) -> None:
        """Store a row in the ledger's format, as a forger who read this code would."""
        data = row.decision.model_dump(mode="json")
        self.execute(
            "INSERT INTO decisions (incident_id, seq, decision_id, kind, actor, at, payload,"
            " prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            row.incident_id,
            row.seq,
            row.decision.decision_id,
            data["kind"],
            data["actor"]["id"],
            data["at"],
            canonical_json(data),
            row.prev_hash,
            row.hash,
        )


@pytest.fixture
def database(database_url: str) -> Database:
    return Database(database_url)


@pytest.fixture
def ledger(database: Database) -> Iterator[Ledger]:
    with open_ledger(database.url) as opened:
        yield opened


def decision(n: int, incident_id: str = INCIDENT, kind: DecisionKind | None = None) -> Decision:
    """The incident's n-th decision, with inputs of the shapes workflows send."""
    return Decision(
        decision_id=f"{incident_id}/crisis/{n}",
        incident_id=incident_id,
        actor=SYSTEM if n % 2 else COORDINATOR,
        kind=kind or DecisionKind.content_added,
        reason=f"r{n}",
        inputs={"n": n, "hashes": ["ab" * 32], "score": 0.5, "note": "städtisch", "none": None},
        at=T0.astimezone(timezone(timedelta(hours=n % 3))) + timedelta(seconds=n),
    )


def decisions(first: int, last: int, incident_id: str = INCIDENT) -> list[Decision]:
    return [decision(n, incident_id) for n in range(first, last + 1)]


@pytest.fixture
def chain(ledger: Ledger) -> list[LedgerRow]:
    """Eight decisions of one incident, written in three batches."""
    rows = []
    for batch in (decisions(1, 3), decisions(4, 4), decisions(5, 8)):
        rows += ledger.append(batch)
    return rows


def test_an_auditor_verifies_an_untouched_chain(ledger: Ledger, chain: list[LedgerRow]) -> None:
    report = ledger.verify(INCIDENT)

    assert report.ok, report.problem
    assert report.rows_checked == 8
    assert report.head_hash == chain[-1].hash
    assert (report.first_bad_seq, report.problem) == (None, None)
    assert [row.seq for row in chain] == list(range(1, 9))
    assert chain[0].prev_hash == GENESIS_HASH
    assert all(row.prev_hash == before.hash for before, row in pairwise(chain))
    # What is read back is exactly what was written, decisions included.
    assert ledger.rows(INCIDENT) == chain
    assert [row.decision for row in chain] == decisions(1, 8)


def test_an_incident_with_no_rows_does_not_verify(ledger: Ledger) -> None:
    report = ledger.verify("inc-never-recorded")
    assert not report.ok
    assert report.problem is not None and "no decisions recorded" in report.problem


def test_an_auditor_pages_through_the_rows_of_each_incident(ledger: Ledger) -> None:
    ledger.append([decision(1, "inc-b"), decision(1, "inc-a"), decision(2, "inc-b")])

    assert ledger.incidents() == ["inc-a", "inc-b"]
    assert [row.seq for row in ledger.rows("inc-b")] == [1, 2]
    assert [row.seq for row in ledger.rows("inc-b", after_seq=1)] == [2]
    assert [row.seq for row in ledger.rows("inc-b", limit=1)] == [1]
    assert ledger.head("inc-a").seq == 1
    assert ledger.head("inc-none") == (0, GENESIS_HASH)
    assert ledger.verify("inc-a").ok
    assert ledger.verify("inc-b").ok


def test_a_retried_append_adds_nothing_and_returns_the_same_rows(ledger: Ledger) -> None:
    first = ledger.append(decisions(1, 3))
    again = ledger.append(decisions(1, 3))
    overlapping = ledger.record(decisions(2, 5))

    assert again == first
    assert overlapping.new == 2
    assert overlapping.rows[:2] == first[1:]
    assert [row.seq for row in ledger.rows(INCIDENT)] == [1, 2, 3, 4, 5]
    assert ledger.verify(INCIDENT).ok


@pytest.mark.parametrize(
    "change",
    [
        'payload = replace(payload, \'"reason":"r5"\', \'"reason":"forged"\')',
        "kind = 'closed'",
        "actor = 'coord-2'",
        "at = '2025-03-01T09:00:00Z'",
    ],
    ids=["payload", "kind", "actor", "at"],
)
def test_an_edited_row_is_caught(
    ledger: Ledger, database: Database, chain: list[LedgerRow], change: str
) -> None:
    database.execute(f"UPDATE decisions SET {change} WHERE incident_id = ? AND seq = 5", INCIDENT)

    report = ledger.verify(INCIDENT)

    assert not report.ok
    assert report.first_bad_seq == 5
    assert report.problem == "row 5: hash does not match its content (edited?)"
    assert report.head_hash == chain[3].hash  # the last row that still verifies


def test_a_row_edited_beyond_reading_is_caught(
    ledger: Ledger, database: Database, chain: list[LedgerRow]
) -> None:
    database.execute(
        "UPDATE decisions SET payload = '{' WHERE incident_id = ? AND seq = 6", INCIDENT
    )

    report = ledger.verify(INCIDENT)

    assert (report.ok, report.first_bad_seq) == (False, 6)
    assert report.problem == "row 6: stored content is not a valid decision (edited?)"


def test_a_deleted_row_is_caught(
    ledger: Ledger, database: Database, chain: list[LedgerRow]
) -> None:
    database.execute("DELETE FROM decisions WHERE incident_id = ? AND seq = 4", INCIDENT)

    report = ledger.verify(INCIDENT)

    assert (report.ok, report.first_bad_seq) == (False, 4)
    assert report.problem == "row 4 missing: sequence jumps from 3 to 5 (deleted?)"


def test_an_inserted_row_is_caught(
    ledger: Ledger, database: Database, chain: list[LedgerRow]
) -> None:
    # A careful forger renumbers rows 4.. to 5.. and chains a well-formed row 4 to row 3.
    # That row is indistinguishable from a real one; the break shows at the next row.
    database.execute("UPDATE decisions SET seq = -seq WHERE incident_id = ? AND seq >= 4", INCIDENT)
    database.execute(
        "UPDATE decisions SET seq = 1 - seq WHERE incident_id = ? AND seq < 0", INCIDENT
    )
    forged = decision(99, kind=DecisionKind.not_activated)
    database.insert(
        LedgerRow(
            incident_id=INCIDENT,
            seq=4,
            decision=forged,
            prev_hash=chain[2].hash,
            hash=row_hash(INCIDENT, 4, forged, chain[2].hash),
        )
    )

    report = ledger.verify(INCIDENT)

    assert (report.ok, report.first_bad_seq) == (False, 5)
    assert report.problem == "row 5: prev_hash does not match row 4's hash (reordered or inserted?)"


def test_swapped_rows_are_caught(
    ledger: Ledger, database: Database, chain: list[LedgerRow]
) -> None:
    for old, new in ((3, 0), (4, 3), (0, 4)):
        database.execute(
            "UPDATE decisions SET seq = ? WHERE incident_id = ? AND seq = ?", new, INCIDENT, old
        )

    report = ledger.verify(INCIDENT)

    assert (report.ok, report.first_bad_seq) == (False, 3)
    assert report.problem == "row 3: prev_hash does not match row 2's hash (reordered or inserted?)"


def test_a_row_of_another_incident_is_caught() -> None:
    rows = [
        LedgerRow(
            incident_id=INCIDENT,
            seq=1,
            decision=decision(1, "inc-other"),
            prev_hash=GENESIS_HASH,
            hash=row_hash(INCIDENT, 1, decision(1, "inc-other"), GENESIS_HASH),
        )
    ]

    report = verify_chain(INCIDENT, rows)

    assert (report.ok, report.first_bad_seq, report.rows_checked) == (False, 1, 1)
    assert report.problem == "row 1 belongs to incident 'inc-other'"


def test_concurrent_writers_keep_one_contiguous_chain(database: Database) -> None:
    """8 writers, each with its own connection, append batches to one incident at once; each
    batch also carries a decision every writer sends, and each batch is sent twice (a retry)."""
    writers, batches = 8, 10
    start = threading.Barrier(writers, timeout=60)  # no hang if a writer fails to open

    def write(writer: int) -> None:
        with open_ledger(database.url) as ledger:
            start.wait()
            for b in range(batches):
                own = [decision(1000 * (writer + 1) + 10 * b + i) for i in range(3)]
                batch = [*own, decision(b)]
                ledger.append(batch)
                ledger.append(batch)

    with ThreadPoolExecutor(writers) as pool:
        for done in [pool.submit(write, w) for w in range(writers)]:
            done.result()

    with open_ledger(database.url) as ledger:
        rows = ledger.rows(INCIDENT)
        report = ledger.verify(INCIDENT)
    ids = [row.decision.decision_id for row in rows]
    assert report.ok, report.problem
    assert [row.seq for row in rows] == list(range(1, writers * batches * 3 + batches + 1))
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_dropped_postgres_connection_is_restored(database: Database) -> None:
    # Name the connection so that only it is cut: other suites may share the server.
    name = f"ledger-drop-{uuid.uuid4().hex}"
    with open_ledger(f"{database.url}&application_name={name}") as ledger:
        ledger.append(decisions(1, 2))
        database.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = ?",
            name,
        )

        ledger.append(decisions(3, 4))

        assert ledger.verify(INCIDENT).rows_checked == 4


def test_the_record_decisions_activity_records_each_decision_once(ledger: Ledger) -> None:
    record = LedgerActivities(ledger).record_decisions
    batch = RecordDecisions(decisions=decisions(1, 3))

    with capture_logs() as logs:
        first = ActivityEnvironment().run(record, batch)
    retried = ActivityEnvironment().run(record, batch)

    head = ledger.rows(INCIDENT)[-1]
    assert first == Recorded(count_new=3, head_seq=3, head_hash=head.hash)
    assert retried == Recorded(count_new=0, head_seq=3, head_hash=head.hash)
    assert logs == [
        {
            "event": "decisions recorded",
            "log_level": "info",
            "incident_id": INCIDENT,
            "count": 3,
            "count_new": 3,
            "head_seq": 3,
        }
    ]


def test_a_full_batch_of_250_decisions_appends_in_order(ledger: Ledger) -> None:
    rows = ledger.append(decisions(1, 250))

    assert [row.seq for row in rows] == list(range(1, 251))
    assert [row.decision for row in rows] == decisions(1, 250)
    assert ledger.verify(INCIDENT).rows_checked == 250


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://db/ledger", "unsupported ledger url scheme 'mysql'"),
        ("sqlite://relative.sqlite3", "sqlite:///relative/path"),
    ],
)
def test_open_ledger_names_what_it_accepts(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        open_ledger(url)


def test_open_ledger_creates_the_sqlite_directory(tmp_path: Path) -> None:
    path = tmp_path / "var" / "nested" / "ledger.sqlite3"

    with open_ledger(f"sqlite:///{path}") as ledger:
        assert ledger.incidents() == []
    assert path.exists()


@given(
    incident_id=st.text(min_size=1, max_size=40),
    seq=st.integers(min_value=1, max_value=10**9),
    reason=st.text(max_size=200),
    prev_hash=st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
)
def test_the_row_hash_is_the_sha256_of_the_rows_canonical_json(
    incident_id: str, seq: int, reason: str, prev_hash: str
) -> None:
    """The ledger assembles each row around the decision's JSON to serialise it once; the
    digest is still the one an auditor computes from the row's canonical JSON."""
    decision = Decision(
        decision_id=f"{incident_id}/crisis/{seq}",
        incident_id=incident_id,
        actor=COORDINATOR,
        kind=DecisionKind.activated,
        reason=reason,
        inputs={"items": [{"no": 1, "note": reason}]},
        at=T0,
    )
    whole = {
        "incident_id": incident_id,
        "seq": seq,
        "decision": decision.model_dump(mode="json"),
        "prev_hash": prev_hash,
    }
    expected = hashlib.sha256(canonical_json(whole).encode()).hexdigest()
    assert row_hash(incident_id, seq, decision, prev_hash) == expected


def test_decisions_are_read_back_by_id_in_the_order_asked(ledger: Ledger) -> None:
    """Platform workflows read their new items by the ids of the decisions that admitted them."""
    stored = ledger.append([decision(n) for n in range(1, 4)])
    ids = [r.decision.decision_id for r in stored]
    assert ledger.decisions([ids[2], "no-such-decision", ids[0]]) == [
        stored[2].decision,
        stored[0].decision,
    ]
    assert ledger.decisions([]) == []

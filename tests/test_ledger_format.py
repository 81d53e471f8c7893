"""The ledger's format, pinned by a known-answer vector (issue 15, part 4).

Ledgers already written are verified by re-hashing their rows, so the bytes a decision
serialises to, and the way a row's hash covers them and the previous row's hash, must never
change silently. Four decisions of one incident (a report with nested inputs, an activation
with unicode in its reason, a platform's removal, the system's closing), with datetimes in
several zones and with microseconds, are written here with their canonical JSON and their
hashes chained from the genesis hash: literals computed once and frozen. A change of
serialisation fails here instead of breaking the verification of every ledger in service.

If one of these tests fails, the format changed: do not update the literals, keep reading and
hashing old rows as before (or version the format and migrate the ledgers explicitly).
"""

from __future__ import annotations

import hashlib
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta, timezone

import psycopg

from eucp.protocol.decisions import (
    GENESIS_HASH,
    Decision,
    DecisionKind,
    LedgerRow,
    canonical_json,
    row_hash,
)
from eucp.protocol.participants import SYSTEM, Actor, ParticipantKind
from eucp.runtime.ledger import open_ledger, verify_chain

# part of every hash below, so fixed; each PostgreSQL test gets a schema of its own instead
INCIDENT = "inc-kat-2026-0315"
IRU = Actor(id="eu-iru", kind=ParticipantKind.coordinator)
FASTBOOK = Actor(id="fastbook", kind=ParticipantKind.platform)
CET = timezone(timedelta(hours=1))
NEWFOUNDLAND = timezone(-timedelta(hours=3, minutes=30))
COPY = {"kind": "url", "value": "https://video.example.test/watch/000001"}

REPORTED = Decision(
    decision_id=f"{INCIDENT}/crisis/1",
    incident_id=INCIDENT,
    actor=IRU,
    kind=DecisionKind.reported,
    inputs={
        "report": {
            "title": "Livestreamed attack",
            "event_place": "outside the EU",
            "first_identifiers": [COPY],
        }
    },
    at=datetime(2026, 3, 15, 1, 45, tzinfo=UTC),
)
ACTIVATED = Decision(
    decision_id=f"{INCIDENT}/crisis/2",
    incident_id=INCIDENT,
    actor=IRU,
    kind=DecisionKind.activated,
    reason="all five criteria met: «Anschlag» in Zürich, 攻撃の動画 🎥",
    inputs={
        "platforms": ["fastbook", "choosy"],  # lists keep their order, dicts are key-sorted
        "all_met": True,
        "score": 0.25,
        "none": None,
        "items": [{"no": 1, "identifier": COPY, "labels": {"z": [1, 2.5, {"deep": "ß"}], "a": 0}}],
    },
    at=datetime(2026, 3, 15, 2, 59, 59, 123456, tzinfo=CET),
)
REMOVED = Decision(
    decision_id=f"{INCIDENT}/fastbook/1",
    incident_id=INCIDENT,
    actor=FASTBOOK,
    kind=DecisionKind.task_removed,
    inputs={
        "task_id": "fastbook-000001",
        "item_no": 1,
        "cannot_comply": None,
        "removed_at": "2026-03-15T02:10:00.000001+00:00",
    },
    at=datetime(2026, 3, 14, 22, 40, 0, 1, tzinfo=NEWFOUNDLAND),
)
CLOSED = Decision(
    decision_id=f"{INCIDENT}/crisis/3",
    incident_id=INCIDENT,
    actor=SYSTEM,
    kind=DecisionKind.closed,
    reason="review deadline passed",
    at=datetime(2026, 3, 22, 3, 0, 0, 500000, tzinfo=UTC),
)
VECTOR = [REPORTED, ACTIVATED, REMOVED, CLOSED]

# ---- the frozen answers ------------------------------------------------------------------------

PAYLOADS = [
    '{"actor":{"id":"eu-iru","kind":"coordinator"},"at":"2026-03-15T01:45:00Z",'
    '"decision_id":"inc-kat-2026-0315/crisis/1","incident_id":"inc-kat-2026-0315",'
    '"inputs":{"report":{"event_place":"outside the EU","first_identifiers":[{"kind":"url",'
    '"value":"https://video.example.test/watch/000001"}],"title":"Livestreamed attack"}},'
    '"kind":"reported","reason":null}',
    '{"actor":{"id":"eu-iru","kind":"coordinator"},"at":"2026-03-15T02:59:59.123456+01:00",'
    '"decision_id":"inc-kat-2026-0315/crisis/2","incident_id":"inc-kat-2026-0315",'
    '"inputs":{"all_met":true,"items":[{"identifier":{"kind":"url",'
    '"value":"https://video.example.test/watch/000001"},"labels":{"a":0,'
    '"z":[1,2.5,{"deep":"ß"}]},"no":1}],"none":null,"platforms":["fastbook","choosy"],'
    '"score":0.25},"kind":"activated",'
    '"reason":"all five criteria met: «Anschlag» in Zürich, 攻撃の動画 🎥"}',
    '{"actor":{"id":"fastbook","kind":"platform"},"at":"2026-03-14T22:40:00.000001-03:30",'
    '"decision_id":"inc-kat-2026-0315/fastbook/1","incident_id":"inc-kat-2026-0315",'
    '"inputs":{"cannot_comply":null,"item_no":1,"removed_at":"2026-03-15T02:10:00.000001+00:00",'
    '"task_id":"fastbook-000001"},"kind":"task_removed","reason":null}',
    '{"actor":{"id":"eucp","kind":"system"},"at":"2026-03-22T03:00:00.500000Z",'
    '"decision_id":"inc-kat-2026-0315/crisis/3","incident_id":"inc-kat-2026-0315",'
    '"inputs":{},"kind":"closed","reason":"review deadline passed"}',
]
HASHES = [
    "70947fb957d62fb06a05fabbf03028eb15aa4f247fedf3e4d2bcbce8640b2e5f",
    "8e63bfc966b92e5b63959683d9cd39e7441d0eda3d5958fe8e35a62aa0895455",
    "ac56a58148b5279d52ff49c79c081521f4fabf0970d58969e27dda61bf983008",
    "58f2625c243142af2b67bbcbb60da605bdc45144ec15d764239fcfd8f54eef0d",
]
# (seq, prev_hash, hash) of each row: row 1 links to the genesis hash, row n to row n-1
CHAIN = [
    (seq, prev, own)
    for seq, (prev, own) in enumerate(zip([GENESIS_HASH, *HASHES[:-1]], HASHES, strict=True), 1)
]


def test_each_decision_serialises_to_its_pinned_canonical_json() -> None:
    """Key-sorted, compact, unicode as itself (not \\u escapes), datetimes in ISO 8601 with
    their own zone (`Z` for UTC) and microseconds in six digits."""
    for decision, payload in zip(VECTOR, PAYLOADS, strict=True):
        assert canonical_json(decision.model_dump(mode="json")) == payload
        # and a stored payload reads back to the same decision, which serialises the same
        again = Decision.model_validate_json(payload)
        assert again == decision
        assert canonical_json(again.model_dump(mode="json")) == payload
    assert "🎥" in PAYLOADS[1] and "\\u" not in PAYLOADS[1]


def test_row_hashes_chain_from_the_genesis_hash_to_the_pinned_values() -> None:
    """Row n's hash is SHA-256 over the canonical JSON of {decision, incident_id, prev_hash,
    seq}, in UTF-8; `row_hash` gives it whether or not the caller passes the payload."""
    prev = GENESIS_HASH
    for (seq, prev_hash, own), decision, payload in zip(CHAIN, VECTOR, PAYLOADS, strict=True):
        assert prev_hash == prev
        assert row_hash(INCIDENT, seq, decision, prev) == own
        assert row_hash(INCIDENT, seq, decision, prev, payload) == own
        body = canonical_json(
            {
                "decision": decision.model_dump(mode="json"),
                "incident_id": INCIDENT,
                "prev_hash": prev,
                "seq": seq,
            }
        )
        assert hashlib.sha256(body.encode("utf-8")).hexdigest() == own
        prev = own


def test_the_pinned_chain_verifies_and_one_changed_byte_does_not() -> None:
    rows = [
        LedgerRow(incident_id=INCIDENT, seq=seq, decision=d, prev_hash=prev, hash=own)
        for (seq, prev, own), d in zip(CHAIN, VECTOR, strict=True)
    ]
    report = verify_chain(INCIDENT, rows)
    assert report.ok, report.problem
    assert report.head_hash == HASHES[-1]

    # one microsecond later: a different row
    moved = ACTIVATED.model_copy(update={"at": ACTIVATED.at + timedelta(microseconds=1)})
    rows[1] = rows[1].model_copy(update={"decision": moved})
    report = verify_chain(INCIDENT, rows)
    assert (report.ok, report.first_bad_seq) == (False, 2)


# ---- through the real ledgers ----------------------------------------------------------------


def stored(url: str) -> list[tuple[int, str, str, str]]:
    """(seq, prev_hash, hash, payload) of every stored row, straight from the database."""
    query = "SELECT seq, prev_hash, hash, payload FROM decisions WHERE incident_id = ? ORDER BY seq"
    if url.startswith("sqlite"):
        with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn:
            return [tuple(r) for r in conn.execute(query, [INCIDENT]).fetchall()]
    with psycopg.connect(url) as conn:
        return [tuple(r) for r in conn.execute(query.replace("?", "%s"), [INCIDENT]).fetchall()]


def test_the_ledger_writes_the_pinned_chain(database_url: str) -> None:
    """Recorded in two transactions (the second reads the head the first left), the rows are
    stored with the pinned payloads and hashes, read back as the same decisions, and verify."""
    with open_ledger(database_url) as ledger:
        first = ledger.record(VECTOR[:2])
        second = ledger.record(VECTOR[2:])
        assert (first.new, second.new) == (2, 2)
        assert [(r.seq, r.prev_hash, r.hash) for r in first.rows + second.rows] == CHAIN

        rows = ledger.rows(INCIDENT)
        assert [(r.seq, r.prev_hash, r.hash) for r in rows] == CHAIN
        assert [r.decision for r in rows] == VECTOR
        report = ledger.verify(INCIDENT)
        assert report.ok, report.problem
        assert (report.rows_checked, report.head_hash) == (4, HASHES[-1])
        assert tuple(ledger.head(INCIDENT)) == (4, HASHES[-1])

        # written again (a retried activity): the stored rows come back, nothing is added
        again = ledger.record(VECTOR)
        assert again.new == 0
        assert [(r.seq, r.prev_hash, r.hash) for r in again.rows] == CHAIN

    assert stored(database_url) == [
        (seq, prev, own, payload) for (seq, prev, own), payload in zip(CHAIN, PAYLOADS, strict=True)
    ]

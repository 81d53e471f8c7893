"""`eucp audit`: an auditor replays an incident's histories, cross-checks its timeline with the
ledger, verifies the chain and keeps a bundle that still replays and verifies offline; every
kind of tampering is a finding with a clear message, never a crash.

The ledger is tampered with straight in its SQLite file, as someone with database access would.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import sqlite3
import uuid
import zipfile
from collections.abc import AsyncIterator, Callable
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from temporalio.client import Client, WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from eucp.audit.bundle import MANIFEST, read_bundle, write_bundle
from eucp.audit.cli import audit
from eucp.audit.events import child_workflow_ids
from eucp.audit.models import Check, EntryStatus, Evidence
from eucp.audit.reconstruct import reconstruct
from eucp.audit.replay import replay_evidence, replay_histories
from eucp.audit.timeline import build_timeline
from eucp.protocol.actions import Action
from eucp.protocol.clocks import SlaSettings
from eucp.protocol.decisions import Decision, DecisionKind, LedgerRow, canonical_json, row_hash
from eucp.protocol.incident import Criterion
from eucp.protocol.orders import ScrutinyStage
from eucp.protocol.participants import SYSTEM, Actor
from eucp.protocol.phases import Phase
from eucp.protocol.tasks import ContentItem, Outcome, RemovalOrder, TaskReport, TaskState
from eucp.runtime.codec import is_encrypted, payloads_in
from eucp.runtime.ledger import Ledger
from eucp.runtime.settings import Settings
from eucp.runtime.temporal import data_converter
from eucp.service.incidents import Incidents
from tests.conftest import (
    CHOOSY,
    COORDINATOR,
    FASTBOOK,
    HOST_AUTHORITY,
    MEMBER_STATE,
    PLATFORMS,
    REGISTRY,
    SLOWTUBE,
    Protocol,
    a_report,
    protocol_on,
    start_dev_env,
)
from tests.protocol_steps import (
    ALL_MET,
    MANIFESTO,
    ORDER_DETAILS,
    VIDEO,
    activated,
    assigned,
    url,
)
from tests.test_codec import with_keys
from worker import running_worker
from workflows.platform import platform_workflow_id

HISTORIES = Path(__file__).parent / "histories"
OFFLINE = Settings(temporal_address="127.0.0.1:9", ledger_url="sqlite:////nonexistent/x.sqlite3")


# ---- running the CLI --------------------------------------------------------------------------


class Audit:
    """`eucp audit ...` through click's runner, in a thread: it runs an event loop of its own."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def __call__(self, *args: str | Path) -> tuple[int, dict[str, Any]]:
        """Exit code and the JSON report."""
        result = await asyncio.to_thread(
            CliRunner().invoke, audit, [*map(str, args), "--json"], obj=self.settings
        )
        assert result.exit_code in (0, 1), result.output
        start = result.stdout.index("{\n")
        report, _ = json.JSONDecoder().raw_decode(result.stdout[start:])
        return result.exit_code, report

    async def text(self, *args: str | Path) -> tuple[int, str]:
        result = await asyncio.to_thread(
            CliRunner().invoke, audit, list(map(str, args)), obj=self.settings
        )
        return result.exit_code, result.output


@pytest.fixture
def run_audit(eucp: Protocol) -> Audit:
    address = eucp.env.client.service_client.config.target_host
    return Audit(eucp.settings.model_copy(update={"temporal_address": address}))


def problems(report: dict[str, Any]) -> str:
    return "\n".join(f"[{f['check']}] {f['subject']}: {f['problem']}" for f in report["findings"])


# ---- a crisis to audit --------------------------------------------------------------------------


async def a_closed_crisis(eucp: Protocol) -> str:
    """Report to closed review: tasks removed, declined and withdrawn on three platforms."""
    incident = await eucp.report(first_identifiers=[url(1)])
    iru = eucp.incidents.as_participant(incident, COORDINATOR)
    await iru.act(Action.assess, assessment=ALL_MET)
    await iru.act(Action.activate, reason="all five criteria met", identifiers=[VIDEO, MANIFESTO])
    await assigned(iru)
    fastbook = eucp.incidents.as_participant(incident, FASTBOOK)
    mine = [t.task_id for t in (await fastbook.my_tasks()).tasks]
    await fastbook.report_tasks([TaskReport(task_id=t, outcome=Outcome.acknowledged) for t in mine])
    await fastbook.report_tasks([TaskReport(task_id=t, outcome=Outcome.removed) for t in mine])
    choosy = eucp.incidents.as_participant(incident, CHOOSY)
    first = (await choosy.my_tasks()).tasks[0].task_id
    await choosy.report_tasks(
        [TaskReport(task_id=first, outcome=Outcome.declined, reason="news reporting")]
    )
    await iru.act(Action.de_escalate, reason="re-uploads fell", withdraw_open_tasks=True)
    await iru.act(Action.start_review)
    await iru.act(Action.close, reason="debrief held")
    await eucp.incidents.result(incident)
    for platform in PLATFORMS:  # each platform's history ends just after the crisis's
        await eucp.env.client.get_workflow_handle(platform_workflow_id(incident, platform)).result()
    return incident


class Sqlite:
    """Straight to the ledger's SQLite file, around the ledger code."""

    def __init__(self, settings: Settings, incident_id: str) -> None:
        self.path = settings.ledger_url.removeprefix("sqlite:///")
        self.incident_id = incident_id

    def run(self, query: str, *params: object) -> list[Any]:
        with closing(sqlite3.connect(self.path)) as conn, conn:
            return conn.execute(query, params).fetchall()

    def row(self, seq: int) -> tuple[str, str, str]:
        """(decision_id, payload, hash) of row `seq`."""
        [found] = self.run(
            "SELECT decision_id, payload, hash FROM decisions WHERE incident_id = ? AND seq = ?",
            self.incident_id,
            seq,
        )
        return found[0], found[1], found[2]

    def last_seq(self) -> int:
        [(seq,)] = self.run(
            "SELECT MAX(seq) FROM decisions WHERE incident_id = ?", self.incident_id
        )
        return int(seq)

    def move(self, where: str, to: str, *params: object) -> None:
        """Renumber rows in two steps, so no two rows ever share a primary key."""
        self.run(
            f"UPDATE decisions SET seq = -seq WHERE incident_id = ? AND {where}",
            self.incident_id,
            *params,
        )
        self.run(
            f"UPDATE decisions SET seq = {to} WHERE incident_id = ? AND seq < 0", self.incident_id
        )


def edit(db: Sqlite) -> tuple[int | None, str]:
    decision_id, payload, _ = db.row(3)
    data = json.loads(payload) | {"reason": "two of five criteria met"}
    db.run(
        "UPDATE decisions SET payload = ? WHERE decision_id = ?", canonical_json(data), decision_id
    )
    return 3, decision_id


def delete(db: Sqlite) -> tuple[int | None, str]:
    decision_id, _, _ = db.row(5)
    db.run("DELETE FROM decisions WHERE decision_id = ?", decision_id)
    return 5, decision_id


def insert(db: Sqlite) -> tuple[int | None, str]:
    """A forged decision slipped in as row 4, chained to row 3, the rows after renumbered."""
    _, payload, prev_hash = db.row(3)
    forged = Decision(
        decision_id=f"{db.incident_id}/crisis/99",
        incident_id=db.incident_id,
        actor=COORDINATOR,
        kind=DecisionKind.content_withdrawn,
        reason="forged",
        inputs={"items": [1]},
        at=json.loads(payload)["at"],
    )
    db.move("seq >= 4", "-seq + 1")
    data = forged.model_dump(mode="json")
    db.run(
        "INSERT INTO decisions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        db.incident_id, 4, forged.decision_id, data["kind"], COORDINATOR.id, data["at"],
        canonical_json(data), prev_hash, row_hash(db.incident_id, 4, forged, prev_hash),
    )  # fmt: skip
    return 5, forged.decision_id  # verify breaks at the row after the forgery


def reorder(db: Sqlite) -> tuple[int | None, str]:
    decision_id, _, _ = db.row(2)
    db.move("seq IN (2, 3)", "CASE WHEN seq = -2 THEN 3 ELSE 2 END")
    return 2, decision_id


def truncate(db: Sqlite) -> tuple[int | None, str]:
    """The last two rows cut off: the shorter chain still verifies; only history knows."""
    last = db.last_seq()
    decision_id, _, _ = db.row(last)
    db.run("DELETE FROM decisions WHERE incident_id = ? AND seq >= ?", db.incident_id, last - 1)
    return None, decision_id


# ---- a fresh incident ---------------------------------------------------------------------------


async def test_a_fresh_incident_replays_and_its_timeline_matches_the_ledger(
    eucp: Protocol, run_audit: Audit
) -> None:
    incident = await a_closed_crisis(eucp)
    # its platforms were started together by an activity, which names them for the audit
    crisis = await eucp.env.client.get_workflow_handle(incident).fetch_history()
    assert set(child_workflow_ids(crisis)) == {platform_workflow_id(incident, p) for p in PLATFORMS}

    code, replay = await run_audit("replay", incident)
    assert code == 0, problems(replay)
    assert {r["workflow_id"] for r in replay["runs"]} == {
        incident,
        *(platform_workflow_id(incident, p) for p in PLATFORMS),
    }
    assert all(r["divergence"] is None for r in replay["runs"])

    code, timeline = await run_audit("timeline", incident)
    assert code == 0, problems(timeline)
    rows = eucp.ledger.rows(incident)
    # every row once, in time order: the platforms' workflows record concurrently with the
    # crisis, so a row appended later may carry an earlier time
    assert sorted(e["seq"] for e in timeline["entries"]) == [r.seq for r in rows]
    times = [datetime.fromisoformat(e["at"]) for e in timeline["entries"]]
    assert times == sorted(times)
    assert {e["status"] for e in timeline["entries"]} == {EntryStatus.ok}
    assert timeline["anchors_checked"] > 0

    code, verify = await run_audit("verify", incident)
    assert code == 0 and verify["chain"]["rows_checked"] == len(rows)

    code, listing = await run_audit("list")
    [mine] = [i for i in listing["incidents"] if i["incident_id"] == incident]
    assert (mine["phase"], mine["reporter"], mine["ledger_rows"]) == ("closed", "eu-iru", len(rows))
    assert mine["workflow_status"] == "COMPLETED" and mine["closed_at"] is not None

    code, text = await run_audit.text("replay", incident)
    assert code == 0 and "OK: no findings" in text


async def test_an_auditor_writes_the_review_report_on_demand(
    eucp: Protocol, run_audit: Audit, tmp_path: Path
) -> None:
    incident = await a_closed_crisis(eucp)
    code, files = await run_audit("report", incident, "-o", tmp_path / "review")
    assert code == 0 and files["chain_ok"]
    assert files["rows"] == len(eucp.ledger.rows(incident))
    assert sorted(p.name for p in (tmp_path / "review").iterdir()) == [
        "report.html",
        "report.json",
        "report.md",
    ]


async def test_the_timeline_shows_the_state_at_a_moment(eucp: Protocol, run_audit: Audit) -> None:
    incident = await a_closed_crisis(eucp)
    rows = eucp.ledger.rows(incident)
    activated = next(r for r in rows if r.decision.kind is DecisionKind.activated)
    removed = max(
        (r for r in rows if r.decision.kind is DecisionKind.task_removed),
        key=lambda r: r.decision.at,
    )

    code, report = await run_audit("timeline", incident, "--at", activated.decision.at.isoformat())
    assert code == 0, problems(report)
    state = report["state"]
    assert state["phase"] == "active" and state["items"] == 3
    assert state["tasks"] == {p: {"assigned": 3} for p in PLATFORMS}
    assert max(e["at"] for e in report["entries"]) == report["state"]["at"]

    code, report = await run_audit("timeline", incident, "--at", removed.decision.at.isoformat())
    tasks = report["state"]["tasks"]
    assert tasks[FASTBOOK.id] == {"removed": 3}
    assert tasks[SLOWTUBE.id] == {"assigned": 3}

    code, text = await run_audit.text("timeline", incident, "--at", "2000-01-01T00:00:00")
    assert code == 0 and "phase not reported yet" in text


# ---- tampering with the ledger ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tamper", "verify_problem", "timeline_problem"),
    [
        (edit, "hash does not match its content (edited?)", "differs from history: reason"),
        (delete, "missing: sequence jumps", "missing from the ledger (deleted?)"),
        (insert, "prev_hash does not match row 4's hash", "in the ledger but in no history"),
        (reorder, "prev_hash does not match row 1's hash", "which its workflow made later"),
        (truncate, None, "missing from the ledger (deleted?)"),
    ],
    ids=["edited", "deleted", "inserted", "reordered", "tail-truncated"],
)
async def test_a_tampered_ledger_is_caught_by_verify_and_by_the_timeline(
    eucp: Protocol,
    run_audit: Audit,
    tamper: Callable[[Sqlite], tuple[int | None, str]],
    verify_problem: str | None,
    timeline_problem: str,
) -> None:
    incident = await a_closed_crisis(eucp)
    bad_seq, decision_id = tamper(Sqlite(eucp.settings, incident))

    code, verify = await run_audit("verify", incident)
    if verify_problem is None:  # what the chain alone cannot see
        assert code == 0 and verify["chain"]["ok"]
    else:
        assert code == 1
        assert verify["chain"]["first_bad_seq"] == bad_seq
        assert verify_problem in verify["chain"]["problem"]
        assert [f["check"] for f in verify["findings"]] == ["ledger"]

    code, timeline = await run_audit("timeline", incident)
    assert code == 1
    named = [f["problem"] for f in timeline["findings"] if f["subject"] == decision_id]
    assert any(timeline_problem in p for p in named), problems(timeline)


async def test_a_rehashed_chain_verifies_but_the_timeline_catches_it(
    eucp: Protocol, run_audit: Audit
) -> None:
    """Whoever can write the database can edit a row and re-hash every row after it."""
    incident = await a_closed_crisis(eucp)
    rows = eucp.ledger.rows(incident)
    prev = rows[1].hash
    db = Sqlite(eucp.settings, incident)
    for row in rows[2:]:
        decision = row.decision
        if row.seq == 3:
            decision = decision.model_copy(update={"reason": "two of five criteria met"})
        new_hash = row_hash(incident, row.seq, decision, prev)
        db.run(
            "UPDATE decisions SET payload = ?, prev_hash = ?, hash = ? WHERE decision_id = ?",
            canonical_json(decision.model_dump(mode="json")), prev, new_hash, decision.decision_id,
        )  # fmt: skip
        prev = new_hash

    assert (await run_audit("verify", incident))[0] == 0
    code, timeline = await run_audit("timeline", incident)
    assert code == 1
    assert any(
        f["subject"] == "row 3" and "is not the head hash" in f["problem"]
        for f in timeline["findings"]
    ), problems(timeline)


@pytest.fixture
async def eucp_many_runs(settings: Settings, ledger: Ledger) -> AsyncIterator[Protocol]:
    """A server that suggests continue-as-new after 60 events: every workflow has many runs."""
    env = await start_dev_env(
        "--dynamic-config-value", "limit.historyCount.suggestContinueAsNew=60"
    )
    try:
        async for p in protocol_on(env, settings, ledger):
            yield p
    finally:
        await env.shutdown()


async def test_every_run_of_a_crisis_that_continued_as_new_is_audited(
    eucp_many_runs: Protocol, tmp_path: Path
) -> None:
    eucp = eucp_many_runs
    incident = await eucp.report()
    iru = eucp.incidents.as_participant(incident, COORDINATOR)
    await activated(iru, url(0))
    for wave in range(1, 4):
        await iru.act(Action.add_content, identifiers=[url(wave * 10 + i) for i in range(3)])
    fastbook = eucp.incidents.as_participant(incident, FASTBOOK)
    for task in (await fastbook.my_tasks()).tasks:  # one Update each: a long platform history
        await fastbook.report_tasks([TaskReport(task_id=task.task_id, outcome=Outcome.removed)])
    run_audit = Audit(
        eucp.settings.model_copy(
            update={"temporal_address": eucp.env.client.service_client.config.target_host}
        )
    )

    code, replay = await run_audit("replay", incident)
    assert code == 0, problems(replay)
    runs = [r["workflow_id"] for r in replay["runs"]]
    assert runs.count(incident) > 1 and runs.count(platform_workflow_id(incident, FASTBOOK.id)) > 1
    code, timeline = await run_audit("timeline", incident)
    assert code == 0, problems(timeline)
    assert len(timeline["entries"]) == len(eucp.ledger.rows(incident))

    # a middle run left out of a bundle breaks the chain where it was
    bundle = tmp_path / "bundle.zip"
    assert (await run_audit("export", incident, "-o", bundle))[0] == 0
    evidence, _ = read_bundle(bundle)
    [crisis_runs] = [[h for h in evidence.histories if h.workflow_id == incident]]
    write_bundle(bundle, incident, [h for h in evidence.histories if h is not crisis_runs[1]], [])
    code, replay = await Audit(OFFLINE)("replay", "--bundle", bundle)
    assert code == 1
    assert any(
        "continued as new into run" in f["problem"] and "whose history is missing" in f["problem"]
        for f in replay["findings"]
    ), problems(replay)


# ---- bundles ------------------------------------------------------------------------------------


async def test_an_exported_bundle_replays_and_verifies_offline(
    eucp: Protocol, run_audit: Audit, tmp_path: Path
) -> None:
    incident = await a_closed_crisis(eucp)
    bundle = tmp_path / "audit" / f"{incident}.zip"
    code, export = await run_audit("export", incident, "-o", bundle)
    assert code == 0, problems(export)
    assert export["histories"] == 1 + len(PLATFORMS)
    assert export["rows"] == len(eucp.ledger.rows(incident))

    offline = Audit(OFFLINE)  # no Temporal answers there, and no such database
    for command in ("replay", "verify", "timeline"):
        code, report = await offline(command, "--bundle", bundle)
        assert code == 0, f"{command}: {problems(report)}"
        assert report["source"] == f"bundle {bundle}"
    code, _ = await offline(
        "verify", "--bundle", bundle, "--manifest-sha256", export["manifest_sha256"]
    )
    assert code == 0


async def test_encrypted_histories_are_audited_with_the_key_and_exported_decrypted(
    dev_env: WorkflowEnvironment, settings: Settings, tmp_path: Path
) -> None:
    keyed = with_keys(settings, {"k1": os.urandom(32)}, "k1").model_copy(
        update={"temporal_address": dev_env.client.service_client.config.target_host}
    )
    client = Client(
        dev_env.client.service_client,
        namespace=dev_env.client.namespace,
        data_converter=data_converter(keyed),
    )
    incidents = Incidents(client, keyed)
    incident = f"inc-{uuid.uuid4().hex[:10]}"
    async with running_worker(client, keyed):
        await incidents.report(incident, a_report(), REGISTRY.public())
        await activated(incidents.as_participant(incident, COORDINATOR), url(1))

    code, timeline = await Audit(keyed)("timeline", incident)
    assert code == 0 and len(timeline["entries"]) == 3, problems(timeline)
    assert (await Audit(keyed)("replay", incident))[0] == 0
    bundle = tmp_path / "bundle.zip"
    assert (await Audit(keyed)("export", incident, "-o", bundle))[0] == 0

    evidence, _ = read_bundle(bundle)  # the bundle needs no key: it holds the plain payloads
    assert not [
        p for h in evidence.histories for e in h.events for p in payloads_in(e) if is_encrypted(p)
    ]
    assert (await Audit(OFFLINE)("replay", "--bundle", bundle))[0] == 0

    unkeyed = keyed.model_copy(update={"codec_keys": None, "codec_current_key": None})
    code, text = await Audit(unkeyed).text("replay", incident)
    assert code == 2 and "'k1'" in text


async def test_an_altered_bundle_is_caught(
    eucp: Protocol, run_audit: Audit, tmp_path: Path
) -> None:
    incident = await a_closed_crisis(eucp)
    bundle = tmp_path / "bundle.zip"
    code, export = await run_audit("export", incident, "-o", bundle)
    assert code == 0
    with zipfile.ZipFile(bundle) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    manifest = json.loads(members[MANIFEST])
    crisis_member = manifest["histories"][0]["path"]
    offline = Audit(OFFLINE)

    # an event altered: the activation's reason in its record_decisions input
    history = json.loads(members[crisis_member])
    scheduled = [
        e for e in history["events"]
        if e.get("activityTaskScheduledEventAttributes", {}).get("activityType", {}).get("name")
        == "record_decisions"
    ]  # fmt: skip
    event = scheduled[2]["activityTaskScheduledEventAttributes"]["input"]["payloads"][0]
    event["data"] = event["data"][:-8] + "AAAAAAA="
    altered = tmp_path / "altered.zip"
    rezip(altered, members | {crisis_member: json.dumps(history).encode()})
    code, report = await offline("replay", "--bundle", altered)
    assert code == 1
    [finding] = [f for f in report["findings"] if f["check"] == Check.bundle]
    assert finding["subject"] == crisis_member
    assert "does not match the manifest" in finding["problem"]

    # a wrong sum in the manifest
    manifest["members"]["ledger.jsonl"]["sha256"] = "0" * 64
    wrong = tmp_path / "wrong-sum.zip"
    rezip(wrong, members | {MANIFEST: json.dumps(manifest).encode()})
    code, report = await offline("verify", "--bundle", wrong)
    assert code == 1 and report["chain"]["ok"]
    assert [(f["subject"], f["check"]) for f in report["findings"]] == [("ledger.jsonl", "bundle")]

    # ... and a manifest rewritten to match: only the sum kept apart from the bundle shows it
    code, report = await offline(
        "verify", "--bundle", wrong, "--manifest-sha256", export["manifest_sha256"]
    )
    assert code == 1 and any(f["subject"] == MANIFEST for f in report["findings"])


def rezip(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for name, content in members.items():
            zf.writestr(name, content)


def stored(name: str, workflow_id: str) -> WorkflowHistory:
    return WorkflowHistory.from_json(workflow_id, (HISTORIES / f"{name}.json").read_text())


def v1_full_incident(version: str = "v1") -> list[WorkflowHistory]:
    """The stored histories of incident `full`: the crisis and its three platforms."""
    return [stored(f"{version}-crisis-full", "full")] + [
        stored(f"{version}-platform-{p}", platform_workflow_id("full", p)) for p in PLATFORMS
    ]


@pytest.mark.parametrize("version", ["v1", "v2"])
async def test_a_bundle_of_histories_from_an_earlier_version_still_replays(
    tmp_path: Path, version: str
) -> None:
    bundle = tmp_path / f"{version}.zip"
    write_bundle(bundle, "full", v1_full_incident(version), rows=[])
    code, report = await Audit(OFFLINE)("replay", "--bundle", bundle)
    assert code == 0, problems(report)
    assert len(report["runs"]) == 4

    # its decisions follow the protocol's rules; without the ledger's rows there is nothing to
    # cross-check them with: one finding, not one per decision
    code, report = await Audit(OFFLINE)("timeline", "--bundle", bundle, "--at", "2100-01-01")
    assert code == 1 and report["state"]["phase"] == "closed"
    assert [f["problem"] for f in report["findings"]] == [
        "the ledger has no rows for it (all deleted, or the wrong ledger?)"
    ]


def altered_activity_type(history: WorkflowHistory) -> tuple[WorkflowHistory, int]:
    """The 5th scheduled activity renamed: the code schedules something else there."""
    data = history.to_json_dict()
    event = [e for e in data["events"] if "activityTaskScheduledEventAttributes" in e][4]
    event["activityTaskScheduledEventAttributes"]["activityType"]["name"] = "shred_evidence"
    return WorkflowHistory.from_json(history.workflow_id, data), int(event["eventId"])


def dropped_timer(history: WorkflowHistory) -> tuple[WorkflowHistory, int]:
    """The first timer's start removed: the code starts a timer history does not have."""
    data = copy.deepcopy(history.to_json_dict())
    index = next(i for i, e in enumerate(data["events"]) if "timerStartedEventAttributes" in e)
    del data["events"][index]
    return WorkflowHistory.from_json(history.workflow_id, data), int(
        data["events"][index]["eventId"]
    )


@pytest.mark.parametrize("change", [altered_activity_type, dropped_timer])
async def test_a_history_the_code_cannot_reproduce_is_a_divergence_not_a_crash(
    tmp_path: Path, change: Callable[[WorkflowHistory], tuple[WorkflowHistory, int]]
) -> None:
    crisis, *platforms = v1_full_incident()
    diverging, event_id = change(crisis)
    bundle = tmp_path / "diverging.zip"
    write_bundle(bundle, "full", [diverging, *platforms], rows=[])

    code, report = await Audit(OFFLINE)("replay", "--bundle", bundle)
    assert code == 1
    [run] = [r for r in report["runs"] if r["divergence"] is not None]
    assert run["workflow_id"] == "full"
    assert run["divergence"]["event_id"] == event_id
    assert [f["subject"] for f in report["findings"]] == [
        f"full run {run['run_id']} event {event_id}"
    ]

    code, text = await Audit(OFFLINE).text("replay", "--bundle", bundle)
    assert code == 1 and f"DIVERGED full run {run['run_id']} (CrisisWorkflow" in text


async def test_replay_names_the_event_the_current_code_cannot_reproduce() -> None:
    crisis, *_ = v1_full_incident()
    diverging, event_id = altered_activity_type(crisis)
    report = await replay_evidence(Evidence("full", "test", histories=[diverging]))
    [run] = report.runs
    assert run.divergence is not None
    assert (run.divergence.event_id, run.divergence.event_type) == (
        event_id,
        "ACTIVITY_TASK_SCHEDULED",
    )
    assert run.divergence.located_by == "bisection"
    assert "shred_evidence" in run.divergence.message


async def test_histories_replayed_together_keep_each_divergence_to_its_run() -> None:
    """Every stored history through one Replayer, one of them made to diverge."""
    everything = [
        WorkflowHistory.from_json(path.stem, path.read_text())
        for path in sorted(HISTORIES.glob("*.json"))
    ]
    crisis = next(i for i, h in enumerate(everything) if h.workflow_id == "v1-crisis-full")
    everything[crisis], event_id = altered_activity_type(everything[crisis])
    runs = await replay_histories(everything)
    assert [(r.workflow_id, r.divergence.event_id) for r in runs if r.divergence] == [
        ("v1-crisis-full", event_id)
    ]
    assert [r.events for r in runs] == [len(h.events) for h in everything]


async def test_a_run_whose_first_task_has_not_started_has_nothing_to_replay() -> None:
    """What a run fetched just after continue-as-new looks like (the Replayer hangs on it)."""
    crisis, *_ = v1_full_incident()
    just_started = WorkflowHistory(crisis.workflow_id, crisis.events[:1])
    report = await replay_evidence(Evidence("full", "test", histories=[just_started]))
    assert report.ok and report.runs[0].events == 1


def test_a_bundle_that_is_not_one_is_an_error_not_a_finding(tmp_path: Path) -> None:
    junk = tmp_path / "junk.zip"
    junk.write_text("not a zip")
    result = CliRunner().invoke(audit, ["verify", "--bundle", str(junk)], obj=OFFLINE)
    assert result.exit_code == 2 and "not a readable bundle" in result.output


def test_a_bundle_reads_back_what_was_written(tmp_path: Path) -> None:
    histories = v1_full_incident()
    bundle = tmp_path / "b.zip"
    manifest, _ = write_bundle(bundle, "full", histories, rows=[], report={"report.md": b"# R"})
    evidence, read = read_bundle(bundle)
    assert evidence.findings == []
    assert (
        [h.workflow_id for h in evidence.histories]
        == [  # the crisis, then platforms by id
            "full",
            *sorted(h.workflow_id for h in histories[1:]),
        ]
    )
    assert read == manifest and read.report == ["report/report.md"]


# ---- the state at a moment, rebuilt from decisions alone ----------------------------------------

T0 = datetime(2026, 3, 15, 2, 0, tzinfo=UTC)
INCIDENT = "inc-pure"


def a_decision(n: int, kind: DecisionKind, scope: str = "crisis", **fields: Any) -> Decision:
    base: dict[str, Any] = {"actor": COORDINATOR, "at": T0 + timedelta(minutes=n), "inputs": {}}
    return Decision(
        decision_id=f"{INCIDENT}/{scope}/{n}", incident_id=INCIDENT, kind=kind, **(base | fields)
    )


ITEM = ContentItem(no=1, identifier=url(1), source=COORDINATOR.id).model_dump(mode="json")
CLOCK = {"task_id": "a-000001", "clock": "acknowledge", "due": "x"}
DECISIONS = [
    a_decision(1, DecisionKind.reported, inputs={"report": {"title": "Attack"}}),
    a_decision(2, DecisionKind.assessed),
    a_decision(
        3, DecisionKind.activated, reason="met", inputs={"platforms": ["a", "b"], "items": [ITEM]}
    ),
    a_decision(20, DecisionKind.sla_breached, "a", actor=SYSTEM, inputs=CLOCK),
    a_decision(40, DecisionKind.sla_escalated, "a", actor=SYSTEM, inputs=CLOCK),
    a_decision(
        50, DecisionKind.task_acknowledged, "a", actor=FASTBOOK, inputs={"task_id": "a-000001"}
    ),
    a_decision(
        51,
        DecisionKind.task_declined,
        "b",
        actor=CHOOSY,
        reason="satire",
        inputs={"task_id": "b-000001"},
    ),
]


def test_the_state_at_a_moment_is_rebuilt_from_the_decisions_up_to_it() -> None:
    before = reconstruct(INCIDENT, DECISIONS, T0 + timedelta(minutes=2, seconds=30)).state
    assert (before.phase, before.title, before.reporter, before.tasks) == (
        Phase.assessing, "Attack", COORDINATOR.id, {}
    )  # fmt: skip

    breached = reconstruct(INCIDENT, DECISIONS, T0 + timedelta(minutes=45)).state
    assert breached.tasks == {"a": {TaskState.assigned: 1}, "b": {TaskState.assigned: 1}}
    [breach] = breached.open_breaches
    assert (breach.task_id, breach.clock, breach.escalated) == ("a-000001", "acknowledge", True)

    after = reconstruct(INCIDENT, reversed(DECISIONS))  # order given does not matter: time does
    assert after.problems == []
    assert after.state.open_breaches == []
    assert after.state.tasks == {"a": {TaskState.acknowledged: 1}, "b": {TaskState.declined: 1}}
    assert [p.phase for p in after.state.phases] == [Phase.reported, Phase.assessing, Phase.active]


def test_decisions_the_protocol_forbids_are_reported() -> None:
    early = a_decision(
        2, DecisionKind.activated, reason="met", inputs={"platforms": ["a"], "items": [ITEM]}
    )
    late = a_decision(
        9, DecisionKind.task_resumed, "a", actor=FASTBOOK, inputs={"task_id": "a-000001"}
    )
    result = reconstruct(INCIDENT, [DECISIONS[0], early, late])
    assert [decision_id for decision_id, _ in result.problems] == [
        early.decision_id,
        late.decision_id,
    ]
    assert "activate is allowed in assessing, not in reported" in result.problems[0][1]
    assert result.state.phase is Phase.active  # recorded is recorded: the fold follows it


def test_ledger_rows_round_trip_through_a_bundle(tmp_path: Path) -> None:
    prev = "0" * 64
    rows = []
    for seq, decision in enumerate(DECISIONS, start=1):
        digest = row_hash(INCIDENT, seq, decision, prev)
        rows.append(
            LedgerRow(incident_id=INCIDENT, seq=seq, decision=decision, prev_hash=prev, hash=digest)
        )
        prev = digest
    bundle = tmp_path / "rows.zip"
    write_bundle(bundle, INCIDENT, [], rows)
    evidence, _ = read_bundle(bundle)
    assert evidence.rows == rows


# ---- the activation's period, the clocks in force and who takes part --------------------------


def reported(exercise: bool = False, **clocks: timedelta) -> list[Decision]:
    """Reported (with the clocks in force, as recorded now), assessed, and activated at minute 3
    for platforms a and b on item 1, lapsing 48 hours later unless renewed."""
    report = {"title": "Attack", "exercise": exercise}
    return [
        a_decision(
            1,
            DecisionKind.reported,
            inputs={"report": report, "clocks": SlaSettings(**clocks).model_dump(mode="json")},
        ),
        a_decision(
            2,
            DecisionKind.assessed,
            inputs={"assessment": ALL_MET.model_dump(mode="json"), "all_met": True},
        ),
        a_decision(
            3,
            DecisionKind.activated,
            reason="met",
            inputs={
                "platforms": ["a", "b"],
                "items": [ITEM],
                "override": None,
                "expires": (T0 + timedelta(minutes=3 + 48 * HOUR)).isoformat(),
            },
        ),
    ]


def lapse(n: int, **inputs: Any) -> Decision:
    """eucp de-escalating when the activation lapses, as the crisis records it."""
    reason = "the activation lapsed: 48 h without renewal"
    inputs = {"lapsed": True, "withdraw_open_tasks": False} | inputs
    return a_decision(n, DecisionKind.de_escalated, actor=SYSTEM, reason=reason, inputs=inputs)


def test_a_lapse_before_its_time_is_reported() -> None:
    """The activation lapses 48 hours after it (minute 3), or after a renewal's new expiry."""
    expires = T0 + timedelta(minutes=3 + 48 * HOUR)
    early = lapse(47 * HOUR)
    result = reconstruct(INCIDENT, [*reported(), early])
    [(decision_id, problem)] = result.problems
    assert decision_id == early.decision_id
    assert problem == (
        f"de_escalated: at: the activation lapses at {expires.isoformat()} unless renewed: a"
        " lapse recorded before its time, not after it expired"
    )
    assert result.state.phase is Phase.de_escalating  # recorded is recorded: followed
    assert result.state.activation_expires is None

    on_time = reconstruct(INCIDENT, [*reported(), lapse(48 * HOUR + 3)])
    assert on_time.problems == [] and on_time.state.phase is Phase.de_escalating

    renewed_until = T0 + timedelta(minutes=40 * HOUR + 48 * HOUR)
    renewal = a_decision(
        40 * HOUR,
        DecisionKind.activation_renewed,
        reason="still re-uploaded",
        inputs={"expires": renewed_until.isoformat()},
    )
    reminder = a_decision(
        82 * HOUR,
        DecisionKind.activation_expiring,
        actor=SYSTEM,
        reason="lapses unless renewed",
        inputs={"expires": renewed_until.isoformat()},
    )
    at_the_old_expiry = lapse(48 * HOUR + 3)
    result = reconstruct(INCIDENT, [*reported(), renewal, at_the_old_expiry])
    assert [d for d, _ in result.problems] == [at_the_old_expiry.decision_id]
    assert renewed_until.isoformat() in result.problems[0][1]
    state = reconstruct(INCIDENT, [*reported(), renewal], T0 + timedelta(minutes=41 * HOUR))
    assert state.state.activation_expires == renewed_until
    assert reconstruct(INCIDENT, [*reported(), renewal, reminder, lapse(88 * HOUR)]).problems == []

    # no renewal once de-escalated; no lapse without `lapsed`, nor one by a coordinator
    manual = a_decision(10, DecisionKind.de_escalated, reason="quiet")
    late_renewal = a_decision(11, DecisionKind.activation_renewed, reason="more")
    result = reconstruct(INCIDENT, [*reported(), manual, late_renewal])
    assert [p.split(": ", 1)[1] for _, p in result.problems] == [
        "phase: renew_activation is allowed in active, not in de_escalating"
    ]
    early_reminder = a_decision(
        10 * HOUR, DecisionKind.activation_expiring, actor=SYSTEM, inputs={}
    )
    unsaid = lapse(49 * HOUR, lapsed=False)
    by_hand = a_decision(50 * HOUR, DecisionKind.de_escalated, reason="x", inputs={"lapsed": True})
    assert [
        p for _, p in reconstruct(INCIDENT, [*reported(), early_reminder, unsaid]).problems
    ] == [
        "activation_expiring: at: due at "
        f"{(expires - timedelta(hours=6)).isoformat()} by the clocks in force (renewal_reminder"
        " 6 h before it lapses): recorded too early",
        "de_escalated: inputs.lapsed: eucp de-escalates only when the activation lapses"
        " unrenewed (lapsed)",
    ]
    [(_, problem)] = reconstruct(INCIDENT, [*reported(), by_hand]).problems
    assert problem.endswith("only eucp records a lapse, not eu-iru (coordinator)")


def test_an_activation_without_all_five_criteria_met_needs_its_override() -> None:
    report, _, activated_ = reported()
    unmet = ALL_MET.model_copy(update={"multi_platform_virality": Criterion()})
    assessed = a_decision(2, DecisionKind.assessed, inputs={"assessment": unmet.model_dump()})
    [(_, problem)] = reconstruct(INCIDENT, [report, assessed, activated_]).problems
    assert problem.startswith("activated: override: activation needs all five criteria met")
    assert "not met: multi_platform_virality" in problem
    overridden = activated_.model_copy(
        update={"inputs": activated_.inputs | {"override": "the stream is live"}}
    )
    assert reconstruct(INCIDENT, [report, assessed, overridden]).problems == []


def test_clocks_changed_mid_crisis_are_the_ones_the_audit_judges_by() -> None:
    """Acknowledge within 15 minutes at the report; 5 from minute 5, so the deadline of the
    task assigned at minute 3 is minute 8. A reminder recorded then is on time, though by the
    clocks of the start it would be 10 minutes early."""
    shorter = a_decision(
        5,
        DecisionKind.clocks_set,
        reason="night shift",
        inputs={
            "changes": {"acknowledge_within": "5 min"},
            "clocks": SlaSettings(acknowledge_within=timedelta(minutes=5)).model_dump(mode="json"),
        },
    )
    breach = a_decision(8, DecisionKind.sla_breached, "a", actor=SYSTEM, inputs=CLOCK)
    backup = a_decision(23, DecisionKind.sla_backup_told, "a", actor=SYSTEM, inputs=CLOCK)
    result = reconstruct(INCIDENT, [*reported(exercise=True), shorter, breach, backup])
    assert result.problems == []
    state = result.state
    assert state.clocks is not None and state.clocks.acknowledge_within == timedelta(minutes=5)
    assert state.exercise and [b.backup_told for b in state.open_breaches] == [True]
    judged_by_the_start = reconstruct(INCIDENT, [*reported(), breach])
    assert [p for _, p in judged_by_the_start.problems] == [
        f"sla_breached: at: due at {(T0 + timedelta(minutes=18)).isoformat()} by the clocks in"
        " force (acknowledge_within 15 min, for the acknowledge deadline of a-000001): recorded"
        " too early"
    ]

    # 30 minutes from minute 5: a reminder at minute 20 is early by the clocks in force...
    longer = shorter.model_copy(
        update={
            "inputs": {
                "changes": {"acknowledge_within": "30 min"},
                "clocks": SlaSettings(acknowledge_within=timedelta(minutes=30)).model_dump(
                    mode="json"
                ),
            }
        }
    )
    at_20 = a_decision(20, DecisionKind.sla_breached, "a", actor=SYSTEM, inputs=CLOCK)
    [(_, problem)] = reconstruct(INCIDENT, [*reported(), longer, at_20]).problems
    assert "(acknowledge_within 30 min, for the acknowledge deadline of a-000001)" in problem
    # ... but not one the platform recorded on the old clocks before the new ones reached it
    just_before = longer.model_copy(update={"at": T0 + timedelta(minutes=17, seconds=30)})
    at_18 = a_decision(18, DecisionKind.sla_breached, "a", actor=SYSTEM, inputs=CLOCK)
    assert reconstruct(INCIDENT, [*reported(), just_before, at_18]).problems == []
    # the escalation rung: escalate_after (15 min) after the backup rung, itself 15 min late
    escalated = a_decision(30, DecisionKind.sla_escalated, "a", actor=SYSTEM, inputs=CLOCK)
    [(_, problem)] = reconstruct(
        INCIDENT, [*reported(), shorter, breach, backup, escalated]
    ).problems
    assert problem.startswith(
        f"sla_escalated: at: due at {(T0 + timedelta(minutes=38)).isoformat()} by the clocks in"
        " force (acknowledge_within 5 min + 2 x escalate_after 15 min,"
    )


def test_a_platform_brought_in_suspended_and_brought_back_is_rebuilt() -> None:
    """c joins at minute 10 and gets item 1; item 2 comes while it is suspended (minute 20-30),
    so it has no task for it until it is back; its withdrawn item 1 is given anew then."""
    item2 = ContentItem(no=2, identifier=url(2), source=COORDINATOR.id).model_dump(mode="json")
    joined = a_decision(10, DecisionKind.platform_joined, inputs={"platform": "c", "back": False})
    acknowledged = a_decision(
        12, DecisionKind.task_acknowledged, "c", actor=CHOOSY, inputs={"task_id": "c-000001"}
    )
    suspended = a_decision(
        20, DecisionKind.platform_suspended, reason="unresponsive", inputs={"platform": "c"}
    )
    withdrawn = a_decision(
        20, DecisionKind.task_withdrawn, "c", reason="suspended", inputs={"task_id": "c-000001"}
    )
    added = a_decision(25, DecisionKind.content_added, inputs={"items": [item2]})
    back = a_decision(30, DecisionKind.platform_joined, inputs={"platform": "c", "back": True})
    removed = a_decision(
        35, DecisionKind.task_removed, "c", actor=CHOOSY, inputs={"task_id": "c-000002"}
    )
    decisions = [*reported(), joined, acknowledged, suspended, withdrawn, added, back, removed]

    while_out = reconstruct(INCIDENT, decisions, T0 + timedelta(minutes=26)).state
    assert (while_out.platforms, while_out.suspended) == (["a", "b", "c"], ["c"])
    assert while_out.tasks["c"] == {TaskState.withdrawn: 1}
    assert while_out.tasks["a"] == {TaskState.assigned: 2}
    result = reconstruct(INCIDENT, decisions)
    assert result.problems == []
    assert (result.state.platforms, result.state.suspended) == (["a", "b", "c"], [])
    assert result.state.tasks["c"] == {TaskState.assigned: 1, TaskState.removed: 1}

    twice = a_decision(11, DecisionKind.platform_joined, inputs={"platform": "c", "back": False})
    not_in = a_decision(12, DecisionKind.platform_suspended, reason="x", inputs={"platform": "d"})
    assert [p for _, p in reconstruct(INCIDENT, [*reported(), joined, twice, not_in]).problems] == [
        "platform_joined: platform: c takes part already",
        "platform_suspended: platform: d does not take part in this takedown",
    ]


# ---- removal orders after their issue, rebuilt from decisions alone -----------------------------

HOUR = 60  # minutes, as `a_decision` counts them
FR_ORDER = ORDER_DETAILS.issued_by("FR", MEMBER_STATE.id)  # to choosy, established in IE
REF = FR_ORDER.reference
REMOVED, REINSTATE = "choosy-000002", "choosy-000002-reinstate"


def order_item(no: int, order: RemovalOrder = FR_ORDER) -> dict[str, Any]:
    return ContentItem(
        no=no, identifier=url(no), basis=order, source=MEMBER_STATE.id, addressees=[CHOOSY.id]
    ).model_dump(mode="json")


def issued(n: int, *numbers: int, order: RemovalOrder = FR_ORDER) -> Decision:
    """`removal_order_issued` as the crisis records a cross-border order: with its copy."""
    inputs = {
        "order": order.model_dump(mode="json"),
        "items": [order_item(no, order) for no in numbers],
        "copy_to": [HOST_AUTHORITY.id],
        "scrutiny_until": (T0 + timedelta(minutes=n + 72 * HOUR)).isoformat(),
    }
    return a_decision(n, DecisionKind.removal_order_issued, actor=MEMBER_STATE, inputs=inputs)


def on_task(n: int, kind: DecisionKind, tid: str, actor: Actor = CHOOSY, **fields: Any) -> Decision:
    """A task decision as choosy's workflow records it (its scope names the platform)."""
    inputs = {"task_id": tid, "item_no": int(tid.split("-")[1])} | fields.pop("inputs", {})
    return a_decision(n, kind, CHOOSY.id, actor=actor, inputs=inputs, **fields)


def on_order(
    n: int, kind: DecisionKind, actor: Actor, reason: str | None, **inputs: Any
) -> Decision:
    return a_decision(n, kind, actor=actor, reason=reason, inputs={"order": REF} | inputs)


ISSUED = [
    a_decision(1, DecisionKind.reported, inputs={"report": {"title": "Attack"}}),
    a_decision(2, DecisionKind.assessed),
    a_decision(
        3,
        DecisionKind.activated,
        reason="met",
        inputs={"platforms": [CHOOSY.id, FASTBOOK.id], "items": [ITEM]},
    ),
    issued(5, 2),
]
INFRINGES = [
    *ISSUED,
    on_task(10, DecisionKind.task_removed, REMOVED),
    on_order(
        HOUR,
        DecisionKind.scrutiny_requested,
        CHOOSY,
        "satire, not terrorist content",
        decide_by=(T0 + timedelta(minutes=73 * HOUR)).isoformat(),
    ),
    on_order(
        10 * HOUR,
        DecisionKind.scrutiny_decided,
        HOST_AUTHORITY,
        "protected satire",
        outcome="infringes",
        requested=True,
    ),
    on_task(
        10 * HOUR + 1,
        DecisionKind.reinstatement_assigned,
        REINSTATE,
        HOST_AUTHORITY,
        reason="order lost its legal effect",
        inputs={"reinstates": REMOVED},
    ),
    on_task(10 * HOUR + 21, DecisionKind.task_reinstated, REINSTATE),
]


def test_an_order_found_to_infringe_on_request_is_rebuilt_with_its_reinstatement() -> None:
    asked = reconstruct(INCIDENT, INFRINGES, T0 + timedelta(minutes=5 * HOUR)).state
    [order] = asked.orders
    assert (order.reference, order.issuer, order.platform, order.stage) == (
        REF, MEMBER_STATE.id, CHOOSY.id, ScrutinyStage.requested
    )  # fmt: skip
    assert order.request is not None and order.request.by == CHOOSY.id
    assert order.request.decide_by == T0 + timedelta(minutes=73 * HOUR)

    after = reconstruct(INCIDENT, INFRINGES)
    assert after.problems == []
    [order] = after.state.orders
    assert order.stage is ScrutinyStage.infringes and order.decision is not None
    assert (order.decision.by, order.decision.reasons) == (HOST_AUTHORITY.id, "protected satire")
    assert order.reinstatements == {REINSTATE: TaskState.reinstated}
    assert after.state.tasks == {  # the order binds choosy alone; its reinstatement is a task
        CHOOSY.id: {TaskState.assigned: 1, TaskState.removed: 1, TaskState.reinstated: 1},
        FASTBOOK.id: {TaskState.assigned: 1},
    }


def test_an_order_left_alone_stands_and_a_requested_decision_not_made_is_overdue() -> None:
    closed = on_order(72 * HOUR + 5, DecisionKind.scrutiny_window_closed, SYSTEM, "72 hours")
    state = reconstruct(INCIDENT, [*ISSUED, closed]).state
    assert [o.stage for o in state.orders] == [ScrutinyStage.stands]

    requested = on_order(HOUR, DecisionKind.scrutiny_requested, CHOOSY, "satire")
    overdue = on_order(73 * HOUR, DecisionKind.scrutiny_overdue, SYSTEM, "late", due="x")
    result = reconstruct(INCIDENT, [*ISSUED, requested, closed, overdue])
    assert result.problems == [] and result.state.orders[0].stage is ScrutinyStage.overdue


def test_an_issuers_clarification_resumes_a_paused_task_and_one_without_it_is_reported() -> None:
    paused = on_task(
        8,
        DecisionKind.task_cannot_comply,
        REMOVED,
        reason="which post?",
        inputs={"cannot_comply": "insufficient_information"},
    )
    alerted = on_task(15, DecisionKind.pause_alerted, REMOVED, SYSTEM)
    clarified = on_order(20, DecisionKind.order_clarified, MEMBER_STATE, "the second post")
    resumed = on_task(21, DecisionKind.task_resumed, REMOVED, MEMBER_STATE)
    result = reconstruct(INCIDENT, [*ISSUED, paused, alerted, clarified, resumed])
    assert result.problems == []
    assert result.state.tasks[CHOOSY.id] == {TaskState.assigned: 1, TaskState.acknowledged: 1}
    assert result.state.orders[0].clarifications == 1

    again = on_task(16, DecisionKind.pause_alerted, REMOVED, SYSTEM)
    by_host = on_task(19, DecisionKind.task_resumed, REMOVED, HOST_AUTHORITY)
    result = reconstruct(INCIDENT, [*ISSUED, paused, alerted, again, by_host, resumed])
    assert [(d, p.split(": ", 1)[1]) for d, p in result.problems] == [
        (again.decision_id, "task_id: the pause of choosy-000002 was alerted already"),
        (
            by_host.decision_id,
            "actor: choosy-000002 resumes on a clarification of its order's issuing authority "
            "(fr-pharos), not of ie-cnam",
        ),
        (
            resumed.decision_id,
            "actor: no order_clarified of order FR-2026-0001 while choosy-000002 was paused",
        ),
    ]


def test_an_order_upheld_of_the_host_states_own_motion_is_decided_again_on_request() -> None:
    own_motion = on_order(
        HOUR,
        DecisionKind.scrutiny_decided,
        HOST_AUTHORITY,
        "terrorist",
        outcome="upheld",
        requested=False,
    )
    request = on_order(2 * HOUR, DecisionKind.scrutiny_requested, CHOOSY, "satire")
    asked = reconstruct(INCIDENT, [*ISSUED, own_motion, request])
    assert asked.problems == [] and asked.state.orders[0].stage is ScrutinyStage.requested
    again = on_order(
        3 * HOUR,
        DecisionKind.scrutiny_decided,
        HOST_AUTHORITY,
        "satire after all",
        outcome="infringes",
        requested=True,
    )
    decided = reconstruct(INCIDENT, [*ISSUED, own_motion, request, again])
    assert decided.problems == [] and decided.state.orders[0].stage is ScrutinyStage.infringes
    late = on_order(76 * HOUR, DecisionKind.scrutiny_overdue, SYSTEM, "late", due="x")
    [(_, problem)] = reconstruct(INCIDENT, [*ISSUED, own_motion, request, again, late]).problems
    assert problem.endswith("the requested scrutiny of order FR-2026-0001 was decided")


@pytest.mark.parametrize(
    ("decision", "problem"),
    [
        (
            on_order(4, DecisionKind.scrutiny_decided, HOST_AUTHORITY, "fine", outcome="upheld"),
            "no removal_order_issued of reference 'FR-2026-0001' before it",
        ),
        (
            on_order(HOUR, DecisionKind.scrutiny_requested, FASTBOOK, "not ours"),
            "no removal order of that reference among your tasks",
        ),
        (
            on_order(49 * HOUR, DecisionKind.scrutiny_requested, CHOOSY, "late"),
            "the 48 hours to ask for scrutiny of order FR-2026-0001 ended",
        ),
        (
            on_order(HOUR, DecisionKind.scrutiny_decided, MEMBER_STATE, "mine", outcome="upheld"),
            "is scrutinised by the competent authority of its host Member State (IE)",
        ),
        (
            on_order(
                73 * HOUR, DecisionKind.scrutiny_decided, HOST_AUTHORITY, "x", outcome="upheld"
            ),
            "the 72 hours to scrutinise order FR-2026-0001 ended",
        ),
        (
            on_order(71 * HOUR, DecisionKind.scrutiny_window_closed, SYSTEM, "72 hours"),
            "recorded before its time",
        ),
        (
            on_order(HOUR, DecisionKind.scrutiny_overdue, SYSTEM, "late", due="x"),
            "no scrutiny of order FR-2026-0001 was requested",
        ),
        (
            on_order(HOUR, DecisionKind.order_clarified, HOST_AUTHORITY, "not my order"),
            "no removal order 'FR-2026-0001' issued by ie-cnam",
        ),
        (issued(7, 3), "order FR-2026-0001 was issued already, by fr-pharos"),
    ],
    ids=[
        "decided-before-issue",
        "requested-by-another-platform",
        "requested-after-48h",
        "decided-by-the-issuing-state",
        "decided-after-72h-unasked",
        "window-closed-early",
        "overdue-unasked",
        "clarified-by-another-authority",
        "issued-twice",
    ],
)
def test_a_decision_on_an_order_the_protocol_forbids_is_reported(
    decision: Decision, problem: str
) -> None:
    result = reconstruct(INCIDENT, [*ISSUED, decision])
    [(decision_id, found)] = result.problems
    assert decision_id == decision.decision_id and found.startswith(f"{decision.kind}: ")
    assert problem in found


def test_a_reinstatement_of_content_never_removed_or_never_assigned_is_reported() -> None:
    removal, request, _, assigned_, done = INFRINGES[len(ISSUED) :]
    upheld = on_order(
        10 * HOUR,
        DecisionKind.scrutiny_decided,
        HOST_AUTHORITY,
        "terrorist",
        outcome="upheld",
        requested=True,
    )
    referral = on_task(
        11 * HOUR,
        DecisionKind.reinstatement_assigned,
        "choosy-000001-reinstate",
        HOST_AUTHORITY,
        inputs={"reinstates": "choosy-000001"},
    )
    result = reconstruct(INCIDENT, [*ISSUED, removal, request, upheld, assigned_, done, referral])
    assert [(d, p.split(": ", 1)[1]) for d, p in result.problems] == [
        (
            assigned_.decision_id,
            "reinstates: the order of choosy-000002 (FR-2026-0001) was not found to infringe "
            "(TCO Art. 4)",
        ),
        (
            referral.decision_id,
            "reinstates: choosy-000001 is assigned, not removed: nothing to reinstate",
        ),
        (
            referral.decision_id,
            "reinstates: the order of choosy-000001 (none issued by an authority) was not "
            "found to infringe (TCO Art. 4)",
        ),
    ]
    # recorded is recorded: both reinstatements are followed
    assert result.state.tasks[CHOOSY.id][TaskState.reinstated] == 1
    assert result.state.orders[0].stage is ScrutinyStage.upheld

    never_assigned = f"task_reinstated: task_id: no reinstatement_assigned of {REINSTATE} on choosy"
    unassigned = reconstruct(INCIDENT, [*ISSUED, removal, done])
    assert [p for _, p in unassigned.problems] == [f"{never_assigned} before it"]
    # `eucp audit timeline` reports it against the protocol
    timeline = build_timeline(Evidence(INCIDENT, "test", rows=chained([*ISSUED, removal, done])))
    assert [f.problem for f in timeline.findings if f.check is Check.protocol] == [
        f"against the protocol: {never_assigned} before it"
    ]


def chained(decisions: list[Decision]) -> list[LedgerRow]:
    """The decisions as a correctly chained ledger."""
    prev, rows = "0" * 64, []
    for seq, decision in enumerate(decisions, start=1):
        digest = row_hash(INCIDENT, seq, decision, prev)
        rows.append(
            LedgerRow(incident_id=INCIDENT, seq=seq, decision=decision, prev_hash=prev, hash=digest)
        )
        prev = digest
    return rows

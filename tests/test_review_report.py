"""The post-incident review report: a scripted crisis with known timings on the time-skipping
server, its figures checked exactly; the figures' rules on hand-built ledger rows; the rendered
files (one self-contained HTML page with inline SVG) written by the `write_report` activity."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.report import ReportActivities, ReportFiles, WriteReport
from eucp.protocol.actions import Action
from eucp.protocol.clocks import SlaSettings, moment_in_words
from eucp.protocol.decisions import GENESIS_HASH, Decision, DecisionKind, LedgerRow, row_hash
from eucp.protocol.identifiers import HashAlgorithm, HashIdentifier
from eucp.protocol.participants import SYSTEM, Actor
from eucp.protocol.tasks import (
    CannotComplyReason,
    ContentItem,
    Outcome,
    RemovalOrder,
    TaskReport,
    task_id,
)
from eucp.review import render
from eucp.review.figures import (
    PlatformFigures,
    ReviewFigures,
    compute,
    duration_stats,
    nearest_rank,
)
from eucp.runtime.ledger import open_ledger
from tests.conftest import (
    CHOOSY,
    COORDINATOR,
    FASTBOOK,
    HOST_AUTHORITY,
    MEMBER_STATE,
    SLOWTUBE,
    Protocol,
    a_report,
)
from tests.protocol_steps import ALL_MET, AN_ORDER, ORDER_DETAILS, url

MIN = timedelta(minutes=1)
BLURRY = HashIdentifier(algorithm=HashAlgorithm.pdq, value="ab" * 32, quality=30)
NEWS = "news reporting by a broadcaster: kept up under our terms"
SATIRE = "a satire account, not terrorist content"
COLD_STORAGE = "the copy sits on a cold-storage node we cannot reach"
# Recorded times run a few milliseconds behind the script (the test server's clock also moves
# with real time between skips), so each recorded duration is its scripted one plus less than this.
DRIFT = timedelta(seconds=30)


# ---- a scripted crisis on the time-skipping server -----------------------------------------


def _outcomes(platform: str, outcome: Outcome, *items: int, **fields: Any) -> list[TaskReport]:
    return [TaskReport(task_id=task_id(platform, no), outcome=outcome, **fields) for no in items]


class Script:
    """Advances the time-skipping server to whole minutes after the activation."""

    def __init__(self, eucp: Protocol) -> None:
        self.eucp = eucp
        self.minute = 0

    async def at(self, minute: int) -> None:
        await self.eucp.env.sleep(timedelta(minutes=minute - self.minute))
        self.minute = minute


async def scripted_crisis(eucp: Protocol) -> str:
    """Reported, activated 20 minutes later on 10 items, then answered on a known schedule
    (minutes after the activation in the comments); de-escalated, re-escalated, reviewed.
    A missed deadline climbs a ladder: reminder at the deadline, the platform's backup contact
    15 minutes later, the coordinators 15 minutes after that."""
    incident = await eucp.report(sla=SlaSettings())  # acknowledge 15, act 60, escalate 15 min
    iru = eucp.incidents.as_participant(incident, COORDINATOR)
    fb = eucp.incidents.as_participant(incident, FASTBOOK)
    st = eucp.incidents.as_participant(incident, SLOWTUBE)
    ch = eucp.incidents.as_participant(incident, CHOOSY)
    await eucp.env.sleep(20 * MIN)
    await iru.act(Action.assess, assessment=ALL_MET)
    await iru.act(
        Action.activate, reason="all five criteria met", identifiers=[url(n) for n in range(1, 11)]
    )
    s = Script(eucp)  # minute 0: items 1-10 on every platform

    await s.at(2)
    await fb.report_tasks(_outcomes(FASTBOOK.id, Outcome.acknowledged, 1, 2, 3, 4, 5, 6))
    await s.at(5)
    await fb.report_tasks(_outcomes(FASTBOOK.id, Outcome.acknowledged, 7, 8, 9))
    await ch.report_tasks(_outcomes(CHOOSY.id, Outcome.acknowledged, 1, 2))
    await s.at(8)
    await fb.report_tasks(_outcomes(FASTBOOK.id, Outcome.acknowledged, 10))
    await ch.report_tasks(_outcomes(CHOOSY.id, Outcome.not_found, *range(4, 11)))
    await s.at(10)
    await fb.report_tasks(_outcomes(FASTBOOK.id, Outcome.removed, 1, 2))
    await ch.report_tasks(_outcomes(CHOOSY.id, Outcome.declined, 1, reason=NEWS))
    await s.at(12)  # item 11, from fastbook's sighting: tasks for slowtube and choosy
    answer = await fb.act(Action.report_sightings, identifiers=[url(11), url(1), BLURRY])
    assert (answer.accepted_items, answer.duplicates, answer.low_quality) == ([11], 1, 1)
    # minute 15: slowtube's ten acknowledge deadlines pass, and choosy's for item 3
    await s.at(18)
    await ch.report_tasks(_outcomes(CHOOSY.id, Outcome.removed, 11))
    await s.at(20)
    await fb.report_tasks(_outcomes(FASTBOOK.id, Outcome.removed, 3, 4))
    await st.report_tasks(_outcomes(SLOWTUBE.id, Outcome.acknowledged, *range(1, 11)))
    await s.at(25)
    await fb.report_tasks(_outcomes(FASTBOOK.id, Outcome.removed, 5, 6, 7))
    # minute 27: slowtube's acknowledge deadline for item 11 passes
    await s.at(30)  # choosy's backup contact told of item 3
    await fb.report_tasks(_outcomes(FASTBOOK.id, Outcome.removed, 8))
    await ch.report_tasks(
        _outcomes(
            CHOOSY.id,
            Outcome.cannot_comply,
            2,
            cannot_comply=CannotComplyReason.technical_impossibility,
            reason=COLD_STORAGE,
        )
    )
    await s.at(40)
    await fb.report_tasks(_outcomes(FASTBOOK.id, Outcome.not_found, 9))
    # minute 42: slowtube's backup contact told of item 11
    await s.at(45)  # choosy's item 3 escalated to the coordinators
    await st.report_tasks(_outcomes(SLOWTUBE.id, Outcome.removed, 1))
    await s.at(48)
    await ch.report_tasks(_outcomes(CHOOSY.id, Outcome.declined, 3, reason=SATIRE))
    await s.at(49)
    await ch.act(Action.report_false_positive, item=3, reason=SATIRE)
    await s.at(50)
    await st.report_tasks(_outcomes(SLOWTUBE.id, Outcome.removed, 4, 5, 6, 7, 8, 9, 11))
    await s.at(55)
    await st.report_tasks(_outcomes(SLOWTUBE.id, Outcome.removed, 10))
    # minute 60: the hour passes for fastbook's item 10 and slowtube's items 2 and 3
    await s.at(70)
    await fb.report_tasks(_outcomes(FASTBOOK.id, Outcome.removed, 10))
    await st.report_tasks(_outcomes(SLOWTUBE.id, Outcome.removed, 2))
    await ch.report_tasks(_outcomes(CHOOSY.id, Outcome.resumed, 2))
    # minute 75: slowtube's backup contact told of item 3; minute 90: escalated
    await s.at(90)
    await ch.report_tasks(_outcomes(CHOOSY.id, Outcome.removed, 2))
    await s.at(100)
    await st.report_tasks(_outcomes(SLOWTUBE.id, Outcome.removed, 3))
    assert (await iru.act(Action.add_content, identifiers=[url(12)])).accepted_items == [12]
    await s.at(105)
    await iru.act(Action.withdraw_content, items=[12], reason="added in error: a news report")
    await s.at(110)
    await iru.act(Action.de_escalate, reason="no re-uploads for an hour")
    await s.at(120)
    await iru.act(Action.re_escalate, reason="a new wave of re-uploads")
    await s.at(140)
    await iru.act(Action.de_escalate, reason="quiet again")
    await s.at(150)
    await iru.act(Action.start_review)
    await s.at(155)
    await fb.act(
        Action.submit_review_input, text="Hash matching caught the re-uploads within minutes."
    )
    await eucp.incidents.as_participant(incident, MEMBER_STATE).act(
        Action.submit_review_input,
        text="Removal orders need a contact point that answers at night.",
    )
    await s.at(160)
    await iru.act(Action.close, reason="debrief done")
    await eucp.incidents.result(incident)  # every platform has reported its final figures
    return incident


class Recorded:
    """The scripted crisis's task times, read straight from its ledger rows."""

    def __init__(self, rows: Sequence[LedgerRow]) -> None:
        self.start: dict[int, datetime] = {}
        self.answer: dict[str, datetime] = {}
        self.act: dict[str, datetime] = {}
        for r in rows:
            d = r.decision
            for item in d.inputs.get("items", []) if d.kind in _ITEM_KINDS else []:
                self.start[item["no"]] = d.at
            if d.kind in _ANSWERS:
                self.answer.setdefault(d.inputs["task_id"], d.at)
            if d.kind in _ACTS:
                self.act[d.inputs["task_id"]] = d.at

    def ack(self, platform: str, no: int, scripted: int) -> timedelta:
        """The task's recorded time to acknowledge, checked against the script's minutes."""
        return self._check(self.answer[task_id(platform, no)] - self.start[no], scripted)

    def acted(self, platform: str, no: int, scripted: int) -> timedelta:
        return self._check(self.act[task_id(platform, no)] - self.start[no], scripted)

    @staticmethod
    def _check(recorded: timedelta, scripted: int) -> timedelta:
        assert scripted * MIN <= recorded < scripted * MIN + DRIFT
        return recorded


_ITEM_KINDS = (DecisionKind.activated, DecisionKind.content_added, DecisionKind.sighting_reported)
_ACTS = (DecisionKind.task_removed, DecisionKind.task_not_found, DecisionKind.task_declined)
_ANSWERS = (DecisionKind.task_acknowledged, DecisionKind.task_cannot_comply, *_ACTS)


def _platform(f: ReviewFigures, platform_id: str) -> PlatformFigures:
    return next(p for p in f.platforms if p.platform_id == platform_id)


async def test_the_report_of_a_scripted_crisis_matches_its_timings(
    eucp_skipping: Protocol, tmp_path: Path
) -> None:
    eucp = eucp_skipping
    incident = await scripted_crisis(eucp)
    rows = eucp.ledger.rows(incident)
    t = Recorded(rows)
    files = ActivityEnvironment().run(
        ReportActivities(eucp.ledger).write_report,
        WriteReport(incident_id=incident, output_dir=str(tmp_path / "review")),
    )
    data = json.loads(_read(files.json_path))
    f = ReviewFigures.model_validate(data)  # the JSON carries every figure, exactly
    assert f == compute(rows)
    assert (f.phase, f.ledger.rows, f.ledger.chain_ok) == ("closed", len(rows), True)

    a = f.activation
    by_kind = {r.decision.kind: r.decision.at for r in reversed(rows)}  # first of each kind
    assert (
        a.report_to_activation == by_kind[DecisionKind.activated] - by_kind[DecisionKind.reported]
    )
    assert 20 * MIN <= a.report_to_activation < 20 * MIN + DRIFT
    assert (
        a.activation_length == by_kind[DecisionKind.de_escalated] - by_kind[DecisionKind.activated]
    )
    assert 110 * MIN <= a.activation_length < 110 * MIN + DRIFT
    assert [p.started_by for p in a.periods] == [DecisionKind.activated, DecisionKind.re_escalated]
    assert a.time_active is not None and 130 * MIN <= a.time_active < 130 * MIN + DRIFT
    assert a.time_active == sum((p.length for p in a.periods if p.length), timedelta())
    assert (a.de_escalations, a.re_escalations) == (2, 1)

    ids = f.identifiers
    assert ids.items == 12
    assert ids.by_decision == {"activated": 10, "sighting_reported": 1, "content_added": 1}
    assert (ids.duplicates, ids.low_quality, ids.withdrawn_items) == (1, 1, [12])
    assert [(s.by, s.new_items) for s in ids.sightings] == [(FASTBOOK.id, [11])]
    assert [(x.by, x.item, x.reason) for x in ids.false_positives] == [(CHOOSY.id, 3, SATIRE)]

    fb = _platform(f, FASTBOOK.id)
    assert (fb.tasks, fb.by_state) == (11, {"not_found": 1, "removed": 9, "withdrawn": 1})
    # acknowledged at 2 (x6), 5 (x3), 8: median rank 5 of 10, p90 rank 9
    assert fb.acknowledge.count == 10
    assert fb.acknowledge.median == t.ack(FASTBOOK.id, 1, 2)
    assert fb.acknowledge.p90 == t.ack(FASTBOOK.id, 7, 5)
    assert fb.acknowledge.max == t.ack(FASTBOOK.id, 10, 8)
    # acted at 10, 10, 20, 20, 25, 25, 25, 30, 40, 70
    assert fb.act.count == 10
    assert fb.act.median == t.acted(FASTBOOK.id, 5, 25)
    assert fb.act.p90 == t.acted(FASTBOOK.id, 9, 40)
    assert fb.act.max == t.acted(FASTBOOK.id, 10, 70)
    assert (fb.acted_within_hour, fb.tasks_with_full_hour) == (9, 10)  # item 12 withdrawn early
    assert (fb.breaches_by_clock, fb.backup_told, fb.escalations) == ({"act": 1}, 0, 0)
    assert (fb.declines, fb.cannot_comply) == ([], [])
    assert (fb.sightings_reported, fb.sighted_items) == (1, 1)

    ch = _platform(f, CHOOSY.id)
    states = {"declined": 2, "not_found": 7, "removed": 2, "withdrawn": 1}
    assert (ch.tasks, ch.by_state, ch.withdrawn) == (12, states, 1)
    # acknowledged at 5, 5, 6 (item 11, found at 12), 8 (x7), 48: median rank 6 of 11, p90 10
    assert ch.acknowledge.median == t.ack(CHOOSY.id, 4, 8)
    assert ch.acknowledge.p90 == t.ack(CHOOSY.id, 10, 8)
    assert ch.acknowledge.max == t.ack(CHOOSY.id, 3, 48)
    assert ch.acknowledge_times[2] == t.ack(CHOOSY.id, 11, 6)
    # acted at 6, 8 (x7), 10, 48, 90 (the pause for cannot-comply is not subtracted)
    assert ch.act.median == t.acted(CHOOSY.id, 4, 8)
    assert ch.act.p90 == t.acted(CHOOSY.id, 3, 48)
    assert ch.act.max == t.acted(CHOOSY.id, 2, 90)
    assert ch.share_within_hour == Fraction(10, 11)
    assert (ch.acted_within_hour, ch.tasks_with_full_hour) == (10, 11)
    # item 3: reminded at 15, backup told at 30, coordinators at 45
    ack = {"acknowledge": 1}
    assert (ch.breaches_by_clock, ch.backup_told_by_clock, ch.escalations_by_clock) == (ack,) * 3
    assert [(n.task_id, n.reason) for n in ch.declines] == [
        ("choosy-000001", NEWS),
        ("choosy-000003", SATIRE),
    ]
    assert [(n.task_id, n.annex_iii, n.reason) for n in ch.cannot_comply] == [
        ("choosy-000002", "technical_impossibility", COLD_STORAGE)
    ]
    assert (ch.resumed, ch.sightings_reported) == (1, 0)

    st = _platform(f, SLOWTUBE.id)
    assert st.tasks == 12 and st.by_state == {"removed": 11, "withdrawn": 1}
    # acknowledged at 20 (x10), 38 (item 11: found at 12, removed at 50, never acknowledged)
    assert st.acknowledge.median == t.ack(SLOWTUBE.id, 1, 20)
    assert st.acknowledge.p90 == t.ack(SLOWTUBE.id, 10, 20)
    assert st.acknowledge.max == t.ack(SLOWTUBE.id, 11, 38)
    # acted at 38, 45, 50 (x6), 55, 70, 100
    assert st.act.median == t.acted(SLOWTUBE.id, 4, 50)
    assert st.act.p90 == t.acted(SLOWTUBE.id, 2, 70)
    assert st.act.max == t.acted(SLOWTUBE.id, 3, 100)
    assert (st.acted_within_hour, st.tasks_with_full_hour) == (9, 11)
    # reminded: acknowledge items 1-10 at 15 and item 11 at 27; act items 2 and 3 at 60
    assert (st.breaches, st.breaches_by_clock) == (13, {"acknowledge": 11, "act": 2})
    # every task here is a voluntary referral: each miss is a target, none a legal deadline
    assert (st.legal_deadlines_missed, st.targets_missed) == (0, 13)
    assert all(e.deadline == "target" for p in f.platforms for e in p.sla_events)
    # backup told: acknowledge item 11 at 42, act item 3 at 75; coordinators: item 3 at 90
    assert (st.backup_told, st.backup_told_by_clock) == (2, {"acknowledge": 1, "act": 1})
    assert (st.escalations, st.escalations_by_clock) == (1, {"act": 1})
    assert [(e.task_id, e.clock, e.rung) for e in st.sla_events if e.rung != "breached"] == [
        ("slowtube-000011", "acknowledge", "backup_told"),
        ("slowtube-000003", "act", "backup_told"),
        ("slowtube-000003", "act", "escalated"),
    ]

    assert [(r.actor_id, r.text) for r in f.review_inputs] == [
        (FASTBOOK.id, "Hash matching caught the re-uploads within minutes."),
        (MEMBER_STATE.id, "Removal orders need a contact point that answers at night."),
    ]
    assert [e.kind for e in f.timeline] == [
        DecisionKind.reported,
        DecisionKind.assessed,
        DecisionKind.activated,
        DecisionKind.sighting_reported,
        DecisionKind.false_positive_reported,
        DecisionKind.content_added,
        DecisionKind.content_withdrawn,
        DecisionKind.de_escalated,
        DecisionKind.re_escalated,
        DecisionKind.de_escalated,
        DecisionKind.review_started,
        DecisionKind.review_input,
        DecisionKind.review_input,
        DecisionKind.closed,
    ]

    # the JSON states durations in seconds, exactly as recorded
    ch_json = next(p for p in data["platforms"] if p["platform_id"] == CHOOSY.id)
    assert ch_json["act"]["max"] == t.acted(CHOOSY.id, 2, 90).total_seconds()
    assert ch_json["share_within_hour"] == 10 / 11
    markdown, page = _read(files.markdown_path), _read(files.html_path)
    assert "| choosy | 12 | 11 |" in markdown and "10/11 (90.9%)" in markdown
    assert COLD_STORAGE in markdown and "technical_impossibility" in markdown
    assert "| legal deadlines missed (removal orders' hour, TCO Art. 3(3)) | 0 |" in markdown
    assert "| targets missed (acknowledge, voluntary act-within) | 15 |" in markdown
    assert "None: no removal order's hour was missed." in markdown
    assert page.count("<svg") == 2 and "choosy" in page


def _read(path: str) -> str:
    return Path(path).read_text(encoding="utf-8")


# ---- the figures' rules on hand-built rows -------------------------------------------------

T0 = datetime(2026, 3, 15, 2, 0, tzinfo=UTC)
START = timedelta(minutes=10, microseconds=250)  # the activation, 10 min 250 µs after the report


class Rows:
    """A hand-built, correctly chained ledger of one incident."""

    def __init__(self, incident_id: str = "inc-unit") -> None:
        self.incident_id = incident_id
        self.rows: list[LedgerRow] = []

    def add(
        self,
        at: timedelta,
        kind: DecisionKind,
        actor: Actor,
        reason: str | None = None,
        **inputs: Any,
    ) -> None:
        seq = len(self.rows) + 1
        prev = self.rows[-1].hash if self.rows else GENESIS_HASH
        decision = Decision(
            decision_id=f"{self.incident_id}/unit/{seq}",
            incident_id=self.incident_id,
            actor=actor,
            kind=kind,
            reason=reason,
            inputs=inputs,
            at=T0 + at,
        )
        self.rows.append(
            LedgerRow(
                incident_id=self.incident_id,
                seq=seq,
                decision=decision,
                prev_hash=prev,
                hash=row_hash(self.incident_id, seq, decision, prev),
            )
        )

    def task(
        self, after_start: timedelta, kind: DecisionKind, actor: Actor, no: int, **kw: Any
    ) -> None:
        reason = kw.pop("reason", None)
        tid = kw.pop("task", task_id(actor.id, no))
        self.add(START + after_start, kind, actor, reason, task_id=tid, item_no=no, **kw)


def _items(*numbers: int, source: str = COORDINATOR.id) -> list[dict[str, Any]]:
    return [
        ContentItem(no=n, identifier=url(n), source=source).model_dump(mode="json") for n in numbers
    ]


def reported(rows: Rows) -> None:
    report = a_report(event_started_at=T0 - timedelta(minutes=7))
    rows.add(
        timedelta(0), DecisionKind.reported, COORDINATOR, report=report.model_dump(mode="json")
    )
    rows.add(timedelta(minutes=3), DecisionKind.assessed, COORDINATOR, all_met=True, assessment={})


def hand_built() -> Rows:
    """Two platforms, three items, one sighting; answers on the edges of the rules."""
    r = Rows()
    reported(r)
    platforms = [FASTBOOK.id, SLOWTUBE.id]
    r.add(
        START,
        DecisionKind.activated,
        COORDINATOR,
        "all met",
        platforms=platforms,
        items=_items(1, 2, 3),
    )
    r.task(MIN, DecisionKind.task_acknowledged, FASTBOOK, 1)
    r.task(3 * MIN, DecisionKind.task_declined, FASTBOOK, 3, reason="news")  # acknowledges and acts
    r.task(
        5 * MIN,
        DecisionKind.task_cannot_comply,
        SLOWTUBE,
        1,
        reason="outage",
        cannot_comply="force_majeure",
    )
    due = (T0 + START + 15 * MIN).isoformat()
    r.task(
        15 * MIN,
        DecisionKind.sla_breached,
        SYSTEM,
        3,
        task="slowtube-000003",
        clock="acknowledge",
        due=due,
    )
    r.task(20 * MIN, DecisionKind.task_resumed, SLOWTUBE, 1)
    r.task(
        30 * MIN, DecisionKind.task_withdrawn, COORDINATOR, 2, task="slowtube-000002"
    )  # within its hour
    silent = {"task": "slowtube-000003", "due": due}
    r.task(30 * MIN, DecisionKind.sla_backup_told, SYSTEM, 3, clock="acknowledge", **silent)
    r.task(45 * MIN, DecisionKind.sla_escalated, SYSTEM, 3, clock="acknowledge", **silent)
    found = _items(4, source=FASTBOOK.id)
    r.add(
        START + 40 * MIN,
        DecisionKind.sighting_reported,
        FASTBOOK,
        items=found,
        duplicates=2,
        low_quality=1,
    )
    r.task(45 * MIN, DecisionKind.task_removed, SLOWTUBE, 4)  # 5 min after the sighting
    r.task(60 * MIN, DecisionKind.task_removed, FASTBOOK, 1)  # exactly one hour: within it
    r.task(60 * MIN, DecisionKind.sla_breached, SYSTEM, 3, clock="act", **silent)
    r.task(
        60 * MIN + timedelta(microseconds=1), DecisionKind.task_not_found, FASTBOOK, 2
    )  # 1 µs late
    r.task(120 * MIN, DecisionKind.task_removed, SLOWTUBE, 1)
    r.add(
        START + 180 * MIN,
        DecisionKind.de_escalated,
        COORDINATOR,
        "quiet",
        withdraw_open_tasks=False,
    )
    r.add(START + 240 * MIN, DecisionKind.re_escalated, COORDINATOR, "new wave")
    return r


def test_nearest_rank_percentiles() -> None:
    ten = list(range(10, 0, -1))
    assert [nearest_rank(ten, p) for p in (1, 10, 11, 50, 90, 91, 100)] == [1, 1, 2, 5, 9, 10, 10]
    assert nearest_rank([7], 50) == nearest_rank([7], 90) == 7
    assert nearest_rank([4, 1, 3, 2], 50) == 2  # even count: the lower middle value
    for n in range(1, 40):
        assert nearest_rank(range(1, n + 1), 90) == math.ceil(0.9 * n)
    with pytest.raises(ValueError):
        nearest_rank([], 50)
    with pytest.raises(ValueError):
        nearest_rank([1], 0)
    assert duration_stats([]).median is None
    stats = duration_stats([3 * MIN, MIN, 2 * MIN])
    assert (stats.count, stats.median, stats.p90, stats.max) == (3, 2 * MIN, 3 * MIN, 3 * MIN)


def test_figures_from_hand_built_rows() -> None:
    f = compute(hand_built().rows)
    a = f.activation
    assert a.event_to_report == 7 * MIN
    assert a.report_to_activation == START == a.report_to_decision
    assert a.activation_length == 180 * MIN
    assert [p.length for p in a.periods] == [180 * MIN, None]  # re-escalated, still active
    assert a.time_active is None and a.re_escalations == 1
    assert f.phase == "active" and f.as_of == T0 + START + 240 * MIN

    fb = _platform(f, FASTBOOK.id)
    assert fb.tasks == 3  # item 4 was its own sighting: no task for it
    assert fb.acknowledge_times == [MIN, 3 * MIN, 60 * MIN + timedelta(microseconds=1)]
    assert (fb.acknowledge.median, fb.act.median) == (3 * MIN, 60 * MIN)
    assert fb.act.p90 == fb.act.max == 60 * MIN + timedelta(microseconds=1)
    assert (fb.acted_within_hour, fb.tasks_with_full_hour) == (2, 3)
    assert [(n.task_id, n.reason) for n in fb.declines] == [("fastbook-000003", "news")]
    assert (fb.sightings_reported, fb.sighted_items) == (1, 1)

    st = _platform(f, SLOWTUBE.id)
    assert st.tasks == 4
    assert st.by_state == {"assigned": 1, "removed": 2, "withdrawn": 1}
    assert st.acknowledge_times == [5 * MIN, 5 * MIN]  # cannot-comply acknowledges too
    assert (st.act.median, st.act.p90, st.act.max) == (5 * MIN, 120 * MIN, 120 * MIN)
    # counted: item 1 and 4 (acted), item 3 (silent, its hour over); not item 2 (withdrawn early)
    assert (st.acted_within_hour, st.tasks_with_full_hour) == (1, 3)
    assert st.share_within_hour is not None and float(st.share_within_hour) == 1 / 3
    assert (st.breaches_by_clock, st.backup_told, st.escalations_by_clock) == (
        {"acknowledge": 1, "act": 1},
        1,
        {"acknowledge": 1},
    )
    assert [(n.annex_iii, n.reason) for n in st.cannot_comply] == [("force_majeure", "outage")]
    assert (st.resumed, st.withdrawn) == (1, 1)

    ids = f.identifiers
    assert (ids.items, ids.by_decision) == (4, {"activated": 3, "sighting_reported": 1})
    assert (ids.duplicates, ids.low_quality) == (2, 1)
    assert ids.drops_recorded_by == [DecisionKind.sighting_reported]
    assert [e.kind for e in f.timeline] == [
        DecisionKind.reported,
        DecisionKind.assessed,
        DecisionKind.activated,
        DecisionKind.sighting_reported,
        DecisionKind.de_escalated,
        DecisionKind.re_escalated,
    ]
    assert f.timeline[2].since_report == START
    assert [(c.assigned, c.resolved) for c in st.curve] == [(3, 0), (3, 1), (4, 1), (4, 2), (4, 3)]


def order_and_referral(says_which: bool) -> Rows:
    """Choosy holds a removal order (item 1) and a voluntary referral (item 2) and answers
    neither: the order's acknowledgement is missed at 15 minutes, both hours at 60. With
    `says_which` the ladder rows carry their `deadline`, as recorded today; without, they are
    the rows recorded before that input existed."""
    r = Rows()
    reported(r)
    order = ContentItem(no=1, identifier=url(1), basis=AN_ORDER, source=COORDINATOR.id)
    items = [order.model_dump(mode="json"), *_items(2)]
    r.add(START, DecisionKind.activated, COORDINATOR, "go", platforms=[CHOOSY.id], items=items)
    for after, no, clock, deadline in [
        (15 * MIN, 1, "acknowledge", "target"),
        (15 * MIN, 2, "acknowledge", "target"),
        (60 * MIN, 1, "act", "legal"),
        (60 * MIN, 2, "act", "target"),
    ]:
        due = (T0 + START + after).isoformat()
        said = {"deadline": deadline} if says_which else {}
        tid = task_id(CHOOSY.id, no)
        r.task(after, DecisionKind.sla_breached, SYSTEM, no, task=tid, clock=clock, due=due, **said)
    return r


@pytest.mark.parametrize("says_which", [True, False], ids=["recorded", "derived"])
def test_legal_deadlines_missed_and_targets_missed_are_told_apart(says_which: bool) -> None:
    """A removal order's missed hour is a legal deadline missed (TCO Art. 3(3)); a voluntary
    referral's missed act-within, and every missed acknowledgement, a target missed. Rows from
    before the `deadline` input are read from their clock and the task's basis."""
    f = compute(order_and_referral(says_which).rows)
    ch = _platform(f, CHOOSY.id)
    assert (ch.breaches, ch.legal_deadlines_missed, ch.targets_missed) == (4, 1, 3)
    assert ch.targets_missed_by_clock == {"acknowledge": 2, "act": 1}
    assert [(e.task_id, e.clock, e.deadline) for e in ch.sla_events] == [
        ("choosy-000001", "acknowledge", "target"),
        ("choosy-000002", "acknowledge", "target"),
        ("choosy-000001", "act", "legal"),
        ("choosy-000002", "act", "target"),
    ]

    markdown = render.to_markdown(f)
    assert "| legal deadlines missed (removal orders' hour, TCO Art. 3(3)) | 1 |" in markdown
    assert "| targets missed (acknowledge, voluntary act-within) | 3 |" in markdown
    assert "| choosy | assigned 2 | 1 | 3 (acknowledge 2, act 1) | 0 | 0 |" in markdown
    hour_due = render.moment(T0 + START + 60 * MIN)
    assert f"| choosy | choosy-000001 | {hour_due} | {hour_due} |" in markdown  # legal, listed
    assert "choosy-000002 | " + hour_due not in markdown  # a target is not
    assert json.loads(render.to_json(f))["platforms"][0]["legal_deadlines_missed"] == 1
    assert "legal deadlines and targets" in json.loads(render.to_json(f))["definitions"]


def test_a_missed_deadline_whose_task_is_not_in_the_rows_is_a_target() -> None:
    """Without the item that made the task, nothing shows a removal order: never called legal."""
    r = Rows()
    reported(r)
    r.add(START, DecisionKind.activated, COORDINATOR, "go", platforms=[CHOOSY.id], items=[])
    r.task(60 * MIN, DecisionKind.sla_breached, SYSTEM, 7, task="choosy-000007", clock="act")
    ch = _platform(compute(r.rows), CHOOSY.id)
    assert (ch.legal_deadlines_missed, ch.targets_missed) == (0, 1)


def test_a_task_whose_hour_has_not_run_out_is_not_counted() -> None:
    r = Rows()
    reported(r)
    r.add(
        START,
        DecisionKind.activated,
        COORDINATOR,
        "go",
        platforms=[FASTBOOK.id],
        items=_items(1, 2),
    )
    r.task(59 * MIN, DecisionKind.task_removed, FASTBOOK, 1)
    fb = _platform(compute(r.rows), FASTBOOK.id)
    assert (fb.acted_within_hour, fb.tasks_with_full_hour) == (1, 1)  # item 2: 1 min to go
    r.add(START + 60 * MIN, DecisionKind.content_added, COORDINATOR, items=_items(3))
    fb = _platform(compute(r.rows), FASTBOOK.id)
    assert (fb.acted_within_hour, fb.tasks_with_full_hour) == (1, 2)  # now it ran out


def test_a_tampered_row_shows_in_the_report_and_rows_must_start_with_the_report() -> None:
    rows = hand_built().rows
    edited = rows[3].model_copy(
        update={"decision": rows[3].decision.model_copy(update={"reason": "edited"})}
    )
    f = compute([*rows[:3], edited, *rows[4:]])
    assert not f.ledger.chain_ok and f.ledger.problem is not None and "row 4" in f.ledger.problem
    assert "BROKEN: row 4" in render.to_markdown(f)
    with pytest.raises(ValueError):
        compute(rows[1:])
    with pytest.raises(ValueError):
        compute([])


def test_a_declined_crisis_renders_without_takedown() -> None:
    r = Rows()
    reported(r)
    r.add(timedelta(minutes=25), DecisionKind.not_activated, COORDINATOR, "no virality")
    f = compute(r.rows)
    assert (f.phase, f.platforms, f.tasks) == ("not_activated", [], [])
    assert f.activation.report_to_decision == timedelta(minutes=25)
    assert f.activation.report_to_activation is None
    page = render.to_html(f)
    assert "not activated or has no tasks" in page and "No task was acknowledged" in page


# ---- governance: the activation's life, participation, clocks, exercises ------------------

DAY = timedelta(days=1)


def reported_with_clocks(rows: Rows, exercise: bool = False, **clocks: timedelta) -> None:
    """`reported` as the crisis records it now, with the clocks in force at the start."""
    report = a_report(event_started_at=T0 - timedelta(minutes=7), exercise=exercise)
    rows.add(
        timedelta(0),
        DecisionKind.reported,
        COORDINATOR,
        report=report.model_dump(mode="json"),
        clocks=SlaSettings(**clocks).model_dump(mode="json"),
    )
    rows.add(timedelta(minutes=3), DecisionKind.assessed, COORDINATOR, all_met=True, assessment={})


def test_an_activation_lapses_unrenewed_and_the_report_says_when() -> None:
    """Activated on an override for 48 hours; renewed at hour 40 until hour 88; reminded at
    hour 82; nobody renews again, and eucp lapses it at hour 88. Re-escalated later, then
    de-escalated by hand: the one period lapsed, the other did not."""
    r = Rows()
    reported_with_clocks(r)
    expires, renewed_until = T0 + START + 48 * HOUR, T0 + START + 88 * HOUR
    r.add(
        START,
        DecisionKind.activated,
        COORDINATOR,
        "livestreamed, spreading",
        platforms=[FASTBOOK.id],
        items=_items(1),
        override="virality not yet shown, but the stream is live",
        expires=expires.isoformat(),
    )
    r.add(
        START + 40 * HOUR,
        DecisionKind.activation_renewed,
        COORDINATOR,
        "still re-uploaded",
        expires=renewed_until.isoformat(),
    )
    r.add(
        START + 82 * HOUR,
        DecisionKind.activation_expiring,
        SYSTEM,
        "the activation lapses unless renewed",
        expires=renewed_until.isoformat(),
    )
    r.add(
        START + 88 * HOUR,
        DecisionKind.de_escalated,
        SYSTEM,
        "the activation lapsed: 48 h without renewal",
        lapsed=True,
        withdraw_open_tasks=False,
    )
    r.add(
        START + 90 * HOUR,
        DecisionKind.re_escalated,
        COORDINATOR,
        "a new wave",
        expires=(T0 + START + 138 * HOUR).isoformat(),
    )
    r.add(START + 91 * HOUR, DecisionKind.de_escalated, COORDINATOR, "quiet again")
    f = compute(r.rows)

    a = f.activation
    lapsed, by_hand = a.periods
    assert (lapsed.override, lapsed.expires, lapsed.lapses_at) == (
        "virality not yet shown, but the stream is live", expires, renewed_until
    )  # fmt: skip
    assert [(x.at, x.by, x.reason, x.expires) for x in lapsed.renewals] == [
        (T0 + START + 40 * HOUR, COORDINATOR.id, "still re-uploaded", renewed_until)
    ]
    assert [(x.at, x.expires) for x in lapsed.reminders] == [
        (T0 + START + 82 * HOUR, renewed_until)
    ]
    assert (lapsed.end, lapsed.length, lapsed.lapsed, lapsed.ended_by) == (
        renewed_until, 88 * HOUR, True, SYSTEM.id
    )  # fmt: skip
    assert (by_hand.lapsed, by_hand.ended_by, by_hand.end_reason, by_hand.length) == (
        False, COORDINATOR.id, "quiet again", HOUR
    )  # fmt: skip
    assert (a.override, a.renewals, a.lapses, a.de_escalations) == (lapsed.override, 1, 1, 2)
    assert a.time_active == 89 * HOUR

    markdown = render.to_markdown(f)
    at = render.moment
    assert "| renewals / lapses | 1 / 1 |" in markdown
    assert "| time active (all active periods) | 3d 17:00:00 |" in markdown
    assert (
        f"| {at(T0 + START)} | activated | eu-iru | livestreamed, spreading; override (not all"
        f" five criteria met): virality not yet shown, but the stream is live; lapses at"
        f" {at(expires)} unless renewed |"
    ) in markdown
    assert (
        f"| {at(T0 + START + 40 * HOUR)} | renewed | eu-iru | still re-uploaded; lapses at"
        f" {at(renewed_until)} unless renewed again |"
    ) in markdown
    assert (
        f"| {at(T0 + START + 82 * HOUR)} | renewal reminder | eucp | lapses at"
        f" {at(renewed_until)} unless renewed |"
    ) in markdown
    assert (
        f"| {at(renewed_until)} | lapsed unrenewed | eucp | expired at {at(renewed_until)},"
        " 3d 16:00:00 after it began |"
    ) in markdown
    assert f"| {at(T0 + START + 91 * HOUR)} | de-escalated | eu-iru | quiet again; 1:00:00" in (
        markdown
    )
    assert f"| {at(renewed_until)} | lapsed unrenewed | 3d 16:00:00 |" in markdown  # periods
    assert "| de-escalated by eu-iru | 1:00:00 |" in markdown
    summaries = {e.kind: e.summary for e in f.timeline}
    assert summaries[DecisionKind.activation_renewed] == (
        f"renewed: lapses at {moment_in_words(renewed_until)} unless renewed again"
    )
    lapse = next(e for e in f.timeline if e.actor_id == SYSTEM.id and e.kind == "de_escalated")
    assert lapse.summary == "the activation lapsed unrenewed; tasks keep running"
    assert ReviewFigures.model_validate(json.loads(render.to_json(f))) == f


def test_a_platform_brought_in_mid_crisis_appears_in_the_participation_section() -> None:
    """Fastbook from the activation (items 1-3; item 3 withdrawn); slowtube brought in at 30
    minutes gets the open items 1 and 2 from then, then fastbook's sighting (item 4). Suspended
    at 50 minutes (its open tasks withdrawn), it gets no task for item 5; back at 60 it is given
    every open item it has no live task for, from then."""
    r = Rows()
    reported_with_clocks(r)
    r.add(
        START,
        DecisionKind.activated,
        COORDINATOR,
        "go",
        platforms=[FASTBOOK.id],
        items=_items(1, 2, 3),
    )
    r.add(START + 10 * MIN, DecisionKind.content_withdrawn, COORDINATOR, "news", items=[3])
    r.add(
        START + 30 * MIN,
        DecisionKind.platform_joined,
        COORDINATOR,
        platform=SLOWTUBE.id,
        back=False,
    )
    r.task(35 * MIN, DecisionKind.task_acknowledged, SLOWTUBE, 1)
    r.add(
        START + 40 * MIN,
        DecisionKind.sighting_reported,
        FASTBOOK,
        items=_items(4, source=FASTBOOK.id),
    )
    ignored = "ignored every task for half an hour"
    r.add(
        START + 50 * MIN,
        DecisionKind.platform_suspended,
        COORDINATOR,
        ignored,
        platform=SLOWTUBE.id,
    )
    for no in (1, 2, 4):
        tid = task_id(SLOWTUBE.id, no)
        r.task(50 * MIN, DecisionKind.task_withdrawn, COORDINATOR, no, task=tid, reason=ignored)
    r.add(START + 55 * MIN, DecisionKind.content_added, COORDINATOR, items=_items(5))
    r.add(
        START + 60 * MIN, DecisionKind.platform_joined, COORDINATOR, platform=SLOWTUBE.id, back=True
    )
    r.task(65 * MIN, DecisionKind.task_removed, SLOWTUBE, 5)
    f = compute(r.rows)

    assert f.named_at_activation == [FASTBOOK.id]
    assert [(c.platform_id, c.change, c.at, c.reason) for c in f.participation] == [
        (SLOWTUBE.id, "joined", T0 + START + 30 * MIN, None),
        (SLOWTUBE.id, "suspended", T0 + START + 50 * MIN, ignored),
        (SLOWTUBE.id, "back", T0 + START + 60 * MIN, None),
    ]
    st = _platform(f, SLOWTUBE.id)
    started = {
        t.item_no: t.started_at - T0 - START for t in f.tasks if t.platform_id == SLOWTUBE.id
    }
    assert started == {1: 60 * MIN, 2: 60 * MIN, 4: 60 * MIN, 5: 60 * MIN}  # none for item 3
    assert (st.tasks, st.by_state) == (4, {"assigned": 3, "removed": 1})
    assert st.acknowledge_times == [5 * MIN]  # item 5, removed 5 minutes after it came back
    assert _platform(f, FASTBOOK.id).tasks == 4  # items 1-3 and 5; item 4 was its own find

    markdown = render.to_markdown(f)
    assert "Platforms named at the activation: fastbook." in markdown
    assert "| platforms brought in / suspended mid-crisis | 1 / 1 |" in markdown
    at = render.moment
    for after, since, change, reason in [
        (30 * MIN, "0:40:00.00025", "brought in mid-crisis", " "),
        (50 * MIN, "1:00:00.00025", "suspended", ignored),
        (60 * MIN, "1:10:00.00025", "back from its suspension", " "),
    ]:
        row = f"| {at(T0 + START + after)} | {since} | slowtube | {change} | eu-iru | {reason} |"
        assert row in markdown
    assert [e.summary for e in f.timeline if e.kind.startswith("platform_")] == [
        "slowtube brought in mid-crisis",
        "slowtube suspended",
        "slowtube back from its suspension",
    ]
    nobody = Rows()
    reported_with_clocks(nobody)
    nobody.add(START, DecisionKind.activated, COORDINATOR, "go", platforms=[FASTBOOK.id], items=[])
    assert "No platform was brought in or suspended after the activation." in (
        render.to_markdown(compute(nobody.rows))
    )


def exercise(*, exercise: bool = True, **clocks: timedelta) -> Rows:
    """Fastbook acknowledges its four tasks in 5 minutes and removes them in 30; slowtube
    acknowledges item 3 in 10 minutes, items 1 and 2 in 20, never item 4, and acts on items
    1, 3 and 2 at 50, 55 and 70 minutes. Targets: acknowledge 15 minutes, act 60."""
    r = Rows()
    reported_with_clocks(r, exercise=exercise, **clocks)
    platforms = [FASTBOOK.id, SLOWTUBE.id]
    r.add(
        START,
        DecisionKind.activated,
        COORDINATOR,
        "drill",
        platforms=platforms,
        items=_items(1, 2, 3, 4),
    )
    for no in (1, 2, 3, 4):
        r.task(5 * MIN, DecisionKind.task_acknowledged, FASTBOOK, no)
    r.task(10 * MIN, DecisionKind.task_acknowledged, SLOWTUBE, 3)
    r.task(20 * MIN, DecisionKind.task_acknowledged, SLOWTUBE, 1)
    r.task(20 * MIN, DecisionKind.task_acknowledged, SLOWTUBE, 2)
    for no in (1, 2, 3, 4):
        r.task(30 * MIN, DecisionKind.task_removed, FASTBOOK, no)
    r.task(50 * MIN, DecisionKind.task_removed, SLOWTUBE, 1)
    r.task(55 * MIN, DecisionKind.task_not_found, SLOWTUBE, 3)
    r.task(70 * MIN, DecisionKind.task_removed, SLOWTUBE, 2)
    r.add(START + 2 * HOUR, DecisionKind.de_escalated, COORDINATOR, "drill over")
    return r


def test_an_exercises_after_action_report_scores_each_platform_against_its_targets() -> None:
    f = compute(exercise().rows)
    assert f.exercise
    fb, st = f.after_action
    assert (fb.platform_id, fb.meets_targets) == (FASTBOOK.id, True)
    assert (fb.acknowledge.within, fb.acknowledge.counted, fb.acknowledge.median) == (4, 4, 5 * MIN)
    assert (fb.act.within, fb.act.counted, fb.act.median) == (4, 4, 30 * MIN)
    # slowtube: 1 of 4 acknowledged within 15 minutes (item 4, never answered, counts late);
    # 2 of 4 acted within the hour: half, so the act target alone is met
    assert (st.acknowledge.target, st.acknowledge.within, st.acknowledge.counted) == (
        15 * MIN, 1, 4
    )  # fmt: skip
    assert (st.acknowledge.median, st.acknowledge.met) == (20 * MIN, False)
    assert (st.act.target, st.act.within, st.act.counted, st.act.median, st.act.met) == (
        HOUR, 2, 4, 55 * MIN, True
    )  # fmt: skip
    assert st.meets_targets is False

    markdown = render.to_markdown(f)
    assert markdown.startswith("# Exercise \N{EM DASH} post-incident review: Livestreamed attack")
    assert "> **EXERCISE**: This incident was an exercise" in markdown
    assert "## After-action: each platform against its targets (exercise)" in markdown
    assert (
        "| fastbook | 0:15:00 | 4/4 (100%) | 0:05:00 | 1:00:00 | 4/4 (100%) | 0:30:00 |"
        " meets its targets |"
    ) in markdown
    assert (
        "| slowtube | 0:15:00 | 1/4 (25%) | 0:20:00 | 1:00:00 | 2/4 (50%) | 0:55:00 | falls short |"
    ) in markdown
    data = json.loads(render.to_json(f))
    assert data["exercise"] is True
    assert [(s["meets_targets"], s["acknowledge"]["share"]) for s in data["after_action"]] == [
        (True, 1.0),
        (False, 0.25),
    ]
    assert ReviewFigures.model_validate(data) == f
    page = render.to_html(f)
    assert '<p class="banner"><strong>EXERCISE</strong>' in page
    assert "<title>Exercise \N{EM DASH} post-incident review" in page

    # a real incident: the same figures, never called an exercise's
    real = render.to_markdown(compute(exercise(exercise=False).rows))
    assert real.startswith("# Post-incident review: ") and "EXERCISE" not in real
    assert "## Response times against the targets" in real and "After-action" not in real
    assert "| slowtube | 0:15:00 | 1/4 (25%) |" in real
    # stricter clocks: item 3's 10 minutes to acknowledge now miss too, and no act is in time
    strict = compute(exercise(acknowledge_within=5 * MIN, act_within=45 * MIN).rows)
    st = strict.after_action[1]
    assert (st.acknowledge.within, st.act.within, st.act.median) == (0, 0, 55 * MIN)


def test_a_task_is_judged_by_the_clocks_in_force_when_answered_and_none_without_them() -> None:
    """The acknowledge target goes from 15 to 5 minutes at minute 8: item 1, acknowledged at 7,
    met the 15 in force then; item 2, acknowledged at 10, missed the 5 in force then."""
    r = Rows()
    reported_with_clocks(r)
    r.add(
        START,
        DecisionKind.activated,
        COORDINATOR,
        "go",
        platforms=[FASTBOOK.id],
        items=_items(1, 2),
    )
    r.add(
        START + 8 * MIN,
        DecisionKind.clocks_set,
        COORDINATOR,
        "a drill of the night shift",
        changes={"acknowledge_within": "5 min"},
        clocks=SlaSettings(acknowledge_within=5 * MIN).model_dump(mode="json"),
    )
    r.task(7 * MIN, DecisionKind.task_acknowledged, FASTBOOK, 1)
    r.task(10 * MIN, DecisionKind.task_acknowledged, FASTBOOK, 2)
    f = compute(r.rows)
    assert [(c.kind, c.changed, c.clocks["acknowledge_within"]) for c in f.clocks] == [
        (DecisionKind.reported, [], 15 * MIN),
        (DecisionKind.clocks_set, ["acknowledge_within"], 5 * MIN),
    ]
    [fb] = f.after_action
    assert (fb.acknowledge.target, fb.acknowledge.within, fb.acknowledge.counted) == (
        5 * MIN, 1, 2
    )  # fmt: skip
    markdown = render.to_markdown(f)
    changed = render.moment(T0 + START + 8 * MIN)
    assert f"| clock | at the report | from {changed} |" in markdown
    assert "| acknowledge_within | 0:15:00 | 0:05:00 (changed) |" in markdown
    assert f"| {changed} | eu-iru | acknowledge_within | a drill of the night shift |" in markdown
    assert "each task is judged by the target in force when it was answered" in markdown
    assert "clocks set: acknowledge_within 5 min" in [e.summary for e in f.timeline]

    unrecorded = Rows()
    reported(unrecorded)  # as incidents reported before the clocks were recorded
    unrecorded.add(
        START, DecisionKind.activated, COORDINATOR, "go", platforms=[FASTBOOK.id], items=_items(1)
    )
    unrecorded.task(20 * MIN, DecisionKind.task_acknowledged, FASTBOOK, 1)
    f = compute(unrecorded.rows)
    [fb] = f.after_action
    assert (fb.acknowledge.target, fb.acknowledge.counted, fb.meets_targets) == (None, 0, None)
    markdown = render.to_markdown(f)
    assert "Not recorded: the incident was reported before its clocks were recorded" in markdown
    assert "| fastbook | - | - | - | - | - | - | not scored |" in markdown


def test_threats_updates_and_linked_protocols_are_on_the_one_timeline() -> None:
    """A linked protocol shows where it was linked and at its own activation, here before the
    report itself."""
    r = Rows()
    reported_with_clocks(r)
    r.add(START, DecisionKind.activated, COORDINATOR, "go", platforms=[FASTBOOK.id], items=[])
    cip = T0 - 2 * MIN
    link = {"protocol": "gifct_cip", "reference": "CIP-2026-7", "activated_at": cip.isoformat()}
    r.add(START + MIN, DecisionKind.protocol_linked, COORDINATOR, link=link | {"name": None})
    r.add(
        START + 2 * MIN,
        DecisionKind.imminent_threat_flagged,
        FASTBOOK,
        member_states=["FR"],
        text="the attacker announces a second target",
    )
    r.add(START + 3 * MIN, DecisionKind.situation_updated, COORDINATOR, text="CIP activated too")
    f = compute(r.rows)
    assert [(e.seq, e.kind, e.event, e.at) for e in f.timeline[:2]] == [
        (4, DecisionKind.protocol_linked, "GIFCT Content Incident Protocol activated", cip),
        (1, DecisionKind.reported, None, T0),
    ]
    assert [e.summary for e in f.timeline[4:]] == [
        "GIFCT Content Incident Protocol linked: CIP-2026-7, activated " + moment_in_words(cip),
        "imminent threat to life, for FR: the attacker announces a second target",
        "situational update: CIP activated too",
    ]
    [linked] = f.linked_protocols
    assert (linked.protocol, linked.reference, linked.activated_at) == (
        "gifct_cip",
        "CIP-2026-7",
        cip,
    )
    markdown = render.to_markdown(f)
    assert (
        f"| 4 | {render.moment(cip)} | -0:02:00 | GIFCT Content Incident Protocol activated |"
    ) in markdown


# ---- removal orders: receipt to removal, scrutiny, clarification, reinstatement -------------

HOUR = timedelta(hours=1)
FR_ORDER = ORDER_DETAILS.issued_by("FR", MEMBER_STATE.id)  # to choosy, established in IE
REF = FR_ORDER.reference
REINSTATE = "choosy-000002-reinstate"


def issued(
    r: Rows, at: timedelta, *numbers: int, order: RemovalOrder = FR_ORDER, by: Actor = MEMBER_STATE
) -> None:
    """`removal_order_issued` as the crisis records it: the order, its items (addressed to its
    platform alone) and, for a cross-border order, the copy to the host State's authority."""
    items = [
        ContentItem(
            no=n, identifier=url(n), basis=order, source=by.id, addressees=[CHOOSY.id]
        ).model_dump(mode="json")
        for n in numbers
    ]
    copy = (
        {"copy_to": [HOST_AUTHORITY.id], "scrutiny_until": (T0 + at + 72 * HOUR).isoformat()}
        if order.issuing_member_state != order.host_member_state
        else {}
    )
    r.add(
        at,
        DecisionKind.removal_order_issued,
        by,
        order=order.model_dump(mode="json"),
        items=items,
        **copy,
    )


def activated_with_an_order(r: Rows, after: timedelta, *numbers: int) -> None:
    """Reported, activated at START on item 1 for choosy and fastbook, and the FR order for
    `numbers` issued `after` the activation."""
    reported(r)
    platforms = [CHOOSY.id, FASTBOOK.id]
    r.add(START, DecisionKind.activated, COORDINATOR, "go", platforms=platforms, items=_items(1))
    issued(r, START + after, *numbers)


def test_an_authority_orders_the_platform_removes_after_a_pause_the_report_subtracts_it() -> None:
    """Item 3 comes down 12 minutes after receipt. Item 2 is paused 10 minutes in (Annex III:
    insufficient information) until the issuing authority's clarification 25 minutes later,
    and comes down 10 minutes after it: 45 minutes from receipt, 20 of them in hand."""
    r = Rows()
    activated_with_an_order(r, 5 * MIN, 2, 3)
    r.task(10 * MIN, DecisionKind.task_acknowledged, CHOOSY, 3)
    r.task(
        15 * MIN,
        DecisionKind.task_cannot_comply,
        CHOOSY,
        2,
        reason="the URL names no post",
        cannot_comply="insufficient_information",
    )
    r.task(17 * MIN, DecisionKind.task_removed, CHOOSY, 3)
    r.add(
        START + 40 * MIN, DecisionKind.order_clarified, MEMBER_STATE, "the second post", order=REF
    )
    # the clarification arrived: the issuing authority resumes the task
    r.task(40 * MIN, DecisionKind.task_resumed, MEMBER_STATE, 2, task="choosy-000002")
    r.task(50 * MIN, DecisionKind.task_removed, CHOOSY, 2)
    f = compute(r.rows)

    [o] = f.orders
    assert (o.reference, o.issuer, o.issuing_authority, o.issuing_member_state) == (
        REF, MEMBER_STATE.id, "OCLCTIC", "FR"
    )  # fmt: skip
    assert (o.platform, o.host_member_state, o.cross_border, o.items) == (
        CHOOSY.id, "IE", True, [2, 3]
    )  # fmt: skip
    assert o.received_at == T0 + START + 5 * MIN
    assert (o.copy_to, o.scrutiny_until) == ([HOST_AUTHORITY.id], o.received_at + 72 * HOUR)
    assert [(t.task_id, t.pauses, t.paused, t.time_to_removal) for t in o.tasks] == [
        ("choosy-000002", 1, 25 * MIN, 20 * MIN),
        ("choosy-000003", 0, timedelta(0), 12 * MIN),
    ]
    assert (o.removal.count, o.removal.median, o.removal.max) == (2, 12 * MIN, 20 * MIN)
    assert [(c.by, c.text) for c in o.clarifications] == [(MEMBER_STATE.id, "the second post")]
    assert (o.stage, o.request, o.decision, o.reinstatements) == ("open", None, None, [])
    # the platform's own figures time the task from its start and keep the pause in
    ch = _platform(f, CHOOSY.id)
    assert (ch.tasks, ch.act.max, ch.resumed) == (3, 45 * MIN, 1)
    assert _platform(f, FASTBOOK.id).tasks == 1  # the order binds its addressee alone
    assert [e.summary for e in f.timeline if e.kind is DecisionKind.order_clarified] == [
        f"order {REF} clarified by its issuer"
    ]

    markdown = render.to_markdown(f)
    received = render.moment(o.received_at)
    assert (
        f"| {REF} | FR, OCLCTIC (fr-pharos) | choosy | IE (cross-border) | 2, 3 | {received} |"
        " 2/2 | 0:12:00 | 0:20:00 | open | 1 | - |"
    ) in markdown
    assert f"| {REF} | choosy-000002 | removed | " in markdown
    assert "| 1 | 0:25:00 | 0:20:00 |" in markdown
    assert "| removal orders (cross-border, found to infringe) | 1 (1, 0) |" in markdown
    assert f"| {REF} | {received} | copy to the host State | eucp | ie-cnam; may scrutinise" in (
        markdown
    )
    assert "| clarified | fr-pharos | the second post |" in markdown
    data = json.loads(render.to_json(f))
    assert data["orders"][0]["removal"]["max"] == 1200.0
    assert "time to removal" in data["definitions"]
    assert ReviewFigures.model_validate(data) == f


def test_the_host_state_finds_an_order_infringes_and_the_removed_content_is_reinstated() -> None:
    """Choosy removes item 2 in 10 minutes, asks the host State to scrutinise the order an
    hour in; the host State finds it infringes; the reinstatement task is done 20 minutes
    after it is assigned. A reinstatement is no takedown: counted apart."""
    r = Rows()
    activated_with_an_order(r, timedelta(0), 2)
    r.task(10 * MIN, DecisionKind.task_removed, CHOOSY, 2)
    decide_by = T0 + START + 73 * HOUR
    r.add(
        START + HOUR,
        DecisionKind.scrutiny_requested,
        CHOOSY,
        "satire, not terrorist content",
        order=REF,
        decide_by=decide_by.isoformat(),
    )
    r.add(
        START + 26 * HOUR,
        DecisionKind.scrutiny_decided,
        HOST_AUTHORITY,
        "protected satire",
        order=REF,
        outcome="infringes",
        requested=True,
    )
    lost = f"order {REF} lost its legal effect: protected satire"
    after = 26 * HOUR + MIN
    r.task(
        after,
        DecisionKind.reinstatement_assigned,
        HOST_AUTHORITY,
        2,
        reason=lost,
        task=REINSTATE,
        reinstates="choosy-000002",
    )
    r.task(after + 5 * MIN, DecisionKind.task_acknowledged, CHOOSY, 2, task=REINSTATE)
    r.task(after + 20 * MIN, DecisionKind.task_reinstated, CHOOSY, 2, task=REINSTATE)
    f = compute(r.rows)

    [o] = f.orders
    assert o.stage == "infringes"
    assert o.request is not None and o.decision is not None
    assert (o.request.at, o.request.by, o.request.reason, o.request.decide_by) == (
        T0 + START + HOUR, CHOOSY.id, "satire, not terrorist content", decide_by
    )  # fmt: skip
    assert (o.decision.at, o.decision.by, o.decision.outcome) == (
        T0 + START + 26 * HOUR, HOST_AUTHORITY.id, "infringes"
    )  # fmt: skip
    assert (o.decision.reasons, o.decision.requested) == ("protected satire", True)
    assert [t.time_to_removal for t in o.tasks] == [10 * MIN]  # removed, reinstated after
    [back] = o.reinstatements
    assert (back.task_id, back.reinstates, back.item_no, back.state) == (
        REINSTATE, "choosy-000002", 2, "reinstated"
    )  # fmt: skip
    assert (back.assigned_at, back.time_to_reinstate) == (T0 + START + after, 20 * MIN)
    assert o.reinstated == 1

    ch = _platform(f, CHOOSY.id)
    assert (ch.tasks, ch.by_state, ch.act.count) == (2, {"assigned": 1, "removed": 1}, 1)
    assert (ch.reinstatements, ch.reinstated) == (1, 1)
    assert ch.curve[-1].resolved == 1  # the reinstatement is not a takedown resolved
    assert REINSTATE not in [t.task_id for t in f.tasks]
    timeline = [(e.kind, e.summary) for e in f.timeline if e.kind.startswith("scrutiny")]
    assert timeline == [
        (
            DecisionKind.scrutiny_requested,
            f"scrutiny of order {REF} requested, decision due {decide_by.isoformat()}",
        ),
        (DecisionKind.scrutiny_decided, f"order {REF} scrutinised on request: infringes"),
    ]
    assert not {DecisionKind.reinstatement_assigned, DecisionKind.task_reinstated} & {
        e.kind for e in f.timeline
    }

    markdown = render.to_markdown(f)
    assert "| 1/1 | 0:10:00 | 0:10:00 | infringes | 0 | 1/1 |" in markdown
    assert "| removal orders (cross-border, found to infringe) | 1 (1, 1) |" in markdown
    assert "| scrutiny requested | choosy | satire, not terrorist content (decision due" in markdown
    assert "| scrutinised on request: infringes | ie-cnam | protected satire |" in markdown
    assert f"| {REF} | {REINSTATE} | choosy-000002 | reinstated |" in markdown
    assert markdown.count("| 0:20:00 |") == 1
    assert f"<td>{REINSTATE}</td>" in render.to_html(f)
    assert ReviewFigures.model_validate(json.loads(render.to_json(f))) == f


def test_a_domestic_order_has_no_scrutiny_one_left_alone_stands_a_late_one_is_overdue() -> None:
    r = Rows()
    activated_with_an_order(r, timedelta(0), 2)  # FR-2026-0001: nobody scrutinises it
    domestic = ORDER_DETAILS.model_copy(update={"reference": "IE-7"})
    issued(r, START, 3, order=domestic.issued_by("IE", HOST_AUTHORITY.id), by=HOST_AUTHORITY)
    asked = ORDER_DETAILS.model_copy(update={"reference": "FR-8"}).issued_by("FR", MEMBER_STATE.id)
    issued(r, START, 4, order=asked)
    r.task(5 * MIN, DecisionKind.task_cannot_comply, CHOOSY, 2, cannot_comply="force_majeure")
    r.task(2 * HOUR, DecisionKind.pause_alerted, SYSTEM, 2, task="choosy-000002")  # still paused
    r.add(
        START + HOUR,
        DecisionKind.scrutiny_requested,
        CHOOSY,
        "no terror",
        order="FR-8",
        decide_by=(T0 + START + 73 * HOUR).isoformat(),
    )
    for ref in (REF, "FR-8"):
        r.add(START + 72 * HOUR, DecisionKind.scrutiny_window_closed, SYSTEM, order=ref)
    r.add(START + 73 * HOUR, DecisionKind.scrutiny_overdue, SYSTEM, order="FR-8", due="x")
    f = compute(r.rows)

    stood, domestic_order, overdue = f.orders
    assert [(o.reference, o.stage, o.cross_border) for o in f.orders] == [
        (REF, "stands", True),
        ("IE-7", "domestic", False),
        ("FR-8", "overdue", True),
    ]
    assert (domestic_order.copy_to, domestic_order.scrutiny_until) == ([], None)
    assert stood.window_closed_at == overdue.window_closed_at == T0 + START + 72 * HOUR
    assert overdue.overdue_at == T0 + START + 73 * HOUR
    # a pause under way: counted, alerted once, nothing subtracted yet, no time to removal
    [paused] = stood.tasks
    assert (paused.state, paused.pauses, paused.paused, paused.time_to_removal) == (
        "cannot_comply", 1, timedelta(0), None
    )  # fmt: skip
    assert (stood.pause_alerts, stood.removal.count) == (1, 0)
    assert _platform(f, CHOOSY.id).pause_alerts == 1
    assert DecisionKind.pause_alerted not in {e.kind for e in f.timeline}

    markdown = render.to_markdown(f)
    assert "| IE-7 | IE, OCLCTIC (ie-cnam) | choosy | IE | 3 |" in markdown
    assert "| 0/1 | - | - | stands | 0 | - |" in markdown
    events = [line for line in markdown.splitlines() if line.startswith("| FR-8 | 2026-")]
    assert [line.split(" | ")[2] for line in events] == [
        "copy to the host State",
        "scrutiny requested",
        "scrutiny window closed",
        "scrutiny overdue",
    ]
    assert "None: no removed content had to be put back." in markdown


def test_task_decisions_whose_rows_are_partly_missing_do_not_break_the_counts() -> None:
    """A reinstatement done whose assignment is not in the rows, a pause alert on a task no
    item made, a scrutiny decision on an order not issued in them: each counted where it can
    be, none a crash, and no task credited to a platform named after a task id."""
    r = Rows()
    reported(r)
    r.add(START, DecisionKind.activated, COORDINATOR, "go", platforms=[CHOOSY.id], items=[])
    r.task(MIN, DecisionKind.task_reinstated, CHOOSY, 2, task=REINSTATE)
    r.task(2 * MIN, DecisionKind.pause_alerted, SYSTEM, 9, task="choosy-000009")
    r.add(
        START + 3 * MIN,
        DecisionKind.scrutiny_decided,
        HOST_AUTHORITY,
        "fine",
        order="NONE",
        outcome="upheld",
        requested=False,
    )
    f = compute(r.rows)
    [ch] = f.platforms
    assert (ch.platform_id, ch.tasks, ch.reinstatements, ch.reinstated) == (CHOOSY.id, 1, 1, 1)
    assert (ch.pause_alerts, ch.by_state) == (1, {"assigned": 1})
    assert f.orders == []
    assert f.timeline[-1].summary == "order NONE scrutinised: upheld"
    assert "No removal order was issued." in render.to_markdown(f)


# ---- the rendered files --------------------------------------------------------------------


def test_markdown_json_and_html_carry_the_figures_and_definitions() -> None:
    f = compute(hand_built().rows)
    markdown = render.to_markdown(f)
    assert "| fastbook | 3 | 3 | 0:03:00 | 1:00:00.000001 | 1:00:00.000001 |" in markdown
    assert "1/3 (33.3%)" in markdown and "nearest rank" in markdown
    assert "| report to activation | 0:10:00.00025 |" in markdown
    data = json.loads(render.to_json(f))
    assert data["activation"]["report_to_activation"] == 600.00025
    assert data["units"] == {"durations": "seconds", "times": "ISO 8601"}
    assert "percentiles" in data["definitions"]
    assert ReviewFigures.model_validate(data) == f


def test_the_html_page_is_self_contained() -> None:
    r = hand_built()
    r.add(
        START + 250 * MIN,
        DecisionKind.review_input,
        FASTBOOK,
        text="<script>alert(1)</script> & more",
    )
    page = render.to_html(compute(r.rows))
    assert page.startswith("<!DOCTYPE html>") and page.count("</html>") == 1
    assert page.count("<svg") == 2 and page.count("</svg>") == 2
    links = re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]*)""", page, re.IGNORECASE)
    assert links and all(link.startswith("#") for link in links)  # only in-page references
    assert not re.search(r"(?:src|href)\s*=\s*[\"']?\s*(?:https?:)?//", page, re.IGNORECASE)
    assert "<link" not in page and "<script" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in page
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))  # the two charts' ids never clash
    assert render.to_html(compute(r.rows)) == page  # the same ledger draws the same page


def test_rendering_modules_do_not_import_matplotlib_until_a_chart_is_drawn() -> None:
    code = (
        "import sys, activities.report, eucp.review.figures, eucp.review.render;"
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


def test_the_activity_writes_the_three_files(tmp_path: Path) -> None:
    rows = hand_built().rows
    with open_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite3'}") as ledger:
        ledger.append([row.decision for row in rows])
        activities = ReportActivities(ledger, reports_dir=tmp_path / "reports")
        files = ActivityEnvironment().run(
            activities.write_report, WriteReport(incident_id="inc-unit")
        )
        assert isinstance(files, ReportFiles)
        folder = tmp_path / "reports" / "inc-unit"
        assert sorted(p.name for p in folder.iterdir()) == [
            "report.html",
            "report.json",
            "report.md",
        ]
        assert files.markdown_path == str(folder / "report.md")
        assert (files.rows, files.head_hash, files.chain_ok) == (len(rows), rows[-1].hash, True)
        data = json.loads(Path(files.json_path).read_text())
        assert ReviewFigures.model_validate(data) == compute(rows)
        assert "<svg" in Path(files.html_path).read_text()
        assert Path(files.markdown_path).read_text().startswith("# Post-incident review")

        with pytest.raises(ApplicationError) as raised:
            ActivityEnvironment().run(activities.write_report, WriteReport(incident_id="nope"))
        assert raised.value.non_retryable


def test_a_report_from_fewer_rows_never_replaces_a_newer_one(tmp_path: Path) -> None:
    """The report started at the review may finish after the one started at the close: the
    one computed from more of the ledger stays."""
    rows = hand_built().rows
    write = WriteReport(incident_id="inc-unit")
    reports = tmp_path / "reports"
    with (
        open_ledger(f"sqlite:///{tmp_path / 'at-close.sqlite3'}") as at_close,
        open_ledger(f"sqlite:///{tmp_path / 'at-review.sqlite3'}") as at_review,
    ):
        at_close.append([row.decision for row in rows])
        at_review.append([row.decision for row in rows[:-1]])
        newer = ActivityEnvironment().run(ReportActivities(at_close, reports).write_report, write)
        kept = Path(newer.markdown_path).read_text()

        ActivityEnvironment().run(ReportActivities(at_review, reports).write_report, write)

    assert Path(newer.markdown_path).read_text() == kept
    assert json.loads(Path(newer.json_path).read_text())["ledger"]["rows"] == len(rows)

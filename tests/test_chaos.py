"""The fault-injection suite (`make chaos`): one scenario end to end through the suite's own entry
point, and its bookkeeping on hand-made ledgers, so a tally that misses a lost or doubled
decision fails here."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from chaos.__main__ import main
from chaos.results import Result, table
from chaos.scenarios import server_restart
from chaos.tally import Accepted, tally, task_key, undelivered
from eucp.protocol.decisions import Decision, DecisionKind, LedgerRow
from eucp.protocol.participants import SYSTEM, Actor, ParticipantKind
from eucp.protocol.state import Answer, ReportAnswer
from eucp.protocol.tasks import Outcome, TaskReport

INCIDENT = "inc-1"
IRU = Actor(id="eu-iru", kind=ParticipantKind.coordinator)
FASTBOOK = Actor(id="fastbook", kind=ParticipantKind.platform)


@pytest.mark.timeout(120)
def test_the_dev_server_killed_mid_takedown_loses_and_doubles_nothing(tmp_path: Path) -> None:
    assert main(["temporal-restart", "--root", str(tmp_path)]) == 0

    [scenario] = json.loads((tmp_path / "results.json").read_text())["scenarios"]
    assert scenario["ok"], scenario["why"]
    # every task acknowledged and removed, each a decision the platforms were told was accepted
    assert scenario["tally"]["accepted"] > 2 * len(server_restart.PLATFORMS) * server_restart.ITEMS


def row(
    seq: int, decision_id: str, kind: DecisionKind, actor: Actor = IRU, **inputs: str
) -> LedgerRow:
    decision = Decision(
        decision_id=f"{INCIDENT}/{decision_id}",
        incident_id=INCIDENT,
        actor=actor,
        kind=kind,
        inputs=inputs,
        at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    return LedgerRow(incident_id=INCIDENT, seq=seq, decision=decision, prev_hash="", hash="")


def test_a_tally_finds_lost_duplicated_unanswered_and_missing_decisions() -> None:
    accepted = Accepted()
    accepted.answer(Answer(phase="assessing", decisions=[f"{INCIDENT}/crisis/2"]), IRU.id)
    accepted.answer(
        Answer(phase="active", decisions=[f"{INCIDENT}/crisis/3"]), IRU.id
    )  # never stored
    reports = [TaskReport(task_id=t, outcome=Outcome.removed) for t in ("fb-1", "fb-2")]
    accepted.reports(reports, ReportAnswer(changed=["fb-1", "fb-2"]))
    rows = [
        row(1, "crisis/1", DecisionKind.reported),
        row(2, "crisis/2", DecisionKind.assessed),
        row(3, "fastbook/1", DecisionKind.task_removed, FASTBOOK, task_id="fb-1"),
        row(
            4, "fastbook/2", DecisionKind.task_removed, FASTBOOK, task_id="fb-1"
        ),  # fb-1 twice, no fb-2
        row(
            5, "fastbook/4", DecisionKind.sla_breached, SYSTEM, task_id="fb-3", clock="act"
        ),  # 3 missing
        row(6, "crisis/4", DecisionKind.de_escalated),  # recorded, but no answer accepted it
    ]

    found = tally(accepted, rows)

    assert (found.accepted, found.in_ledger) == (4, 6)
    assert found.lost == [f"{INCIDENT}/crisis/3", task_key("fb-2", DecisionKind.task_removed)]
    assert found.duplicated == [f"{INCIDENT}:{task_key('fb-1', DecisionKind.task_removed)}"]
    assert found.gaps == [f"{INCIDENT}/crisis/3", f"{INCIDENT}/fastbook/3"]
    assert found.unanswered == [f"{INCIDENT}/crisis/4"]
    assert "FAIL" in table([Result("s", found)])


def test_a_clean_tally_passes_and_a_resent_id_counts_once() -> None:
    accepted = Accepted()
    answer = Answer(phase="assessing", decisions=[f"{INCIDENT}/crisis/2"])
    accepted.answer(answer, IRU.id)
    accepted.answer(answer, IRU.id)  # the same key resent: the same answer

    found = tally(
        accepted,
        [row(1, "crisis/1", DecisionKind.reported), row(2, "crisis/2", DecisionKind.assessed)],
    )

    assert Result("s", found).ok
    assert (found.accepted, found.lost, found.duplicated) == (1, [], [])


def test_undelivered_names_notices_missing_on_both_routes() -> None:
    delivered = ["i/crisis/n1", "i/crisis/n2/backup", "i/crisis/n4", "i/fb/n1"]

    assert undelivered(delivered) == ["i/crisis/n3"]


def test_a_lost_last_decision_of_its_scope_is_lost() -> None:
    """The closure (the crisis's last decision) and the last task of a bulk report (its
    platform's last) accepted but missing: nothing after them makes a gap, the tally still
    names them."""
    accepted = Accepted()
    accepted.answer(Answer(phase="closed", decisions=[f"{INCIDENT}/crisis/3"]), IRU.id)
    reports = [TaskReport(task_id=t, outcome=Outcome.removed) for t in ("fb-1", "fb-2", "fb-3")]
    accepted.reports(reports, ReportAnswer(changed=["fb-1", "fb-2", "fb-3"]))
    rows = [
        row(1, "crisis/1", DecisionKind.reported),
        row(2, "crisis/2", DecisionKind.review_started),
        row(3, "fastbook/1", DecisionKind.task_removed, FASTBOOK, task_id="fb-1"),
        row(4, "fastbook/2", DecisionKind.task_removed, FASTBOOK, task_id="fb-2"),
    ]  # no crisis/3 (the closure), no fastbook/3 (fb-3's removal)

    found = tally(accepted, rows)

    assert found.lost == [f"{INCIDENT}/crisis/3", task_key("fb-3", DecisionKind.task_removed)]
    assert found.gaps == []
    assert not Result("s", found).ok


def test_a_lost_last_decision_no_client_heard_of_is_a_gap_by_the_workflows_count() -> None:
    """A task withdrawn at closure is eucp's own decision, answered to no one: missing as the
    crisis's last, only the workflow's own count of its decisions shows it."""
    accepted = Accepted()
    accepted.answer(Answer(phase="closed", decisions=[f"{INCIDENT}/crisis/2"]), IRU.id)
    rows = [row(1, "crisis/1", DecisionKind.reported), row(2, "crisis/2", DecisionKind.closed)]

    assert tally(accepted, rows).gaps == []  # the rows alone cannot tell
    found = tally(accepted, rows, made={f"{INCIDENT}/crisis": 3})

    assert (found.lost, found.gaps) == ([], [f"{INCIDENT}/crisis/3"])
    assert not Result("s", found).ok

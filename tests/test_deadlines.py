"""Legal deadlines and targets told apart where people read them: the status figures, `eucp
crisis status`, the console's platforms table and the audit's rebuilt state. Pure: no server.
The workflow's side (what it records) is in tests/test_sla.py, the review report's in
tests/test_review_report.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from eucp.audit.reconstruct import reconstruct
from eucp.cli.render import platform_table
from eucp.console.routes import templates
from eucp.console.views import platform_rows
from eucp.protocol.clocks import SlaSettings
from eucp.protocol.deadlines import Deadline, deadline_of, missed_in_words, recorded_deadline
from eucp.protocol.decisions import Decision, DecisionKind
from eucp.protocol.participants import SYSTEM
from eucp.protocol.phases import Phase
from eucp.protocol.state import CrisisStatus, IncidentStatus, PlatformState, PlatformSummary
from eucp.protocol.tasks import ContentItem, Stage, Task, TaskState, task_id
from tests.conftest import CHOOSY, COORDINATOR
from tests.protocol_steps import AN_ORDER, url

T0 = datetime(2026, 3, 15, 2, 0, tzinfo=UTC)
SLA = SlaSettings()  # acknowledge 15 min, act 60 min
ORDER, REFERRAL = task_id(CHOOSY.id, 1), task_id(CHOOSY.id, 2)


def test_only_a_removal_orders_act_clock_is_a_legal_deadline() -> None:
    assert deadline_of("act", "removal_order") is Deadline.legal
    assert deadline_of("acknowledge", "removal_order") is Deadline.target
    assert deadline_of("act", "voluntary") is Deadline.target
    assert deadline_of("act", None) is Deadline.target  # basis unknown: never claimed legal
    # a recorded marker is taken as recorded; a row without one is derived from its clock
    assert recorded_deadline({"clock": "act", "deadline": "target"}, "removal_order") == "target"
    assert recorded_deadline({"clock": "act"}, "removal_order") is Deadline.legal
    assert recorded_deadline({"clock": "act", "deadline": "bogus"}, "voluntary") == "target"
    assert missed_in_words(1, 2) == "1 legal deadline missed, 2 targets missed"
    assert missed_in_words(0, 1) == "1 target missed"


def a_platform_at_61_minutes() -> tuple[PlatformState, datetime]:
    """Choosy's removal order never answered and a voluntary referral acknowledged at once,
    61 minutes after both were assigned: as the workflow leaves them after its ladder ran."""
    order = Task(
        task_id=ORDER,
        item_no=1,
        platform_id=CHOOSY.id,
        identifier=url(1),
        basis=AN_ORDER,
        assigned_at=T0,
        ack_stage=Stage.escalated,
        act_stage=Stage.reminded,
    )
    referral = Task(
        task_id=REFERRAL,
        item_no=2,
        platform_id=CHOOSY.id,
        identifier=url(2),
        basis=ContentItem(no=2, identifier=url(2), source=COORDINATOR.id).basis,
        state=TaskState.acknowledged,
        assigned_at=T0,
        acknowledged_at=T0,
        act_stage=Stage.reminded,
    )
    state = PlatformState(
        incident_id="inc-x",
        platform_id=CHOOSY.id,
        coordinators=[COORDINATOR.id],
        sla=SLA,
        tasks={ORDER: order, REFERRAL: referral},
        breaches=3,
        escalations=1,
    )
    return state, T0 + timedelta(minutes=61)


def test_the_status_figures_count_legal_deadlines_and_targets_apart() -> None:
    state, now = a_platform_at_61_minutes()
    s = state.summary(now)
    assert (s.breaches, s.legal_deadlines_missed, s.targets_missed) == (3, 1, 2)
    assert (s.open_legal_deadlines, s.open_targets) == ([ORDER], [ORDER, REFERRAL])
    assert s.open_breaches == [ORDER, REFERRAL]  # the old field still counts both
    assert "breaches" in s.model_dump() and "open_breaches" in s.model_dump()


def status_of(summary: PlatformSummary) -> IncidentStatus:
    crisis = CrisisStatus(
        incident_id="inc-x",
        title="Livestreamed attack",
        phase=Phase.active,
        phases=[],
        assessment=None,
        assessment_overdue=False,
        platforms=[CHOOSY.id],
        items=2,
        false_positives=[],
        review_inputs=0,
        decisions=9,
        finals={},
    )
    return IncidentStatus(crisis=crisis, platforms={CHOOSY.id: summary})


def test_crisis_status_and_the_console_say_legal_deadlines_and_targets_in_words() -> None:
    state, now = a_platform_at_61_minutes()
    summary = state.summary(now)

    text = platform_table([summary]).splitlines()
    assert "LEGAL DEADLINES MISSED" in text[0] and "TARGETS MISSED" in text[0]
    assert text[1].split() == ["choosy", "2", "1", "1", "2", "(1", "legal)", "1", "2", "1"]

    [row] = platform_rows(status_of(summary), None)
    assert (row.open_breaches, row.open_legal) == (2, 1)
    assert (row.legal_deadlines_missed, row.targets_missed) == (1, 2)
    page = templates.get_template("_platforms.html").render(platforms=[row])
    assert "Legal deadlines missed" in page and "Targets missed" in page
    assert "(1 legal)" in page


def test_the_audit_rebuild_names_a_legal_deadline_from_old_rows_too() -> None:
    """Rows recorded before the `deadline` input: the removal order's act clock is read as
    legal from the order that created the task, its acknowledge clock as a target."""
    incident = "inc-pure"
    order = ContentItem(no=1, identifier=url(1), basis=AN_ORDER, source=COORDINATOR.id)

    def decided(n: int, kind: DecisionKind, scope: str, **inputs: object) -> Decision:
        actor = COORDINATOR if scope == "crisis" else SYSTEM
        return Decision(
            decision_id=f"{incident}/{scope}/{n}",
            incident_id=incident,
            actor=actor,
            kind=kind,
            reason="met" if kind is DecisionKind.activated else None,
            inputs=inputs,
            at=T0 + timedelta(minutes=n),
        )

    state = reconstruct(
        incident,
        [
            decided(0, DecisionKind.reported, "crisis", report={"title": "Attack"}),
            decided(1, DecisionKind.assessed, "crisis"),
            decided(
                2,
                DecisionKind.activated,
                "crisis",
                platforms=[CHOOSY.id],
                items=[order.model_dump(mode="json")],
            ),
            decided(17, DecisionKind.sla_breached, CHOOSY.id, task_id=ORDER, clock="acknowledge"),
            decided(62, DecisionKind.sla_breached, CHOOSY.id, task_id=ORDER, clock="act"),
        ],
    ).state
    assert [(b.clock, b.deadline) for b in state.open_breaches] == [
        ("acknowledge", Deadline.target),
        ("act", Deadline.legal),
    ]

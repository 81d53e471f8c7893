"""Removal orders after their issue, as properties: the host Member State's scrutiny of a
cross-border order (TCO Art. 4), the issuing authority's clarification (Annex III, Art. 3(8))
and the reinstatement of content whose order lost its effect (Art. 4(7)). Pure: no server."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from eucp.protocol.clocks import SlaSettings
from eucp.protocol.commands import ClarifyOrder, DecideScrutiny, RequestScrutiny
from eucp.protocol.orders import (
    OrderRecord,
    ScrutinyDecision,
    ScrutinyOutcome,
    ScrutinyRequest,
    ScrutinyStage,
    check_decision,
    check_request,
    orders_seen_by,
    your_order,
)
from eucp.protocol.participants import Participant, ParticipantKind
from eucp.protocol.refusal import Refusal, RefusalKind
from eucp.protocol.tasks import (
    ASKS_CLARIFICATION,
    CannotComplyReason,
    LegalBasis,
    Outcome,
    Task,
    TaskReport,
    TaskState,
    VoluntaryReferral,
    apply_report,
    check_report,
    clarify,
    reinstatement,
    task_id,
    triage,
)
from tests.conftest import CHOOSY, FASTBOOK, HOST_AUTHORITY, MEMBER_STATE
from tests.protocol_steps import AN_ORDER, url

T0 = AN_ORDER.issued_at  # the order reaches choosy as it is issued
ORDER = AN_ORDER.model_copy(update={"issuer": MEMBER_STATE.id})  # FR -> choosy, hosted in IE
SLA = SlaSettings()
HOUR, MICRO = timedelta(hours=1), timedelta(microseconds=1)
H48, H72 = 48 * HOUR, 72 * HOUR  # Art. 4(3)-(4): the law's windows, not settings
WINDOWS = [H48, H72]
# when something happens after the order's receipt: any second, and either side of each window
OFFSETS = st.integers(-3600, 150 * 3600).map(lambda s: timedelta(seconds=s)) | st.sampled_from(
    [w + e for w in WINDOWS for e in (-MICRO, timedelta(0), MICRO)]
)
STEPS = st.integers(0, 80 * 60).map(lambda m: timedelta(minutes=m)) | st.sampled_from(WINDOWS)


def an_order(domestic: bool = False, **changes: object) -> OrderRecord:
    """France's order to choosy as the crisis keeps it; a domestic one is Ireland's, its host."""
    order = OrderRecord.of(ORDER, [1], T0).model_copy(update=changes)
    if domestic:
        order.issuing_member_state = order.host_member_state
    return order


def asked(order: OrderRecord, at: datetime) -> None:
    order.request = ScrutinyRequest(
        by=order.platform, at=at, reason="overbroad", decide_by=at + H72
    )


def decided(order: OrderRecord, outcome: ScrutinyOutcome, at: datetime) -> None:
    order.decision = ScrutinyDecision(by=HOST_AUTHORITY.id, at=at, outcome=outcome, reasons="r")


def refusal_of(rule: Callable[..., object], *args: object) -> Refusal | None:
    """The refusal `rule(*args)` raises, or None when it accepts."""
    try:
        rule(*args)
    except Refusal as err:
        return err
    return None


# ---- Art. 4(4): the addressee asks, once, within 48 hours -------------------------------------


@given(OFFSETS, st.booleans(), st.booleans(), st.booleans())
@example(H48, False, False, False).via("the last instant of the 48 hours")
@example(H48 + MICRO, False, False, False).via("the first instant after them")
def test_a_platform_asks_for_scrutiny_of_a_cross_border_order_once_within_48_hours(
    after: timedelta, domestic: bool, already_asked: bool, already_decided: bool
) -> None:
    order = an_order(domestic)
    if already_asked:
        asked(order, T0 + HOUR)
    if already_decided:
        decided(order, ScrutinyOutcome.upheld, T0 + 2 * HOUR)
    refused = refusal_of(check_request, order, T0 + after)
    # an order upheld of the host State's own motion may still be questioned
    open_ = not domestic and not already_asked
    assert (refused is None) == (open_ and after <= H48)
    assert refused is None or refused.field == "reference"
    if domestic:  # Ireland ordered a platform it hosts: challenged before its courts
        assert refused is not None and "Art. 9" in refused.rule
    elif open_ and refused is not None:  # too late
        assert "48 hours" in refused.rule and "Art. 4(4)" in refused.rule


# ---- Art. 4(3)-(6): the host State decides, once, within 72 hours or when asked -----------------


@given(OFFSETS, st.sampled_from(["IE", "FR", "DE", None]), *[st.booleans()] * 3)
@example(H72 - MICRO, "IE", False, False, False).via("the last instant of the 72 hours")
@example(H72, "IE", False, False, False).via("too late, unasked: the window closed")
@example(H72 * 3, "IE", False, True, False).via("asked: due however late")
def test_only_the_host_state_decides_a_cross_border_order_in_its_window_or_when_asked(
    after: timedelta, country: str | None, domestic: bool, requested: bool, done: bool
) -> None:
    order = an_order(domestic)
    if requested:
        asked(order, T0 + 40 * HOUR)
    if done:
        decided(order, ScrutinyOutcome.infringes, T0 + 50 * HOUR)
    who = HOST_AUTHORITY.id
    refused = refusal_of(check_decision, order, order.reference, who, country, T0 + after)
    host = country == "IE" and not domestic
    assert (refused is None) == (host and not done and (after < H72 or requested))
    missing = refusal_of(check_decision, None, order.reference, who, country, T0 + after)
    assert missing is not None and (missing.field, missing.kind) == ("reference", "not_found")
    if not host:  # neither issuer nor host: as for an order that does not exist
        assert refused is not None and refused.details() == missing.details()
    elif refused is not None:
        assert (refused.field, refused.kind) == ("reference", RefusalKind.conflict)
    issuer = refusal_of(check_decision, order, order.reference, order.issuer, "FR", T0 + after)
    assert issuer is not None and (issuer.field, issuer.kind) == ("actor", "forbidden")


# ---- need to know: a platform learns nothing of another's orders -------------------------------


@given(st.text(max_size=120))
def test_another_platforms_order_and_no_order_are_refused_alike(reference: str) -> None:
    """Fastbook's order asked for by choosy, and no order at all: the same field, rule, kind."""
    theirs = {reference: an_order(platform=FASTBOOK.id, reference=reference)}
    answers = []
    for orders in (theirs, {}):
        refused = refusal_of(your_order, orders, reference, CHOOSY.id)
        assert refused is not None
        answers.append((refused.field, refused.rule, refused.kind))
    assert answers[0] == answers[1]
    assert (answers[0][0], answers[0][2]) == ("reference", RefusalKind.not_found)
    mine = {reference: an_order(reference=reference)}
    assert your_order(mine, reference, CHOOSY.id) is mine[reference]


COUNTRIES = st.sampled_from(["FR", "IE", "DE"])
ISSUERS = {"FR": MEMBER_STATE.id, "IE": HOST_AUTHORITY.id, "DE": "de-bka"}
GARDA = Participant(id="ie-garda", kind="member_state", name="Garda", country="IE")
VIEWERS = st.sampled_from(
    [
        *(Participant(id=p, kind=ParticipantKind.platform, name=p) for p in ("choosy", "gab")),
        *(Participant(id=i, kind="member_state", name=i, country=c) for c, i in ISSUERS.items()),
        GARDA,  # an Irish authority that issues none of these orders
        *(Participant(id=k, kind=k, name=k) for k in ("coordinator", "auditor", "gifct")),
    ]
)
PLATFORMS = st.sampled_from([CHOOSY.id, FASTBOOK.id, "slowtube"])
ORDERS = st.lists(st.tuples(PLATFORMS, COUNTRIES, COUNTRIES), max_size=8).map(
    lambda made: {
        f"R-{n}": an_order(
            reference=f"R-{n}",
            platform=p,
            issuer=ISSUERS[i],
            issuing_member_state=i,
            host_member_state=h,
        )
        for n, (p, i, h) in enumerate(made)
    }
)


@settings(max_examples=200)
@given(ORDERS, VIEWERS)
@example({"IE-1": an_order(True, issuer=HOST_AUTHORITY.id)}, GARDA).via("domestic: no scrutiny")
def test_each_participant_sees_the_orders_it_has_a_part_in(
    orders: dict[str, OrderRecord], viewer: Participant
) -> None:
    def has_a_part(o: OrderRecord) -> bool:
        return {
            "platform": o.platform == viewer.id,  # the addressee alone (Art. 3)
            # the authority that issued it, and the host State's that scrutinises it (Art. 4)
            "member_state": o.issuer == viewer.id
            or (o.cross_border and o.host_member_state == viewer.country),
            "coordinator": True,
            "auditor": True,
            "gifct": False,
        }[viewer.kind]

    assert orders_seen_by(orders, viewer) == [o for o in orders.values() if has_a_part(o)]


# ---- an order's stage and next clock as its events come ---------------------------------------

EVENTS = st.lists(
    st.tuples(STEPS, st.sampled_from(["wait", "request", *ScrutinyOutcome])), max_size=8
)


def looked_at(order: OrderRecord, now: datetime) -> None:
    """What the crisis does when the order's clock falls due: it closes the window and marks
    a requested decision overdue."""
    if (due := order.next_due()) is None or due > now:
        return
    order.window_closed = order.window_closed or order.window_closes <= now
    if order.request and order.request.decide_by <= now:
        order.request.overdue = True


@settings(max_examples=150)
@given(st.booleans(), EVENTS)
def test_an_orders_scrutiny_stage_and_next_clock_follow_its_events(
    domestic: bool, events: list[tuple[timedelta, str]]
) -> None:
    order, now = an_order(domestic), T0
    asked_at: datetime | None = None
    outcome: ScrutinyOutcome | None = None
    decided_at: datetime | None = None
    for step, event in events:
        now += step
        looked_at(order, now)
        # a request unanswered: an earlier decision of the host's own motion does not answer it
        awaits = asked_at is not None and (decided_at is None or decided_at < asked_at)
        if event == "request":
            may = (
                not domestic
                and asked_at is None
                and outcome is not ScrutinyOutcome.infringes
                and now <= T0 + H48
            )
            assert (refusal_of(check_request, order, now) is None) == may
            if may:
                asked_at = now
                asked(order, now)
        elif event != "wait":
            may = not domestic and ((outcome is None and now < T0 + H72) or awaits)
            decision = refusal_of(check_decision, order, "R", HOST_AUTHORITY.id, "IE", now)
            assert (decision is None) == may
            if may:
                outcome, decided_at = ScrutinyOutcome(event), now
                decided(order, outcome, now)
        awaits = asked_at is not None and (decided_at is None or decided_at < asked_at)
        clocks = [
            *([T0 + H72] if outcome is None else []),
            *([asked_at + H72] if awaits and asked_at else []),
        ]
        running = [c for c in clocks if c > now] if not domestic else []
        assert order.next_due() == min(running, default=None)
        if domestic:
            stage = ScrutinyStage.domestic
        elif awaits and asked_at is not None:
            overdue = now >= asked_at + H72
            stage = ScrutinyStage.overdue if overdue else ScrutinyStage.requested
        elif outcome is not None:
            stage = ScrutinyStage(outcome.value)
        else:
            stage = ScrutinyStage.stands if now >= order.window_closes else ScrutinyStage.open
        assert order.stage is stage
        assert order.in_effect == (outcome is not ScrutinyOutcome.infringes)


# ---- tasks: reinstatement, and the pause an issuer's clarification ends -------------------------


def a_task(basis: LegalBasis = ORDER, **changes: object) -> Task:
    mine = {"task_id": task_id(CHOOSY.id, 1), "item_no": 1, "platform_id": CHOOSY.id}
    task = Task(**mine, identifier=url(1), basis=basis, assigned_at=T0)  # type: ignore[arg-type]
    return task.model_copy(update=changes)


def a_report(task: Task, outcome: Outcome, why: CannotComplyReason | None = None) -> TaskReport:
    return TaskReport(
        task_id=task.task_id,
        outcome=outcome,
        reason="not ours to weigh" if outcome is Outcome.declined else None,
        cannot_comply=why or CannotComplyReason.force_majeure
        if outcome is Outcome.cannot_comply
        else None,
    )


@given(st.sampled_from(list(Outcome)), st.integers(0, 30 * 24 * 60))
def test_a_reinstatement_task_takes_only_acknowledged_or_reinstated(
    outcome: Outcome, minutes: int
) -> None:
    removed = a_task(state=TaskState.removed, acknowledged_at=T0, resolved_at=T0, removed_at=T0)
    now = T0 + timedelta(minutes=minutes)
    back = reinstatement(removed, now)  # the order lost its effect: the content goes back up
    assert (back.reinstates, back.state, back.assigned_at) == (removed.task_id, "assigned", now)
    assert [c for c, _, _ in back.clocks(SLA)] == ["acknowledge", "reinstate"]
    assert back.act_due(SLA) == now + SLA.act_within
    refused = refusal_of(check_report, back, a_report(back, outcome))
    assert (refused is None) == (outcome in (Outcome.acknowledged, Outcome.reinstated))
    assert refused is None or refused.field == "outcome"
    # once acknowledged: a second acknowledgement repeats, reinstated applies, the rest refused
    apply_report(back, a_report(back, Outcome.acknowledged), now)
    batch = triage({back.task_id: back}, CHOOSY.id, [a_report(back, outcome)])
    assert bool(batch.repeats) == (outcome is Outcome.acknowledged)
    assert bool(batch.apply) == (outcome is Outcome.reinstated)
    for state in TaskState:  # and the removal task, in any state, reinstates nothing
        task = removed.model_copy(update={"state": state})
        refused = refusal_of(check_report, task, a_report(task, Outcome.reinstated))
        assert refused is not None and refused.field == "outcome"


SECONDS = st.integers(0, 48 * 3600).map(lambda s: timedelta(seconds=s))
PAUSES = st.lists(
    st.tuples(st.sampled_from(list(CannotComplyReason)), SECONDS, SECONDS), min_size=1, max_size=4
)
BASES = {"issued": ORDER, "recorded before": AN_ORDER, "voluntary": VoluntaryReferral()}


@settings(max_examples=150)
@given(PAUSES, st.sampled_from(list(BASES)), st.integers(1, 600))
def test_a_pause_for_the_issuer_ends_with_its_clarification_and_the_hour_restarts_in_full(
    pauses: list[tuple[CannotComplyReason, timedelta, timedelta]], basis: str, alert_after: int
) -> None:
    sla = SLA.model_copy(update={"pause_alert_after": timedelta(minutes=alert_after)})
    task, now = a_task(BASES[basis]), T0
    for why, working, length in pauses:
        now += working
        apply_report(task, a_report(task, Outcome.cannot_comply, why), now)
        paused_at, now = now, now + length
        assert task.act_due(sla) is None  # the hour stands still
        assert task.pause_alert_due(sla) == paused_at + sla.pause_alert_after
        if length >= sla.pause_alert_after:
            task.pause_alerted = True  # the crisis told the coordinators and the issuer
            assert task.pause_alert_due(sla) is None
        waits = why in ASKS_CLARIFICATION and basis == "issued"
        assert task.awaits_clarification == waits
        resume = a_report(task, Outcome.resumed)
        refused = refusal_of(check_report, task, resume)
        batch = triage({task.task_id: task}, CHOOSY.id, [resume])
        if waits:  # the platform may remove it, not resume it: the clarification does
            assert refused is not None and refused.field == "outcome"
            assert "Art. 3(8)" in refused.rule
            assert [r.rule for _, _, r in batch.refused] == [refused.rule]
            assert triage({task.task_id: task}, CHOOSY.id, [resume], clarifying=False).apply
            assert check_report(task, a_report(task, Outcome.removed)) is TaskState.removed
            assert clarify(task, now)
        else:  # force majeure, or no issuer to ask: the platform resumes as the reason ceases
            assert refused is None and batch.apply
            assert not clarify(task, now)
            apply_report(task, resume, now)
        assert (task.state, task.paused_since, task.cannot_comply) == ("acknowledged", None, None)
        assert task.act_due(sla) == now + sla.act_within  # in full, however long the pause
        assert task.pause_alert_due(sla) is None
        assert not clarify(task, now)  # a second clarification changes nothing


# ---- the commands, at the edge ----------------------------------------------------------------

COMMANDS: list[tuple[type[BaseModel], dict[str, object]]] = [
    (RequestScrutiny, {"actor": CHOOSY}),
    (DecideScrutiny, {"actor": HOST_AUTHORITY, "outcome": "upheld"}),
    (ClarifyOrder, {"actor": MEMBER_STATE}),
]
BAD_REFERENCES = st.just("") | st.text(min_size=101, max_size=300)


@given(st.sampled_from(COMMANDS), BAD_REFERENCES, st.text(min_size=1, max_size=100))
def test_order_commands_name_a_reference_of_1_to_100_characters(
    command: tuple[type[BaseModel], dict[str, object]], bad: str, good: str
) -> None:
    model, fields = command
    with pytest.raises(ValidationError) as refused:
        model.model_validate({**fields, "reference": bad})
    assert [e["loc"] for e in refused.value.errors()] == [("reference",)]
    assert model.model_validate({**fields, "reference": good}).model_dump()["reference"] == good


@given(st.text(max_size=20).filter(lambda s: s not in set(ScrutinyOutcome)))
def test_a_scrutiny_decision_is_upheld_or_infringes(outcome: str) -> None:
    with pytest.raises(ValidationError) as refused:
        DecideScrutiny.model_validate({**COMMANDS[1][1], "reference": "R", "outcome": outcome})
    assert [e["loc"] for e in refused.value.errors()] == [("outcome",)]

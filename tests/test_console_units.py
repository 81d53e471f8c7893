"""The console's pure parts without a browser: CSRF tokens, sessions, pasted identifiers, and
the sections of an incident's page rendered from a status."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import Request, Response

from eucp.api.auth import Gatekeeper
from eucp.api.limits import RateLimiter
from eucp.console.actions import (
    FORMS,
    TEXT_LABELS,
    Submission,
    read,
    read_identifiers,
    read_time,
)
from eucp.console.csrf import CsrfRefused
from eucp.console.reads import Listed
from eucp.console.routes import PREFIX, Console, form_context, set_cookie, templates
from eucp.console.session import Notice, Sessions, SignInRefused, authenticate
from eucp.console.views import (
    BAR_ORDER,
    CRITERIA,
    GOVERNANCE,
    criteria,
    incident_row,
    order_rows,
    platform_rows,
    situation,
    span,
)
from eucp.protocol.actions import ACTIONS, Action
from eucp.protocol.commands import FROM_REGISTRY
from eucp.protocol.decisions import COURSE, Decision, DecisionKind, LedgerRow
from eucp.protocol.identifiers import HashIdentifier, UrlIdentifier
from eucp.protocol.incident import PROTOCOL_NAMES, LinkedProtocol, LinkedProtocolKind
from eucp.protocol.orders import (
    OrderRecord,
    ScrutinyDecision,
    ScrutinyOutcome,
    ScrutinyRequest,
    ScrutinyStage,
)
from eucp.protocol.participants import SYSTEM, Actor
from eucp.protocol.phases import Phase
from eucp.protocol.state import CrisisStatus, IncidentStatus, PhaseChange, PlatformSummary
from eucp.protocol.tasks import TaskState
from eucp.review.figures import PHASE_OF
from eucp.runtime.shared import SharedState
from eucp.runtime.tokens import TokenStore
from tests.conftest import AUDITOR, COORDINATOR, FASTBOOK, MEMBER_STATE, REGISTRY


def a_request(scheme: str = "http") -> Request:
    scope = {"type": "http", "scheme": scheme, "server": ("eucp.example", 443), "path": "/"}
    return Request(scope | {"headers": [], "client": ("127.0.0.1", 1)})


def a_gatekeeper(tmp_path: Path) -> Gatekeeper:
    state = SharedState(f"sqlite:///{tmp_path / 'api-state.sqlite3'}")
    return Gatekeeper(
        TokenStore(tmp_path / "tokens.json"),
        failures=RateLimiter(state, "failed-sign-ins", rate=1, burst=100),
        requests=RateLimiter(state, "requests", rate=100, burst=100),
    )


def test_a_csrf_token_belongs_to_one_cookie_whichever_process_checks_it(tmp_path: Path) -> None:
    shared = f"sqlite:///{tmp_path / 'api-state.sqlite3'}"
    csrf = Console(SharedState(shared)).csrf
    token = csrf.token("cookie-a")
    Console(SharedState(shared)).csrf.check("cookie-a", token)  # another API process
    for cookie, sent in (("cookie-b", token), ("cookie-a", ""), (None, token), ("cookie-a", None)):
        with pytest.raises(CsrfRefused):
            csrf.check(cookie, sent)
    elsewhere = Console(SharedState(f"sqlite:///{tmp_path / 'other.sqlite3'}"))
    assert elsewhere.csrf.token("cookie-a") != token, "each deployment has a key of its own"


def test_sign_in_takes_staff_only(tmp_path: Path) -> None:
    gate = a_gatekeeper(tmp_path)
    tokens = {a.id: gate.tokens.issue(a.id) for a in (COORDINATOR, AUDITOR, FASTBOOK)}
    assert authenticate(a_request(), tokens[AUDITOR.id], gate, REGISTRY) == AUDITOR
    with pytest.raises(SignInRefused) as platform:
        authenticate(a_request(), tokens[FASTBOOK.id], gate, REGISTRY)
    assert platform.value.status == 403
    with pytest.raises(SignInRefused) as unknown:
        authenticate(a_request(), "eucp_guess", gate, REGISTRY)
    assert (unknown.value.status, unknown.value.message) == (401, "Unknown or rotated token.")


def test_a_session_ends_when_idle_too_long_past_its_lifetime_or_when_its_token_rotates(
    tmp_path: Path,
) -> None:
    gate = a_gatekeeper(tmp_path)
    token = gate.tokens.issue(COORDINATOR.id)
    now = [0.0]
    sessions = Sessions(
        gate.requests.state,
        clock=lambda: now[0],
        idle=timedelta(minutes=30),
        lifetime=timedelta(hours=1),
    )

    def alive(cookie: str) -> bool:
        return sessions.find(a_request(), cookie, gate, REGISTRY) is not None

    cookie = sessions.open(COORDINATOR, token)
    now[0] += 29 * 60
    assert alive(cookie)
    now[0] += 31 * 60
    assert not alive(cookie), "idle for 31 minutes"

    cookie = sessions.open(COORDINATOR, token)
    for _ in range(3):
        now[0] += 25 * 60  # active, but past the lifetime on the third step
        ok = alive(cookie)
    assert not ok

    cookie = sessions.open(COORDINATOR, token)
    assert alive(cookie)
    gate.tokens.issue(COORDINATOR.id)  # rotation
    assert not alive(cookie)
    assert not alive("a-cookie-nobody-was-given")


def test_a_session_and_its_notices_are_the_same_in_every_api_process(tmp_path: Path) -> None:
    gate = a_gatekeeper(tmp_path)
    token = gate.tokens.issue(COORDINATOR.id)
    shared = f"sqlite:///{tmp_path / 'api-state.sqlite3'}"
    first, second = Sessions(SharedState(shared)), Sessions(SharedState(shared))
    cookie = first.open(COORDINATOR, token)
    session = second.find(a_request(), cookie, gate, REGISTRY)
    assert session is not None and session.actor == COORDINATOR
    first.keep_notice(session, "inc-1", Notice(True, "Activated", ("2 platforms told",)))
    assert second.take_notice(session, "inc-1") == Notice(True, "Activated", ("2 platforms told",))
    assert first.take_notice(session, "inc-1") is None, "a notice is shown once"
    second.close(cookie)
    assert first.find(a_request(), cookie, gate, REGISTRY) is None, "signed out everywhere"


def test_the_cookie_is_secure_over_https_and_never_readable_by_scripts() -> None:
    for scheme, secure in (("http", False), ("https", True)):
        response = Response()
        set_cookie(a_request(scheme), response, "value")
        header = response.headers["set-cookie"].lower()
        assert "httponly" in header and "samesite=strict" in header and "path=/console" in header
        assert ("; secure" in header) is secure


def test_pasted_identifiers_are_read_line_by_line() -> None:
    pasted = "https://a.example/x\n\n# a comment\nsha256:zz\nmd5:" + "A" * 32 + "\nnonsense"
    found, bad = read_identifiers(pasted)
    assert found == [
        UrlIdentifier(value="https://a.example/x"),
        HashIdentifier(algorithm="md5", value="a" * 32),
    ]
    assert [(b.line, b.text) for b in bad] == [(4, "sha256:zz"), (6, "nonsense")]
    assert "hexadecimal" in bad[0].problem
    assert "expected an http(s) URL" in bad[1].problem


def test_durations_read_as_people_read_them() -> None:
    cases = {0: "0s", 42: "42s", 185: "3m 05s", 7620: "2h 07m", 100_800: "1d 4h"}
    assert {s: span(timedelta(seconds=s)) for s in cases} == cases
    assert span(None) == "-"


# ---- an incident's sections, rendered from a status ----------------------------------------

RECEIVED = datetime(2026, 3, 15, 2, 5, tzinfo=UTC)


def an_order(reference: str, **changes: Any) -> OrderRecord:
    """fr-pharos (FR) orders choosy, established in Ireland: cross-border, copied to ie-cnam."""
    fields: dict[str, Any] = {
        "reference": reference,
        "issuer": "fr-pharos",
        "issuing_member_state": "FR",
        "host_member_state": "IE",
        "platform": "choosy",
        "items": [1, 2, 3, 5],
        "received_at": RECEIVED,
        "copy_to": ["ie-cnam"],
    }
    return OrderRecord(**fields | changes)


def asked(overdue: bool = False) -> ScrutinyRequest:
    return ScrutinyRequest(
        by="choosy",
        at=RECEIVED + timedelta(hours=1),
        reason="the video is news reporting",
        decide_by=RECEIVED + timedelta(hours=73),
        overdue=overdue,
    )


def decided(outcome: ScrutinyOutcome) -> ScrutinyDecision:
    return ScrutinyDecision(
        by="ie-cnam", at=RECEIVED + timedelta(hours=5), outcome=outcome, reasons=f"{outcome}, why"
    )


ORDERS = [
    an_order(
        "IE-1", issuer="ie-cnam", issuing_member_state="IE", copy_to=[], items=[7]
    ),  # domestic
    an_order("FR-OPEN", confidential=True, clarifications=2),
    an_order("FR-ASKED", request=asked()),
    an_order("FR-LATE", request=asked(overdue=True)),
    an_order("FR-STANDS", window_closed=True),
    an_order("FR-UPHELD", request=asked(), decision=decided(ScrutinyOutcome.upheld)),
    an_order("FR-VOID", decision=decided(ScrutinyOutcome.infringes)),
]


def a_status(
    orders: list[OrderRecord], by_state: dict[TaskState, int] | None = None, **changes: Any
) -> IncidentStatus:
    fields: dict[str, Any] = {
        "incident_id": "inc-1",
        "title": "Attack video",
        "phase": Phase.active,
        "phases": [PhaseChange(phase=Phase.reported, at=RECEIVED, by="eu-iru")],
        "assessment": None,
        "assessment_overdue": False,
        "platforms": ["choosy"],
        "items": 7,
        "false_positives": [],
        "review_inputs": 0,
        "decisions": 12,
        "finals": {},
        "orders": orders,
    }
    crisis = CrisisStatus(**fields | changes)
    summary = PlatformSummary(
        platform_id="choosy", tasks=sum((by_state or {}).values()), by_state=by_state or {}
    )
    return IncidentStatus(crisis=crisis, platforms={"choosy": summary})


def rendered_orders(status: IncidentStatus, may_withdraw: bool) -> dict[str, str]:
    """The orders section as the page renders it, each row's HTML by the order's reference."""
    html = templates.get_template("_orders.html").render(
        prefix=PREFIX,
        csrf_field="csrf",
        csrf="token",
        incident_id=status.crisis.incident_id,
        orders=order_rows(status.crisis.orders),
        withdraw=FORMS[Action.withdraw_content] if may_withdraw else None,
    )
    rows = re.findall(r'<tr data-order="([^"]+)"(.*?)</tr>', html, re.DOTALL)
    return dict(rows)


def text_of(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_the_orders_section_says_each_scrutiny_stage_in_words() -> None:
    status = a_status(ORDERS)
    assert {order.stage for order in ORDERS} == set(ScrutinyStage), "every stage is shown"
    rows = rendered_orders(status, may_withdraw=False)
    assert list(rows) == [order.reference for order in ORDERS], "one row an order, as issued"
    words = {
        "IE-1": "not cross-border",
        "FR-OPEN": "host State may scrutinise until 2026-03-18 02:05:00 UTC",
        "FR-ASKED": "requested; decision due by 2026-03-18 03:05:00 UTC",
        "FR-LATE": "requested; decision overdue since 2026-03-18 03:05:00 UTC",
        "FR-STANDS": "not scrutinised; stands",
        "FR-UPHELD": "upheld",
        "FR-VOID": "infringes: no legal effect",
    }
    for reference, said in words.items():
        assert f">{said}</span>" in rows[reference], (reference, rows[reference])
    assert "asked by choosy: the video is news reporting" in text_of(rows["FR-ASKED"])
    assert "decided by ie-cnam: infringes, why" in text_of(rows["FR-VOID"])
    assert 'data-stage="overdue"' in rows["FR-LATE"]

    first = text_of(rows["FR-OPEN"])
    for shown in (
        # received, as the console says every time, and the Art. 11(3) flag
        "FR-OPEN 2026-03-15 02:05:00 UTC confidential",
        "FR fr-pharos",  # the issuing State and its authority
        "choosy host State IE, copy to ie-cnam",  # the addressee, its host State, who was copied
        "1-3, 5",  # the items
    ):
        assert shown in first, (shown, first)
    assert first.endswith(" 2"), "two clarifications"
    domestic = text_of(rows["IE-1"])
    assert "confidential" not in domestic and "copy to" not in domestic
    assert "IE ie-cnam choosy host State IE 7" in domestic


def test_a_coordinator_withdraws_an_orders_items_with_the_withdraw_content_form() -> None:
    rows = rendered_orders(a_status(ORDERS), may_withdraw=True)
    form = rows["FR-OPEN"]
    assert 'action="/console/incidents/inc-1/actions/withdraw_content"' in form
    assert 'name="items" placeholder="3 4 7" value="1 2 3 5" required' in form
    assert 'name="csrf" value="token"' in form
    assert "(required: " in form, "the reason is required, as the table says"
    assert "actions/withdraw_content" not in rows["FR-VOID"], "it lost its legal effect"
    assert "no legal effect" in text_of(rows["FR-VOID"])
    read_only = rendered_orders(a_status(ORDERS), may_withdraw=False)
    assert not any("<form" in row for row in read_only.values()), "no form where none is offered"


def test_an_incident_without_orders_says_so() -> None:
    html = templates.get_template("_orders.html").render(orders=[], withdraw=None)
    assert "No removal order in this incident" in html


def test_every_task_state_has_its_place_in_a_platforms_bar() -> None:
    assert set(BAR_ORDER) == set(TaskState)
    counts = {TaskState.removed: 3, TaskState.reinstated: 1, TaskState.assigned: 1}
    [row] = platform_rows(a_status([], counts), None)
    assert [(s.state, s.count) for s in row.segments] == [
        (TaskState.removed, 3),
        (TaskState.reinstated, 1),
        (TaskState.assigned, 1),
    ]
    assert row.open_tasks == 1, "a reinstatement done is resolved"


# ---- the governance forms: who takes part, updates, threats, linked protocols --------------

NOW = datetime(2026, 3, 15, 3, 0, 7, 123456, tzinfo=UTC)
FILLED = {  # every input of every form, each valid
    **{f"{name}.status": "met" for name in CRITERIA},
    **{f"{name}.evidence": f"{name}: seen by the EU IRU" for name in CRITERIA},
    "reason": "because",
    "identifiers": "https://video.example/watch/1\nmd5:" + "a" * 32,
    "addressees": "fastbook",
    "items": "1 2",
    "text": "The attacker is in custody.",
    "changes": "act_within=45m",
    "withdraw_open_tasks": "on",
    "platform": "choosy",
    "member_states": "fr, be",
    "protocol": "christchurch_call",
    "reference": "CC-2026-7",
    "activated_at": "2026-03-15T01:40",
    "name": "",
}


def test_each_governance_action_has_a_form_asking_what_its_command_needs() -> None:
    asks = {
        Action.join_platform: {"platform"},
        Action.suspend_platform: {"platform"},
        Action.flag_threat: {"text", "member_states"},
        Action.post_update: {"text"},
        Action.link_protocol: {"protocol", "reference", "activated_at", "name"},
        Action.renew_activation: set(),
    }
    for action, fields in asks.items():
        asked = set(Submission(FORMS[action]).fields()) - {"reason"}
        assert asked == fields, action
    assert FORMS[Action.suspend_platform].reason_required
    assert FORMS[Action.renew_activation].reason_required
    for action, form in FORMS.items():
        for name, info in ACTIONS[action].command.model_fields.items():
            extra = info.json_schema_extra
            if isinstance(extra, dict) and extra.get(FROM_REGISTRY):
                assert name not in Submission(form).fields(), f"{action} may not say {name}"


def test_a_forms_text_is_labelled_for_its_action() -> None:
    texts = {action: form.text_label for action, form in FORMS.items() if form.text}
    assert set(texts) == set(TEXT_LABELS), "every text has a label of its own"
    assert len(set(texts.values())) == len(texts)
    assert texts[Action.submit_review_input] == "Your input for the review"
    assert "review" not in texts[Action.post_update] + texts[Action.flag_threat]
    empty = read(FORMS[Action.post_update], {}, None, COORDINATOR)
    assert "text: write your update for the participants" in empty.problems


def test_a_form_read_back_from_its_confirmation_sends_the_same_command() -> None:
    """What the confirmation carries (`echo`) is read at confirm into the same fields the
    review read, minutes later, for every form."""
    for action, form in FORMS.items():
        reviewed = read(form, FILLED, None, COORDINATOR, now=NOW)
        assert reviewed.ok, (action, reviewed.problems, reviewed.bad_lines)
        confirmed = read(form, reviewed.echo(), None, COORDINATOR, now=NOW + timedelta(minutes=5))
        assert confirmed.ok, (action, confirmed.problems)
        assert confirmed.fields() == reviewed.fields(), action
    link = read(FORMS[Action.link_protocol], FILLED, None, COORDINATOR)
    assert link.fields() == {
        "reason": "because",
        "protocol": LinkedProtocolKind.christchurch_call,
        "reference": "CC-2026-7",
        "activated_at": datetime(2026, 3, 15, 1, 40, tzinfo=UTC),
        "name": None,
    }
    threat = read(FORMS[Action.flag_threat], FILLED, None, COORDINATOR)
    assert threat.fields()["member_states"] == ["FR", "BE"]


def test_times_are_read_in_utc_as_the_console_shows_them() -> None:
    assert read_time("2026-03-15T01:40", NOW) == datetime(2026, 3, 15, 1, 40, tzinfo=UTC)
    assert read_time("2026-03-15T02:40:05+01:00", NOW) == datetime(
        2026, 3, 15, 1, 40, 5, tzinfo=UTC
    )
    assert read_time("2026-03-15T01:40:05Z", NOW) == datetime(2026, 3, 15, 1, 40, 5, tzinfo=UTC)
    assert read_time(" ", NOW) == NOW.replace(microsecond=0), "empty: now, as the CLI"
    with pytest.raises(ValueError, match="not a time like"):
        read_time("yesterday", NOW)
    # left empty, the time of the review is the one confirmed
    reviewed = read(
        FORMS[Action.link_protocol], FILLED | {"activated_at": ""}, None, COORDINATOR, NOW
    )
    assert reviewed.echo()["activated_at"] == "2026-03-15T03:00:07"
    later = read(
        FORMS[Action.link_protocol], reviewed.echo(), None, COORDINATOR, NOW + timedelta(hours=1)
    )
    assert later.activated_at == NOW.replace(microsecond=0)


def test_the_command_checks_a_form_before_anything_is_sent() -> None:
    threat = read(
        FORMS[Action.flag_threat], {"text": "t", "member_states": "fr x1"}, None, COORDINATOR
    )
    assert threat.problems == [
        "member_states: Value error, 'X1' is not a country code like FR or IE"
    ]
    joined = read(FORMS[Action.join_platform], {"platform": "Not An Id"}, None, COORDINATOR)
    assert [p.split(":")[0] for p in joined.problems] == ["platform"]
    unnamed = read(FORMS[Action.suspend_platform], {"reason": "why"}, None, COORDINATOR)
    assert unnamed.problems == ["platform: name the platform, by its participant id"]
    link = read(
        FORMS[Action.link_protocol], {"protocol": "nope", "activated_at": "soon"}, None, COORDINATOR
    )
    assert [p.split(":")[0] for p in link.problems] == ["protocol", "reference", "activated_at"]
    # and the phase machine at review, as for every form
    early = read(FORMS[Action.suspend_platform], FILLED, Phase.assessing, COORDINATOR)
    assert early.problems == [
        "phase: suspend_platform is allowed in active, de_escalating, not in assessing"
    ]


def form_html(action: Action, crisis: CrisisStatus, values: dict[str, str] | None = None) -> str:
    page = templates.env.from_string(
        '{% from "_form.html" import action_form with context %}{{ action_form(f, "a", values=v) }}'
    )
    return page.render(f=FORMS[action], v=values or {}, **form_context(crisis), **PAGE)


PAGE = {"prefix": PREFIX, "csrf_field": "csrf", "csrf": "token", "incident_id": "inc-1"}


def offered_in(html: str) -> list[str]:
    return re.findall(r'<option value="([^"]+)"></option>', html)


def test_the_platform_field_offers_what_its_action_is_for() -> None:
    crisis = a_status([], platforms=["fastbook", "slowtube", "choosy"], suspended=["slowtube"])
    suspend = form_html(Action.suspend_platform, crisis.crisis)
    assert offered_in(suspend) == ["fastbook", "choosy"], "taking part and not suspended"
    assert 'name="platform" value="" list="a-platforms"' in suspend
    assert offered_in(form_html(Action.join_platform, crisis.crisis)) == ["slowtube"], "back"
    nobody = a_status([], platforms=[])
    join = form_html(Action.join_platform, nobody.crisis)
    assert 'type="text" name="platform"' in join and "<datalist" not in join, "any id, typed"


def test_the_link_form_asks_for_the_protocol_its_reference_and_when_in_utc() -> None:
    html = form_html(Action.link_protocol, a_status([]).crisis, {"protocol": "other"})
    assert re.findall(r'<option value="(\w+)"( selected)?>', html) == [
        ("gifct_cip", ""),
        ("christchurch_call", ""),
        ("other", " selected"),
    ]
    assert '<input type="datetime-local" name="activated_at" value="" step="1">' in html
    assert "UTC" in text_of(html.split('name="activated_at"')[0].rsplit("<label>", 1)[1])
    for name in ("reference", "name"):
        assert f'name="{name}"' in html


def confirm_html(sub: Submission, crisis: CrisisStatus) -> str:
    return templates.get_template("confirm.html").render(
        sub=sub,
        values=sub.echo(),
        crisis=crisis,
        session=None,
        nonce="n",
        criteria=criteria(sub.assessment),
        **form_context(crisis),
        **PAGE,
    )


def hidden(html: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html))


def test_the_confirmation_shows_and_carries_the_governance_inputs() -> None:
    crisis = a_status([], exercise=True).crisis
    link = read(
        FORMS[Action.link_protocol], FILLED | {"name": "a national plan"}, None, COORDINATOR
    )
    html = confirm_html(link, crisis)
    facts = text_of(html.split('id="submitted"')[1].split("</dl>")[0])
    assert "Protocol Christchurch Call crisis response protocol" in facts
    assert "Reference CC-2026-7 Activated at 2026-03-15 01:40:00 UTC Name a national plan" in facts
    assert hidden(html) == {
        "csrf": "token",
        "confirmed": "yes",
        "nonce": "n",
        "protocol": "christchurch_call",
        "reference": "CC-2026-7",
        "activated_at": "2026-03-15T01:40:00",
        "name": "a national plan",
        "reason": "because",
    }
    assert 'id="exercise"' in html, "an exercise says so before anything is confirmed"

    threat = read(
        FORMS[Action.flag_threat], {"text": "tonight", "member_states": "fr x1"}, None, COORDINATOR
    )
    html = confirm_html(threat, crisis)
    assert "confirmed" not in hidden(html), "nothing to confirm while something is wrong"
    assert 'name="member_states" placeholder="FR BE" value="FR X1"' in html
    assert "What is known of the threat to life" in html
    assert '<textarea name="text" rows="4" required>tonight</textarea>' in html
    assert 'id="review-again"' in html

    suspend = read(FORMS[Action.suspend_platform], FILLED, None, COORDINATOR)
    html = confirm_html(suspend, crisis)
    assert "Platform choosy" in text_of(html)
    assert hidden(html)["platform"] == "choosy"


# ---- the incident page: the situation, who takes part, exercises ---------------------------

AT = datetime(2026, 3, 15, 2, 0, tzinfo=UTC)


def a_row(
    seq: int, kind: DecisionKind, reason: str | None = None, by: Actor = COORDINATOR, **inputs: Any
) -> LedgerRow:
    decision = Decision(
        decision_id=f"inc-1/{seq}",
        incident_id="inc-1",
        actor=by,
        kind=kind,
        reason=reason,
        inputs=inputs,
        at=AT + timedelta(minutes=seq),
    )
    return LedgerRow(incident_id="inc-1", seq=seq, decision=decision, prev_hash="0", hash="1")


LINK = LinkedProtocol(
    protocol=LinkedProtocolKind.gifct_cip, reference="CIP-14", activated_at=AT - timedelta(hours=1)
)
COURSE_ROWS = [
    a_row(1, DecisionKind.activated, "criteria met", platforms=["fastbook", "slowtube"]),
    a_row(2, DecisionKind.situation_updated, text="The attacker is in custody."),
    a_row(
        3,
        DecisionKind.imminent_threat_flagged,
        by=MEMBER_STATE,
        member_states=["FR", "BE"],
        text="A second attack tonight.",
    ),
    a_row(4, DecisionKind.protocol_linked, link=LINK.model_dump(mode="json")),
    a_row(5, DecisionKind.platform_joined, platform="choosy", back=False),
    a_row(
        6,
        DecisionKind.platform_suspended,
        "its takedown service is compromised",
        platform="slowtube",
    ),
    a_row(7, DecisionKind.clocks_set, "the platforms are swamped", changes={"act_within": "45m"}),
    a_row(
        8,
        DecisionKind.activation_expiring,
        "the activation lapses at 2026-03-17 02:00 UTC unless renewed",
        by=SYSTEM,
        expires="2026-03-17T02:00:00+00:00",
    ),
    a_row(
        9, DecisionKind.activation_renewed, "still spreading", expires="2026-03-19T02:09:00+00:00"
    ),
    a_row(
        10,
        DecisionKind.de_escalated,
        "the activation lapsed: 2d without renewal",
        by=SYSTEM,
        lapsed=True,
        withdraw_open_tasks=False,
    ),
]


def test_every_decision_of_an_incidents_course_is_in_its_timeline_or_its_situation_log() -> None:
    assert set(PHASE_OF) | set(GOVERNANCE) == COURSE
    assert not set(PHASE_OF) & set(GOVERNANCE)


def test_the_situation_log_says_what_happened_newest_first() -> None:
    log = situation(COURSE_ROWS)
    assert [(h.seq, h.label) for h in log] == [
        (10, "Activation lapsed"),
        (9, "Activation renewed"),
        (8, "Activation lapsing"),
        (7, "Clocks set"),
        (6, "Platform suspended"),
        (5, "Platform brought in"),
        (4, "Protocol linked"),
        (3, "Imminent threat to life"),
        (2, "Situational update"),
    ], "the activation itself is on the phase timeline"
    html = templates.get_template("_governance.html").render(
        situation=log, crisis=a_status([], linked=[LINK]).crisis, protocols=PROTOCOL_NAMES
    )
    items = {
        int(seq): text_of(body)
        for seq, body in re.findall(r'data-seq="(\d+)">(.*?)</li>', html, re.DOTALL)
    }
    said = {
        2: "Situational update 2026-03-15 02:02:00 UTC by eu-iru The attacker is in custody.",
        3: "Imminent threat to life 2026-03-15 02:03:00 UTC by fr-pharos A second attack"
        " tonight. Member States concerned: FR, BE",
        4: "Protocol linked 2026-03-15 02:04:00 UTC by eu-iru GIFCT Content Incident Protocol"
        " CIP-14",
        5: "Platform brought in 2026-03-15 02:05:00 UTC by eu-iru choosy",
        6: "Platform suspended 2026-03-15 02:06:00 UTC by eu-iru slowtube its takedown service"
        " is compromised",
        7: "Clocks set 2026-03-15 02:07:00 UTC by eu-iru act within: 45m the platforms are swamped",
        8: "Activation lapsing 2026-03-15 02:08:00 UTC by eucp the activation lapses at"
        " 2026-03-17 02:00 UTC unless renewed",
        9: "Activation renewed 2026-03-15 02:09:00 UTC by eu-iru until 2026-03-19 02:09:00 UTC"
        " still spreading",
        10: "Activation lapsed 2026-03-15 02:10:00 UTC by eucp the crisis de-escalated by itself"
        " the activation lapsed: 2d without renewal",
    }
    assert items == said
    linked = text_of(html.split('data-linked="CIP-14"')[1].split("</tr>")[0])
    assert linked == "> GIFCT Content Incident Protocol CIP-14 2026-03-15 01:00:00 UTC"
    quiet = templates.get_template("_governance.html").render(
        situation=[], crisis=a_status([]).crisis, protocols=PROTOCOL_NAMES
    )
    assert "No situational update" in quiet and "No other protocol linked" in quiet


def test_the_platforms_say_who_is_suspended_and_why_and_who_joined_later() -> None:
    status = a_status([], platforms=["fastbook", "slowtube", "choosy"], suspended=["slowtube"])
    rows = {r.platform_id: r for r in platform_rows(status, None, COURSE_ROWS)}
    assert rows["fastbook"].suspended is None and rows["fastbook"].joined is None
    suspended = rows["slowtube"].suspended
    assert suspended is not None and suspended.reason == "its takedown service is compromised"
    assert rows["choosy"].joined is not None and rows["choosy"].joined.by == COORDINATOR.id
    html = templates.get_template("_platforms.html").render(platforms=list(rows.values()))
    cells = dict(re.findall(r'<tr data-platform="([^"]+)"[^>]*>\s*<td>(.*?)</td>', html, re.DOTALL))
    assert text_of(cells["slowtube"]) == (
        "slowtube suspended 2026-03-15 02:06:00 UTC by eu-iru: its takedown service is compromised"
    )
    assert text_of(cells["choosy"]) == "choosy joined later 2026-03-15 02:05:00 UTC by eu-iru"
    assert text_of(cells["fastbook"]) == "fastbook"
    # the status is read live, the ledger at most every few seconds: suspended all the same
    [early] = platform_rows(a_status([], platforms=["slowtube"], suspended=["slowtube"]), None)
    assert early.suspended is not None and early.suspended.at is None


def test_an_exercise_is_marked_on_its_page_and_in_the_list() -> None:
    drill = a_status([], exercise=True)
    assert 'id="exercise"' in templates.get_template("_exercise.html").render(crisis=drill.crisis)
    real = a_status([])
    assert templates.get_template("_exercise.html").render(crisis=real.crisis).strip() == ""
    rows = [
        incident_row(Listed("inc-1", "running", RECEIVED, drill)),
        incident_row(Listed("inc-2", "running", RECEIVED, real)),
        incident_row(Listed("inc-3", "running", RECEIVED, None, exercise=True)),  # unreadable
    ]
    assert [r.exercise for r in rows] == [True, False, True]
    html = templates.get_template("_incident_rows.html").render(rows=rows, now=RECEIVED)
    marked = re.findall(r'data-incident="([^"]+)">(?:(?!</tr>).)*flag-exercise', html, re.DOTALL)
    assert marked == ["inc-1", "inc-3"]

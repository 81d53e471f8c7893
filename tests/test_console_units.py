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
from eucp.console.actions import FORMS, read_identifiers
from eucp.console.csrf import Csrf, CsrfRefused
from eucp.console.routes import PREFIX, set_cookie, templates
from eucp.console.session import Sessions, SignInRefused, authenticate
from eucp.console.views import BAR_ORDER, order_rows, platform_rows, span
from eucp.protocol.actions import Action
from eucp.protocol.identifiers import HashIdentifier, UrlIdentifier
from eucp.protocol.orders import (
    OrderRecord,
    ScrutinyDecision,
    ScrutinyOutcome,
    ScrutinyRequest,
    ScrutinyStage,
)
from eucp.protocol.phases import Phase
from eucp.protocol.state import CrisisStatus, IncidentStatus, PhaseChange, PlatformSummary
from eucp.protocol.tasks import TaskState
from eucp.runtime.tokens import TokenStore
from tests.conftest import AUDITOR, COORDINATOR, FASTBOOK, REGISTRY


def a_request(scheme: str = "http") -> Request:
    scope = {"type": "http", "scheme": scheme, "server": ("eucp.example", 443), "path": "/"}
    return Request(scope | {"headers": [], "client": ("127.0.0.1", 1)})


def a_gatekeeper(tmp_path: Path) -> Gatekeeper:
    return Gatekeeper(
        TokenStore(tmp_path / "tokens.json"),
        failures=RateLimiter(rate=1, burst=100),
        requests=RateLimiter(rate=100, burst=100),
    )


def test_a_csrf_token_belongs_to_one_cookie() -> None:
    csrf = Csrf()
    token = csrf.token("cookie-a")
    csrf.check("cookie-a", token)
    for cookie, sent in (("cookie-b", token), ("cookie-a", ""), (None, token), ("cookie-a", None)):
        with pytest.raises(CsrfRefused):
            csrf.check(cookie, sent)
    assert Csrf().token("cookie-a") != token, "each process has a key of its own"


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
        clock=lambda: now[0], idle=timedelta(minutes=30), lifetime=timedelta(hours=1)
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
    orders: list[OrderRecord], by_state: dict[TaskState, int] | None = None
) -> IncidentStatus:
    crisis = CrisisStatus(
        incident_id="inc-1",
        title="Attack video",
        phase=Phase.active,
        phases=[PhaseChange(phase=Phase.reported, at=RECEIVED, by="eu-iru")],
        assessment=None,
        assessment_overdue=False,
        platforms=["choosy"],
        items=7,
        false_positives=[],
        review_inputs=0,
        decisions=12,
        finals={},
        orders=orders,
    )
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

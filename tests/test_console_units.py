"""The console's pure parts without a browser: CSRF tokens, sessions, pasted identifiers."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fastapi import Request, Response

from eucp.api.auth import Gatekeeper
from eucp.api.limits import RateLimiter
from eucp.console.actions import read_identifiers
from eucp.console.csrf import Csrf, CsrfRefused
from eucp.console.routes import set_cookie
from eucp.console.session import Sessions, SignInRefused, authenticate
from eucp.console.views import span
from eucp.protocol.identifiers import HashIdentifier, UrlIdentifier
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

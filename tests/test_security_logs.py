"""Secrets never reach a log line: whatever eucp or a library logs by mistake (an Authorization
header, a token, a webhook secret, an SMTP password, a codec key, credentials in a URL) is
written as `[redacted]`, in JSON and console lines, in tracebacks too. What ops need to follow a
crisis is there: the API's lines name the incident, the participant and the task ids."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st

from eucp.runtime import logs
from eucp.runtime.logs import REDACTED, redact
from tests.conftest import FASTBOOK
from tests.http_steps import Api
from tests.test_api import (
    an_active_incident,
    api,  # noqa: F401  (the fixture)
)

TOKEN = "eucp_" + "Zx9" * 14 + "q"
SECRETS = {
    "token": TOKEN,
    "webhook_secret": "whsec-platform-a-7f3e",
    "smtp_password": "smtp-pass-91b2",
    "codec_keys": "k1:c2VjcmV0LWtleS1ieXRlcw==",
    "operator_token": "op-token-55d0",
}


@pytest.fixture
def configured() -> Iterator[None]:
    """`logs.configure` for one test; the root handlers and structlog's config put back after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def test_values_under_credential_keys_are_redacted_at_any_depth() -> None:
    line = redact(
        {
            **SECRETS,
            "headers": {"Authorization": f"Bearer {TOKEN}", "X-Api-Key": "k-1", "Accept": "*/*"},
            "contacts": [{"id": "fastbook", "webhook_secret": "nested-secret"}],
            "incident_id": "inc-1",
            "task_id": "fastbook-000001",
            "idempotency_key": "wave-2",
        }
    )
    for key in SECRETS:
        assert line[key] == REDACTED, key
    assert line["headers"] == {
        "Authorization": REDACTED,
        "X-Api-Key": REDACTED,
        "Accept": "*/*",
    }
    assert line["contacts"] == [{"id": "fastbook", "webhook_secret": REDACTED}]
    # what ops need to follow a crisis stays readable
    assert (line["incident_id"], line["task_id"], line["idempotency_key"]) == (
        "inc-1",
        "fastbook-000001",
        "wave-2",
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"Authorization: Bearer {TOKEN}", f"Authorization: Bearer {REDACTED}"),
        ("auth header was Basic dXNlcjpwYXNz", f"auth header was Basic {REDACTED}"),
        (f"token {TOKEN} refused", f"token {REDACTED} refused"),
        (
            "POST https://eucp:hunter2@hooks.example.test/in?token=abc&x=1 failed",
            f"POST https://{REDACTED}@hooks.example.test/in?token={REDACTED}&x=1 failed",
        ),
        ("GET /cb?sig=00ff&api_key=zz", f"GET /cb?sig={REDACTED}&api_key={REDACTED}"),
        ("a basic check of 3 identifiers", "a basic check of 3 identifiers"),
        ("send 'Authorization: Bearer <token>'", "send 'Authorization: Bearer <token>'"),
    ],
)
def test_credentials_inside_text_are_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_a_json_line_with_secrets_comes_out_redacted(
    configured: None, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.configure(json=True)
    structlog.get_logger("eucp.test").warning(
        f"delivery refused for Bearer {TOKEN}",
        incident_id="inc-7",
        headers={"Authorization": f"Bearer {TOKEN}"},
        **SECRETS,
    )
    # a library logging through the standard library: the same rules apply
    logging.getLogger("httpx").warning(
        "HTTP Request: POST %s", "https://u:p4ss@hook.example.test/x?secret=s3"
    )
    try:
        raise RuntimeError(f"SMTP AUTH failed with password={SECRETS['smtp_password']}")
    except RuntimeError:
        structlog.get_logger("eucp.test").exception("mail failed", smtp_password="x")
    err = capsys.readouterr().err
    lines = [json.loads(line) for line in err.splitlines()]
    assert len(lines) == 3
    for secret in [*SECRETS.values(), "p4ss", "s3", "hunter2"]:
        assert secret not in err, secret
    first = lines[0]
    assert first["incident_id"] == "inc-7"
    assert first["event"] == f"delivery refused for Bearer {REDACTED}"
    assert first["headers"] == {"Authorization": REDACTED}
    assert first["webhook_secret"] == REDACTED
    assert lines[1]["event"] == (
        f"HTTP Request: POST https://{REDACTED}@hook.example.test/x?secret={REDACTED}"
    )
    assert "RuntimeError" in lines[2]["exception"]  # the traceback is kept, as text, redacted


def test_a_console_line_is_redacted_too(
    configured: None, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.configure(json=False)
    structlog.get_logger("eucp.test").info("signed in", token=TOKEN, webhook_secret="whsec-1")
    err = capsys.readouterr().err
    assert TOKEN not in err and "whsec-1" not in err
    assert f"token={REDACTED}" in err


async def test_api_lines_carry_the_incident_participant_and_task_ids_never_the_token(
    api: Api,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    incident = await an_active_incident(api)
    answer = await api.as_(FASTBOOK.id).post(
        f"/v1/incidents/{incident}/tasks/reports",
        json={"reports": [{"task_id": "fastbook-000001", "outcome": "acknowledged"}]},
    )
    assert answer.status_code == 200
    captured = capsys.readouterr()
    lines = (caplog.text + captured.out + captured.err).splitlines()
    reported = [line for line in lines if "tasks reported" in line and incident in line]
    assert reported and "fastbook-000001" in reported[0]
    requests = [line for line in lines if "/v1/incidents/{incident_id}/tasks/reports" in line]
    assert any(incident in line and FASTBOOK.id in line and "200" in line for line in requests)
    for token in api.tokens.values():
        assert token not in "\n".join(lines)


@given(st.text(alphabet=st.sampled_from(list("ab =:/@eucp_BearerEARsic9-.\n")), max_size=80))
def test_the_quick_check_skips_only_text_no_pattern_can_match(text: str) -> None:
    """Text without any trigger is returned as is; the result is what the patterns give."""
    expected = text
    for pattern, replacement in logs._SECRET_TEXT:
        expected = pattern.sub(replacement, expected)
    assert logs.redact(text) == expected

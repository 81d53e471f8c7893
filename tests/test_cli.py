"""The `eucp` command as coordinators, platforms and operators use it: the installed entry point
in a subprocess (its own environment, real exit codes) against the real API on loopback, a real
worker and a real Temporal dev server."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from eucp.cli import main
from eucp.client import ApiClient
from eucp.protocol.actions import Action
from eucp.protocol.identifiers import HashIdentifier, UrlIdentifier, parse_identifier
from eucp.protocol.phases import Phase
from eucp.protocol.refusal import Refusal
from eucp.protocol.state import Answer, ReportAnswer
from eucp.protocol.tasks import Outcome, TaskReport
from eucp.runtime.settings import Settings
from eucp.runtime.tokens import TokenStore
from tests.conftest import AUDITOR, COORDINATOR, FASTBOOK, Protocol
from tests.http_steps import issue_tokens, serving

SCRIPT = Path(sys.executable).with_name("eucp")
UNREACHABLE = "http://127.0.0.1:9"  # discard port: nothing answers
SHA = "ab" * 32
PDQ = "3304eabff53606fcdedeb8e9e457fb723d45caed210393fad290662bc87c8b2d"


@dataclass
class Ran:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


class Eucp:
    """Runs `eucp ...` as one participant (its token in EUCP_TOKEN), with this test's files."""

    def __init__(self, settings: Settings, tokens: dict[str, str]) -> None:
        self.settings = settings
        self.tokens = tokens
        self.base = UNREACHABLE

    def env(self, token: str | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EUCP_")}
        return env | {
            "EUCP_API_URL": self.base,
            "EUCP_TOKEN": token or "",
            "EUCP_REGISTRY_PATH": str(self.settings.registry_path),
            "EUCP_TOKENS_PATH": str(self.settings.tokens_path),
            "EUCP_LOG_JSON": "false",
        }

    async def __call__(
        self, *args: str, as_: str = COORDINATOR.id, token: str | None = None, stdin: str = ""
    ) -> Ran:
        command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "eucp.cli"]
        proc = await asyncio.create_subprocess_exec(
            *command,
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.env(token if token is not None else self.tokens.get(as_)),
        )
        out, err = await proc.communicate(stdin.encode())
        assert proc.returncode is not None
        return Ran(proc.returncode, out.decode(), err.decode())

    def ok(self, ran: Ran) -> Ran:
        assert ran.code == 0, ran
        return ran


@pytest.fixture
def local(eucp: Protocol, tmp_path: Path) -> Eucp:
    """`eucp` with this test's registry and token files, the API not yet served."""
    settings = eucp.settings.model_copy(update={"tokens_path": tmp_path / "tokens.json"})
    return Eucp(settings, issue_tokens(settings))


@pytest.fixture
async def eucp_cli(eucp: Protocol, local: Eucp) -> AsyncIterator[Eucp]:
    """`eucp` against the API served on loopback."""
    async with serving(local.settings, eucp.env.client) as base:
        local.base = base
        yield local


IDENTIFIERS = f"""# wave 1
https://video.example.test/watch/000001
sha256:{SHA}

pdq:{PDQ}:95
"""


async def a_reported_incident(eucp: Eucp) -> str:
    reported = eucp.ok(
        await eucp(
            "crisis", "report", "--json",
            "--title", "Livestreamed attack",
            "--place", "outside the EU",
            "--event-started", "2026-03-15T01:40:00Z",
            "--reporter", COORDINATOR.id,
            "--member-state", "fr",
        )
    )  # fmt: skip
    return str(reported.json()["incident_id"])


async def an_assessed_incident(eucp: Eucp) -> str:
    incident = await a_reported_incident(eucp)
    criteria = [
        f"--criterion={name}=met:seen by the EU IRU"
        for name in (
            "real_world_event",
            "depicts_harm",
            "intimidation",
            "tve_link",
            "multi_platform_virality",
        )
    ]
    assessed = eucp.ok(await eucp("crisis", "assess", incident, *criteria))
    assert "assessing" in assessed.out
    return incident


async def test_a_crisis_from_report_to_removals(eucp_cli: Eucp, tmp_path: Path) -> None:
    eucp = eucp_cli
    incident = await an_assessed_incident(eucp)

    bad = tmp_path / "ids.txt"
    bad.write_text(IDENTIFIERS + "sha256:abc\nftp://files.example.test/x\n")
    refused = await eucp("crisis", "activate", incident, "--reason", "all met", "--from", str(bad))
    assert refused.code == 2, refused
    assert "2 bad identifiers, nothing was sent" in refused.err
    assert f"{bad} line 6: value: a sha256 hash is 64 hex digits, got 3" in refused.err
    assert f"{bad} line 7: expected an http(s) URL" in refused.err
    status = eucp.ok(await eucp("crisis", "status", incident, "--json")).json()
    assert (status["crisis"]["phase"], status["crisis"]["items"]) == ("assessing", 0)

    activated = await eucp(
        "crisis", "activate", incident, "--reason", "all five criteria met", "--from", "-",
        "--json", stdin=IDENTIFIERS,
    )  # fmt: skip
    assert eucp.ok(activated).json()["accepted_items"] == [1, 2, 3]
    added = eucp.ok(await eucp("crisis", "add-content", incident, f"md5:{'cd' * 16}"))
    assert "accepted items  4" in added.out

    fastbook = FASTBOOK.id
    page = eucp.ok(await eucp("task", "list", incident, "--json", as_=fastbook)).json()
    assert page["total"] == 4
    assert {t["state"] for t in page["tasks"]} == {"assigned"}
    listed = eucp.ok(await eucp("task", "list", incident, as_=fastbook)).out
    assert "fastbook-000001" in listed
    assert "4 of 4 tasks" in listed

    acked = eucp.ok(await eucp("task", "ack", incident, "--all-assigned", as_=fastbook))
    assert "changed 4, unchanged 0, refused 0" in acked.out
    removed = await eucp(
        "task", "report", incident, "--outcome", "removed", "fastbook-000001",
        "fastbook-000002", "--json", as_=fastbook,
    )  # fmt: skip
    assert eucp.ok(removed).json()["changed"] == ["fastbook-000001", "fastbook-000002"]
    declined = await eucp(
        "task", "report", incident, "--outcome", "declined", "--from", "-",
        "--reason", "not on our service", as_=fastbook, stdin="fastbook-000003\n",
    )  # fmt: skip
    assert "changed 1" in eucp.ok(declined).out

    status = eucp.ok(await eucp("crisis", "status", incident, "--json")).json()
    assert status["crisis"]["phase"] == "active"
    assert status["platforms"]["fastbook"]["by_state"] == {
        "removed": 2,
        "declined": 1,
        "acknowledged": 1,
    }
    human = eucp.ok(await eucp("crisis", "status", incident)).out
    assert "active since" in human
    assert "PLATFORM" in human
    assert "fastbook" in human
    own = eucp.ok(await eucp("crisis", "status", incident, "--json", as_=fastbook)).json()
    assert own["tasks"]["by_state"]["removed"] == 2  # a platform sees its own figures only
    listing = eucp.ok(await eucp("crisis", "list")).out
    assert incident in listing

    rows = eucp.ok(await eucp("crisis", "decisions", incident, "--all", "--json", as_=AUDITOR.id))
    kinds = [r["decision"]["kind"] for r in rows.json()]
    assert kinds[:4] == ["reported", "assessed", "activated", "content_added"]
    assert kinds.count("task_removed") == 2


async def test_exit_codes_scripts_can_trust(eucp_cli: Eucp) -> None:
    eucp = eucp_cli
    incident = await an_assessed_incident(eucp)

    no_token = await eucp("crisis", "list", token="")
    assert no_token.code == 3
    assert "EUCP_TOKEN" in no_token.err
    forged = await eucp("crisis", "list", token="eucp_forged")
    assert forged.code == 3
    assert "unknown or rotated token" in forged.err
    assert "eucp participants add" in forged.err

    too_early = await eucp("crisis", "close", incident, "--json")  # 409: not in review
    assert too_early.code == 1
    error = json.loads(too_early.err)
    assert error["error"]["refusal"] == "conflict"
    assert error["error"]["rule"] == "close is allowed in review, not in assessing"
    forbidden = await eucp("crisis", "decline", incident, "--reason", "x", as_=FASTBOOK.id)
    assert forbidden.code == 1  # 403
    assert "forbidden" in forbidden.err
    missing = await eucp("crisis", "status", "inc-nope")
    assert missing.code == 1  # 404
    assert "eucp crisis list" in missing.err

    unnamed = await eucp("task", "list", incident)  # 422: staff name the platform
    assert unnamed.code == 2
    assert "platform: name the platform whose tasks to list" in unnamed.err
    no_reason = await eucp("crisis", "decline", incident)  # refused before sending
    assert no_reason.code == 2
    assert "--reason" in no_reason.err

    eucp.base = UNREACHABLE
    down = await eucp("crisis", "status", incident)
    assert down.code == 3
    assert "cannot reach the eucp API" in down.err


async def test_operators_add_participants_and_rotate_tokens(
    eucp: Protocol, local: Eucp, tmp_path: Path
) -> None:
    registry = local.settings.registry_path
    added = local.ok(
        await local(
            "participants", "add", "videoshare", "--kind", "platform", "--name", "VideoShare",
            "--webhook-url", "https://hooks.videoshare.example/eucp",
            "--webhook-secret", "a-long-random-shared-secret", "--json",
        )
    )  # fmt: skip
    first = added.json()["token"]
    assert first.startswith("eucp_")
    assert added.json()["participant"]["channels"] == ["webhook", "log"]
    entry = next(
        p for p in json.loads(registry.read_text())["participants"] if p["id"] == "videoshare"
    )
    assert entry["webhook_secret"] == "a-long-random-shared-secret"  # kept, not masked
    again = await local("participants", "add", "videoshare", "--kind", "platform", "--name", "V")
    assert again.code == 1
    assert "already registered" in again.err

    listed = local.ok(await local("participants", "list"))
    assert "videoshare" in listed.out
    assert "a-long-random-shared-secret" not in listed.out
    assert first not in listed.out

    report = ["crisis", "report", "--title", "Copies seen", "--place", "online"]
    report += ["--reporter", "videoshare"]
    async with serving(local.settings, eucp.env.client) as base:  # it reads the new registry
        local.base = base
        local.ok(await local(*report, token=first))  # a platform may report a crisis
        rotated = local.ok(await local("participants", "rotate-token", "videoshare"))
        second = rotated.out.strip().splitlines()[-1]
        assert second.startswith("eucp_")
        assert second != first
        old = await local(*report, token=first)
        assert old.code == 3
        assert "unknown or rotated token" in old.err
        local.ok(await local(*report, token=second))

    fresh = tmp_path / "new" / "participants.json"
    local.settings = local.settings.model_copy(update={"registry_path": fresh})
    local.ok(await local("participants", "add", "eu-iru", "--kind", "coordinator", "--name", "X"))
    assert json.loads(fresh.read_text())["participants"][0]["id"] == "eu-iru"
    unknown = await local("participants", "rotate-token", "nobody")
    assert unknown.code == 1


# ---- without the API: input checks and the client ------------------------------------------


def test_identifiers_are_parsed_or_refused_with_the_reason() -> None:
    assert parse_identifier("https://x.example/a") == UrlIdentifier(value="https://x.example/a")
    assert parse_identifier(f"SHA256:{SHA.upper()}") == HashIdentifier(
        algorithm="sha256", value=SHA
    )
    assert parse_identifier(f"pdq:{PDQ}:80").quality == 80  # type: ignore[union-attr]
    for text, reason in [
        (f"pdq:{PDQ}", "pdq:HEX:QUALITY"),
        (f"pdq:{PDQ}:101", "less than or equal to 100"),
        ("md5:xyz", "must be hexadecimal"),
        ("www.example.test/a", "expected an http(s) URL"),
        ("https://", "absolute http(s) URL"),
    ]:
        with pytest.raises(ValueError, match=re.escape(reason)):
            parse_identifier(text)


def test_input_is_checked_before_anything_is_sent(tmp_path: Path) -> None:
    env = {"EUCP_API_URL": UNREACHABLE, "EUCP_TOKEN": "eucp_x"}
    runner = CliRunner(env=env)
    bad_args = runner.invoke(
        main, ["crisis", "sightings", "inc-1", "https://ok.example/a", "md5:1"]
    )
    assert bad_args.exit_code == 2
    assert "argument 2: value: a md5 hash is 32 hex digits, got 1" in bad_args.stderr
    criterion = runner.invoke(main, ["crisis", "assess", "inc-1", "--criterion", "harm=met"])
    assert criterion.exit_code == 2
    assert "NAME one of real_world_event" in criterion.stderr
    late = runner.invoke(
        main, ["crisis", "report", "--title", "t", "--place", "p", "--reporter", "eu-iru",
               "--event-started", "2026-03-15T01:40:00"],
    )  # fmt: skip
    assert late.exit_code == 2
    assert "no time zone" in late.stderr
    pairing = runner.invoke(
        main, ["task", "report", "inc-1", "t-1", "--outcome", "removed", "--cannot-comply",
               "force_majeure", "--json"],
    )  # fmt: skip
    assert pairing.exit_code == 2
    assert json.loads(pairing.stderr)["exit_code"] == 2
    declined = runner.invoke(main, ["task", "report", "inc-1", "t-1", "--outcome", "declined"])
    assert declined.exit_code == 2
    assert "declining a task requires a reason" in declined.stderr
    webhook = runner.invoke(
        main,
        ["participants", "add", "v", "--kind", "platform", "--name", "V", "--webhook-url", "u"],
        env={"EUCP_REGISTRY_PATH": str(tmp_path / "r.json")},
    )
    assert webhook.exit_code == 2
    assert "webhook_secret is missing" in webhook.stderr
    assert not (tmp_path / "r.json").exists()


async def test_the_client_waits_out_429_and_raises_refusals() -> None:
    calls: list[httpx.Request] = []
    answer = Answer(phase=Phase.active).model_dump(mode="json")

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) < 3:
            return httpx.Response(429, headers={"Retry-After": "0"}, json={})
        if request.url.path.endswith("/closure"):
            error = {"field": "phase", "rule": "not yet", "refusal": "conflict"}
            return httpx.Response(409, json={"error": error})
        return httpx.Response(200, json=answer)

    async with ApiClient(
        "http://api.test", "tok", transport=httpx.MockTransport(handler)
    ) as client:
        done = await client.act("inc-1", Action.de_escalate, reason="over", idempotency_key="k-1")
        assert done.phase == "active"
        assert len(calls) == 3
        assert calls[-1].headers["Idempotency-Key"] == "k-1"
        assert calls[-1].headers["Authorization"] == "Bearer tok"
        assert json.loads(calls[-1].content) == {"reason": "over"}  # the body as given
        with pytest.raises(Refusal) as refused:
            await client.act("inc-1", Action.close)
        assert (refused.value.status, refused.value.kind) == (409, "conflict")


def test_tokens_file_is_the_one_the_api_reads(local: Eucp) -> None:
    assert TokenStore(local.settings.tokens_path).who(local.tokens[COORDINATOR.id]) == "eu-iru"


async def test_bulk_reports_go_in_batches_and_a_refusal_says_what_was_applied() -> None:
    keys: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        keys.append(request.headers.get("Idempotency-Key"))
        reports = json.loads(request.content)["reports"]
        if len(keys) == 3:
            error = {"field": "reports[0].task_id", "rule": "no such task", "refusal": "not_found"}
            return httpx.Response(404, json={"error": error})
        return httpx.Response(200, json={"changed": [r["task_id"] for r in reports]})

    reports = [TaskReport(task_id=f"t-{n}", outcome=Outcome.removed) for n in range(600)]
    async with ApiClient("http://api.test", "tok", transport=httpx.MockTransport(handler)) as api:
        with pytest.raises(Refusal) as refused:
            await api.report_tasks("inc-1", reports, idempotency_key="wave")
    assert keys == ["wave", "wave#1", "wave#2"]
    applied = refused.value.applied
    assert isinstance(applied, ReportAnswer)
    assert len(applied.changed) == 500


async def test_a_dropped_connection_is_retried_with_the_same_key() -> None:
    """A change the server may not have seen is sent again under the same Idempotency-Key,
    generated when the caller gave none, so the retry cannot apply it twice."""
    keys: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        keys.append(request.headers.get("Idempotency-Key"))
        if len(keys) == 1:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response")
        return httpx.Response(200, json={"phase": "active", "decisions": ["d-1"]})

    async with ApiClient(
        "http://api.test", "tok", transport=httpx.MockTransport(handler)
    ) as client:
        answer = await client.act(
            "inc-1", Action.report_sightings, identifiers=[UrlIdentifier(value="https://a.test/1")]
        )
    assert answer.decisions == ["d-1"]
    assert len(keys) == 2 and keys[0] == keys[1] and keys[0] is not None

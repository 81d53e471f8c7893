"""`eucp exercise run` as an exercise lead runs it: a scenario file of their own, played against
a stack already running (worker and API processes), one platform simulated and brought in
mid-crisis, another playing itself on its own webhook."""

from __future__ import annotations

import asyncio
import json
import os
import re
import uuid
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from eucp.client import ApiClient
from eucp.demo import presets
from eucp.demo.presets import AUDITOR, COORDINATOR, SignedWebhook
from eucp.protocol.decisions import DecisionKind
from eucp.runtime.devserver import wait_for_port
from eucp.runtime.registry import Registry
from eucp.runtime.stack import EUCP, Stack, free_port
from eucp.runtime.tokens import TokenStore
from tests.receivers import SECRET, Receiver
from tests.test_demo import started_with

SIMULATED, THEMSELVES = "simbook", "deskbook"


def url(platform: str, n: int) -> dict[str, str]:
    return {"kind": "url", "value": f"https://{platform}.example.test/v/{n}", "platform": platform}


def md5(n: int) -> dict[str, str]:  # for every platform
    return {"kind": "hash", "algorithm": "md5", "value": f"{n:032x}"}


def behaviour(platform: str, name: str) -> dict[str, object]:
    return {
        "id": platform,
        "name": name,
        "ack_median_min": 1,
        "act_median_min": 2,
        "decline_rate": 0.0,
        "misses_sla": False,
    }


SCENARIO = {
    "name": "drill",
    "pdq_match_distance": 31,
    "pdq_min_quality": 50,
    "platforms": [behaviour(SIMULATED, "Simbook"), behaviour(THEMSELVES, "Deskbook")],
    "report": {
        "title": "Drill: livestreamed attack",
        "reported_by": COORDINATOR,
        "event_started_minutes_before_report": 20,
        "location": "outside the EU",
        "affected_member_states": [],
        "summary": "A table-top drill.",
    },
    "assessment": dict.fromkeys(
        ["real_world_event", "depicts_harm", "intimidation", "tve_link", "multi_platform_virality"],
        "met",
    ),
    "waves": [
        {"at_minutes": 10, "identifiers": [url(SIMULATED, 1), url(THEMSELVES, 2), md5(3)]},
        {"at_minutes": 14, "identifiers": [md5(4)]},
    ],
    "joins": [{"at_minutes": 12, "platform": SIMULATED, "reason": "copies found on Simbook"}],
    "sightings": [{"at_minutes": 13, "by": SIMULATED, "identifier": url(SIMULATED, 5)}],
}


async def test_an_exercise_runs_a_scenario_file_on_a_running_stack(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    registry_path, tokens_path = tmp_path / "participants.json", tmp_path / "tokens.json"
    scenario = tmp_path / "drill.json"
    scenario.write_text(json.dumps(SCENARIO))
    api_port = free_port()
    api = f"http://127.0.0.1:{api_port}"
    mark = f"exercise-{uuid.uuid4().hex}"  # in every process the exercise starts
    stack_env = {
        "EUCP_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "EUCP_TASK_QUEUE": f"eucp-test-{uuid.uuid4().hex[:8]}",
        "EUCP_REGISTRY_PATH": str(registry_path),
        "EUCP_TOKENS_PATH": str(tokens_path),
        "EUCP_LEDGER_URL": f"sqlite:///{tmp_path / 'ledger.sqlite3'}",
        "EUCP_REPORTS_DIR": str(tmp_path / "reports"),
        "EUCP_VAR_DIR": str(tmp_path),
        # the protocol's clocks, scaled by --speed: an act deadline of 3 s, escalations 1.5 s
        "EUCP_SLA__ACT_WITHIN": "PT30M",
    }
    with Receiver() as desk, Stack(tmp_path / "logs", stack_env) as stack:
        # deskbook plays itself on its own webhook; simbook is not registered: the exercise
        # registers its simulator for the time of the exercise
        presets.registry({THEMSELVES: SignedWebhook(desk.url, SECRET)}).save(registry_path)
        stack.start("worker", [EUCP, "worker"])
        stack.start("api", [EUCP, "api"], {"EUCP_API_PORT": str(api_port)})
        await wait_for_port("127.0.0.1", api_port)

        env = {**os.environ, **stack_env, "EUCP_API_URL": api, "EXERCISE_MARK": mark}
        env.pop("EUCP_TOKEN", None)
        proc = await asyncio.create_subprocess_exec(
            *[EUCP, "exercise", "run", str(scenario), "--speed", "0.1", "--platforms", SIMULATED],
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
        text = out.decode()
        assert proc.returncode == 0, text[-3000:]

        [incident] = re.findall(r"REPORT Drill: [a-z ]+: exercise (inc-[0-9a-f]+)", text)
        assert "EXERCISE drill: 2 platforms, 1 simulated, deskbook playing themselves" in text
        # brought in, it is given the open items meant for it: 1 (its own) and 3 (everyone's)
        assert f"JOIN   {SIMULATED} brought in: 2 open items (copies found on Simbook)" in text
        assert f"SLA    {THEMSELVES} still silent: escalated to the coordinators" in text
        report = (tmp_path / "reports" / incident / "report.html").resolve()
        assert f"REVIEW after-action report: {report}" in text
        assert report.exists()

        # read as the auditor: an exercise in the listings, finished; the join in the ledger
        async with ApiClient(api, TokenStore(tokens_path).issue(AUDITOR)) as auditor:
            [listed] = [i for i in await auditor.incidents() if i.incident_id == incident]
            assert (listed.exercise, listed.status) == (True, "completed")
            rows = await auditor.all_decisions(incident)
        [join] = [r.decision for r in rows if r.decision.kind is DecisionKind.platform_joined]
        assert (join.inputs["platform"], join.reason) == (SIMULATED, "copies found on Simbook")
        assert any(r.decision.kind is DecisionKind.sighting_reported for r in rows)

        # every notice the real platform received says it is an exercise
        notices = [json.loads(r.body) for r in desk.requests]
        assert "task_assigned" in {n["kind"] for n in notices}
        for request, notice in zip(desk.requests, notices, strict=True):
            request.verify()
            assert notice["summary"].startswith("EXERCISE: "), notice
            assert notice["data"]["exercise"] is True, notice

    # the simulator's registry entry is gone again, and nothing the exercise started runs on
    assert [c.id for c in Registry.load(registry_path).participants] == [
        COORDINATOR,
        AUDITOR,
        THEMSELVES,
    ]
    assert started_with(mark) == [], "the exercise left processes running"

"""PostgreSQL everywhere it is claimed: a crisis from report to closure with the worker, the HTTP
API and the auditor's tools (`eucp audit verify`, `replay`, `timeline`) all on one PostgreSQL
ledger, in a schema of its own per test so that other runs on the server never meet it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from pydantic import TypeAdapter

from chaos.postgres import ledger_url, schema
from eucp.protocol.decisions import DecisionKind, LedgerRow
from eucp.runtime.settings import Settings
from tests.conftest import AUDITOR, CHOOSY, COORDINATOR, FASTBOOK, Protocol, settings_in
from tests.http_steps import Api
from tests.protocol_steps import eventually
from tests.test_api import an_active_incident, api  # noqa: F401  (the fixture)
from tests.test_audit import Audit, problems, run_audit  # noqa: F401  (the fixture)

ITEMS = 3
ROWS = TypeAdapter(list[LedgerRow])


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    """The suite's settings with the ledger in PostgreSQL: the worker, the API and the audit
    all read them."""
    with schema("stack_test") as name:
        yield settings_in(tmp_path).model_copy(update={"ledger_url": ledger_url(name)})


async def tasks_of(http: Api, incident: str, platform_id: str) -> list[str]:
    """The platform's task ids, once the activation has reached it."""
    tasks = http.as_(platform_id)
    path = f"/v1/incidents/{incident}/tasks"

    async def held() -> bool:
        return bool((await tasks.get(path)).json()["total"] == ITEMS)

    await eventually(held)
    return [t["task_id"] for t in (await tasks.get(path)).json()["tasks"]]


async def a_platform_reports(
    http: Api,
    incident: str,
    platform_id: str,
    outcome: str,
    tasks: list[str],
    reason: str | None = None,
) -> None:
    """The platform reports `outcome` on `tasks` in one bulk request; each one changes."""
    reports = [{"task_id": t, "outcome": outcome, "reason": reason} for t in tasks]
    answer = await http.as_(platform_id).post(
        f"/v1/incidents/{incident}/tasks/reports", json={"reports": reports}
    )
    assert answer.status_code == 200 and len(answer.json()["changed"]) == len(tasks), answer.text


async def test_a_crisis_on_a_postgresql_ledger_is_recorded_served_and_audited(
    eucp: Protocol,
    api: Api,  # noqa: F811
    run_audit: Audit,  # noqa: F811
    tmp_path: Path,
) -> None:
    # a coordinator reports, assesses and activates over HTTP
    incident = await an_active_incident(api, n=ITEMS)
    # fastbook acknowledges and removes everything, choosy declines one item, slowtube is silent
    fastbook = await tasks_of(api, incident, FASTBOOK.id)
    await a_platform_reports(api, incident, FASTBOOK.id, "acknowledged", fastbook)
    await a_platform_reports(api, incident, FASTBOOK.id, "removed", fastbook)
    choosy = await tasks_of(api, incident, CHOOSY.id)
    await a_platform_reports(api, incident, CHOOSY.id, "declined", choosy[:1], "news reporting")
    # the coordinator winds down: the open tasks withdrawn, the review, the closure
    iru = api.as_(COORDINATOR.id)
    base = f"/v1/incidents/{incident}"
    for step, body in (
        ("de-escalation", {"reason": "re-uploads fell", "withdraw_open_tasks": True}),
        ("review", {}),
        ("closure", {"reason": "debrief held"}),
    ):
        answer = await iru.post(f"{base}/{step}", json=body)
        assert answer.status_code == 200, answer.text
    await eucp.incidents.result(incident)

    # an auditor reads the decisions over HTTP: the rows the worker wrote to PostgreSQL
    served = await api.as_(AUDITOR.id).get(f"{base}/decisions", params={"limit": 1000})
    rows = eucp.ledger.rows(incident)
    assert ROWS.validate_json(served.content) == rows
    kinds = Counter(r.decision.kind for r in rows)
    assert (kinds[DecisionKind.activated], kinds[DecisionKind.closed]) == (1, 1)
    assert kinds[DecisionKind.task_removed] == ITEMS and kinds[DecisionKind.task_declined] == 1
    # slowtube's tasks and choosy's other two, withdrawn at the de-escalation
    assert kinds[DecisionKind.task_withdrawn] == 2 * ITEMS - 1
    with psycopg.connect(eucp.settings.ledger_url) as server:
        stored = server.execute("SELECT count(*) FROM decisions WHERE incident_id = %s", [incident])
        assert stored.fetchone() == (len(rows),)
    assert not (tmp_path / "ledger.sqlite3").exists()  # nothing went to the default ledger

    # and verifies the chain, replays the histories and matches them with the ledger
    code, verify = await run_audit("verify", incident)
    assert code == 0 and verify["chain"]["rows_checked"] == len(rows), problems(verify)
    code, replay = await run_audit("replay", incident)
    assert code == 0 and all(r["divergence"] is None for r in replay["runs"]), problems(replay)
    code, timeline = await run_audit("timeline", incident)
    assert code == 0, problems(timeline)
    assert sorted(e["seq"] for e in timeline["entries"]) == [r.seq for r in rows]

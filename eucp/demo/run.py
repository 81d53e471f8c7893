"""`make demo`: a Christchurch-like crisis end to end, over real HTTP between processes.

It starts what it needs on the embedded default (the Temporal dev server on var/temporal.db
unless one already answers), a worker, the HTTP API and three reference platform receivers
(`simulate-platform`) with their own webhooks: Facebook answers fast, JustPaste.it misses its
deadlines and climbs the escalation ladder, Snap declines some voluntary tasks with a reason.
The coordinator reports, assesses, activates, adds the scenario's waves and the platforms
report sightings, all through the API; then de-escalation, review and closure. Scenario minutes
are compressed to seconds. Everything it started is stopped at the end.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

from eucp.client import ApiClient
from eucp.demo import presets
from eucp.demo.presets import COORDINATOR, SignedWebhook, compressed_clocks, simulator_webhook
from eucp.demo.scenario import Scenario, Sighting, Wave, load
from eucp.protocol.actions import Action
from eucp.protocol.decisions import DecisionKind
from eucp.protocol.identifiers import UrlIdentifier
from eucp.protocol.incident import Assessment, Criterion, IncidentReport
from eucp.protocol.orders import ScrutinyOutcome
from eucp.protocol.phases import Phase
from eucp.protocol.state import IncidentStatus
from eucp.protocol.tasks import RESOLVED, OrderDetails
from eucp.runtime.devserver import embedded_temporal, wait_for_port
from eucp.runtime.ledger import verify_chain
from eucp.runtime.registry import Registry
from eucp.runtime.settings import Settings
from eucp.runtime.stack import EUCP, Stack, free_port
from eucp.runtime.tokens import TokenStore

SECONDS_PER_SCENARIO_MINUTE = 0.05
SLA = compressed_clocks(acknowledge=3, act=8, assessment=300, review=120, deliver=30)
# how each simulated platform answers (eucp simulate-platform options)
BEHAVIOURS = {
    "facebook": ["--ack-after", "0.3", "--act-after", "1.0"],
    "justpasteit": ["--miss-sla", "--late-by", "4"],
    "snap": ["--ack-after", "0.6", "--act-after", "2.0", "--decline-rate", "0.15", "--seed", "7"],
}


# a French authority's removal order to one platform, among the voluntary referrals (TCO Art. 3)
AUTHORITY = "fr-pharos"
# the competent authority of the platform's host Member State: sent a copy, it scrutinises
HOST_AUTHORITY = "ie-cnam"
ORDERED = UrlIdentifier(
    value="https://facebook.example.test/watch/attack-live", platform="facebook"
)
ORDER = OrderDetails(
    issuing_authority="OCLCTIC (Pharos)",
    addressee="Facebook Ireland Ltd",
    platform="facebook",
    contact_point="legal@facebook.example.test",
    host_member_state="IE",
    issued_at=datetime(2019, 3, 15, 2, 30, tzinfo=UTC),
    reference="FR-2019-0315-01",
    reasons="terrorist content (Art. 2(7)): the attacker's livestream",
)


def say(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')}  {message}", flush=True)


def registry(webhooks: Mapping[str, SignedWebhook] | None = None) -> Registry:
    """The demo's participants. Each platform's webhook is its simulator's; without webhooks
    (a starter registry for `eucp up`) notifications go to the log."""
    scenario = load()
    return presets.registry(
        {pid: (webhooks or {}).get(pid) for pid in BEHAVIOURS},
        member_states={"nz-dia": "NZ", AUTHORITY: "FR", HOST_AUTHORITY: "IE"},
        names={
            "nz-dia": "Affected government contact",
            AUTHORITY: "OCLCTIC (Pharos)",
            HOST_AUTHORITY: "Coimisiún na Meán",
        }
        | {pid: scenario.platform(pid).name for pid in BEHAVIOURS},
    )


def report_of(scenario: Scenario) -> IncidentReport:
    r = scenario.report
    return IncidentReport(
        title=r.title,
        description=r.summary,
        event_started_at=datetime.now(UTC)
        - timedelta(minutes=r.event_started_minutes_before_report),
        event_place=r.location,
        reporter=r.reported_by,
        affected_member_states=r.affected_member_states,
    )


async def until(check: Callable[[], Awaitable[bool]], every: float = 0.3) -> None:
    """Polls the API until `check` holds: the API pushes nothing to a coordinator."""
    while not await check():  # noqa: ASYNC110
        await asyncio.sleep(every)


async def watch(iru: ApiClient, incident_id: str) -> None:
    """Prints what a coordinator wants to see change, until the incident closes: phases, and
    each platform's first missed deadline and escalation."""
    seen: set[object] = set()
    while Phase.closed not in seen:
        status = await iru.status(incident_id)
        assert isinstance(status, IncidentStatus)
        if status.crisis.phase not in seen:
            seen.add(status.crisis.phase)
            say(f"PHASE  {status.crisis.phase}")
        for pid, summary in sorted(status.platforms.items()):
            if summary.breaches and (pid, "missed") not in seen:
                seen.add((pid, "missed"))
                say(f"SLA    {pid} missed a deadline: reminded")
            if summary.escalations and (pid, "escalated") not in seen:
                seen.add((pid, "escalated"))
                say(f"SLA    {pid} still silent: escalated to the coordinators")
        await asyncio.sleep(0.3)


async def run_scenario(api: str, tokens: dict[str, str]) -> str:
    """The crisis itself, every step over HTTP; returns the incident id."""
    scenario = load()
    clients = {pid: ApiClient(api, token) for pid, token in tokens.items()}
    iru = clients[COORDINATOR]
    try:
        incident_id = (await iru.report(report_of(scenario), sla=SLA)).incident_id
        say(f"REPORT {scenario.report.title}: incident {incident_id}")
        watcher = asyncio.create_task(watch(iru, incident_id))
        criteria = {
            k: Criterion(status=v, evidence="scenario") for k, v in scenario.assessment.items()
        }
        await iru.act(incident_id, Action.assess, assessment=Assessment(**criteria))
        say("ASSESS five criteria recorded, all met")
        [first, *waves] = scenario.waves
        answer = await iru.act(
            incident_id,
            Action.activate,
            reason="all five criteria met; viral spread across services",
            identifiers=first.identifiers,
            platforms=list(BEHAVIOURS),
        )
        say(
            f"ACTIVE {len(answer.accepted_items)} identifiers to {len(BEHAVIOURS)} platforms, "
            f"{answer.low_quality} low-quality PDQ dropped"
        )
        order = await clients[AUTHORITY].act(
            incident_id, Action.issue_order, identifiers=[ORDERED], order=ORDER
        )
        say(
            f"ORDER  {ORDER.issuing_authority} (FR): removal order {ORDER.reference} to "
            f"{ORDER.platform}, item {order.accepted_items[0]}, to be removed within the hour"
        )
        await clients[HOST_AUTHORITY].act(
            incident_id,
            Action.decide_scrutiny,
            reference=ORDER.reference,
            outcome=ScrutinyOutcome.upheld,
            reason="no serious or manifest infringement of the Regulation or of fundamental rights",
        )
        say(f"SCRUTINY Coimisiún na Meán (IE), the host State: order {ORDER.reference} upheld")

        start = time.monotonic()
        events: list[Wave | Sighting] = [
            *waves,
            *(s for s in scenario.sightings if s.by in BEHAVIOURS),
        ]
        for event in sorted(events, key=lambda e: e.at_minutes):
            due = (event.at_minutes - first.at_minutes) * SECONDS_PER_SCENARIO_MINUTE
            await asyncio.sleep(max(0.0, due - (time.monotonic() - start)))
            if isinstance(event, Wave):
                a = await iru.act(incident_id, Action.add_content, identifiers=event.identifiers)
                say(
                    f"WAVE   minute {event.at_minutes:g}: {len(a.accepted_items)} new, "
                    f"{a.duplicates} repeats, {a.low_quality} low-quality dropped"
                )
            else:
                a = await clients[event.by].act(
                    incident_id, Action.report_sightings, identifiers=[event.identifier]
                )
                if a.accepted_items:
                    say(f"SIGHT  {event.by} found a new copy: item {a.accepted_items[0]}")

        say("WAIT   for the platforms to finish their tasks")
        await until(lambda: _all_resolved(iru, incident_id), every=0.5)
        await iru.act(
            incident_id,
            Action.de_escalate,
            reason="re-upload attempts have fallen for hours; event over",
        )
        await iru.act(incident_id, Action.start_review)
        for pid in BEHAVIOURS:
            await clients[pid].act(
                incident_id,
                Action.submit_review_input,
                text=f"{pid}: hash matching at upload blocked most copies",
            )
        await iru.act(incident_id, Action.close, reason="debrief held; lessons recorded")
        await watcher
        await until(lambda: _completed(iru, incident_id))  # platforms done, report written
        await summarise(clients["auditor"], incident_id)
        return incident_id
    finally:
        for client in clients.values():
            await client.aclose()


async def _all_resolved(iru: ApiClient, incident_id: str) -> bool:
    status = await iru.status(incident_id)
    assert isinstance(status, IncidentStatus)
    return all(s.by_state.keys() <= RESOLVED for s in status.platforms.values())


async def summarise(auditor: ApiClient, incident_id: str) -> None:
    """What an auditor reads afterwards: tasks per platform, the timeline, the ledger's chain."""
    status = await auditor.status(incident_id)
    assert isinstance(status, IncidentStatus)
    for pid, s in sorted(status.platforms.items()):
        states = ", ".join(f"{n} {state}" for state, n in sorted(s.by_state.items()))
        say(
            f"TASKS  {pid}: {states}; {s.breaches} missed deadlines"
            f" ({s.legal_deadlines_missed} legal, {s.targets_missed} targets),"
            f" {s.escalations} escalations"
        )
    rows = await auditor.all_decisions(incident_id)
    say("TIMELINE (the incident's decisions, from the ledger)")
    start = rows[0].decision.at
    for row in rows:
        d = row.decision
        if d.kind.startswith(("task_", "sla_")) or d.kind is DecisionKind.sighting_reported:
            continue
        why = f": {d.reason}" if d.reason else ""
        offset = (d.at - start).total_seconds()
        print(f"           +{offset:6.1f}s  #{row.seq:<5} {d.kind:<20} {d.actor.id}{why}")
    sightings = [r.decision for r in rows if r.decision.kind is DecisionKind.sighting_reported]
    new = sum(len(d.inputs.get("items", [])) for d in sightings)
    say(f"SIGHT  {len(sightings)} sightings reported by platforms, {new} of them new copies")
    chain = verify_chain(incident_id, rows)
    verdict = "verified" if chain.ok else f"BROKEN at row {chain.first_bad_seq}: {chain.problem}"
    say(f"LEDGER {chain.rows_checked} decisions, hash chain {verdict}")
    if not chain.ok:
        raise SystemExit(1)


async def _completed(iru: ApiClient, incident_id: str) -> bool:
    return any(
        i.incident_id == incident_id and i.status == "completed" for i in await iru.incidents()
    )


async def main(settings: Settings) -> None:
    run = settings.var_dir / "demo"
    shutil.rmtree(run, ignore_errors=True)
    api_port, hooks = free_port(), {pid: free_port() for pid in BEHAVIOURS}
    webhooks = {
        pid: simulator_webhook(port, secrets.token_urlsafe(24)) for pid, port in hooks.items()
    }
    participants = registry(webhooks)
    participants.save(run / "participants.json")
    store = TokenStore(run / "tokens.json")
    tokens = {p.id: store.issue(p.id) for p in participants.participants}
    api = f"http://127.0.0.1:{api_port}"
    env = {
        "EUCP_REGISTRY_PATH": str(run / "participants.json"),
        "EUCP_TOKENS_PATH": str(run / "tokens.json"),
        # a queue of its own: another demo or `make up` on the same server never takes its work
        "EUCP_TASK_QUEUE": f"eucp-demo-{secrets.token_hex(4)}",
        "EUCP_API_PORT": str(api_port),
        "EUCP_LEDGER_URL": settings.ledger_url,
        "EUCP_REPORTS_DIR": str(settings.reports_dir),
        "EUCP_TEMPORAL_ADDRESS": settings.temporal_address,
        "EUCP_LOG_JSON": "true",
    }
    async with embedded_temporal(settings) as ui:
        with Stack(run / "logs", env) as stack:
            stack.start("worker", [EUCP, "worker"])
            stack.start("api", [EUCP, "api"])
            for pid, flags in BEHAVIOURS.items():
                secret = webhooks[pid].secret
                stack.start(
                    f"platform-{pid}",
                    [
                        sys.executable,
                        "-m",
                        "eucp.demo.simulator",
                        "--platform-id",
                        pid,
                        "--api",
                        api,
                        "--port",
                        str(hooks[pid]),
                        *flags,
                    ],
                    {"EUCP_TOKEN": tokens[pid], "EUCP_WEBHOOK_SECRET": secret},
                )
            for port in [api_port, *hooks.values()]:
                await wait_for_port("127.0.0.1", port)
            stack.check()
            say(f"UP     worker, API at {api}, 3 platform receivers (logs in {run / 'logs'})")
            incident_id = await run_scenario(api, tokens)
        web = ui or f"the Temporal Web UI for {settings.temporal_address}"
        say(f"LOOK   {web}/namespaces/{settings.temporal_namespace}/workflows/{incident_id}")
        say(f"       report: {Path(settings.reports_dir) / incident_id / 'report.html'}")
        say(f"       audit:  eucp ledger verify {incident_id}")

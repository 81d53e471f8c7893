"""`make demo`: a Christchurch-like crisis end to end, over real HTTP between processes.

It starts what it needs on the embedded default (the Temporal dev server on var/temporal.db
unless one already answers), a worker, the HTTP API and three reference platform receivers
(`simulate-platform`) with their own webhooks: Facebook answers fast, JustPaste.it misses its
deadlines and climbs the escalation ladder, Snap declines some voluntary tasks with a reason.
The coordinator reports, assesses, activates on Facebook and Snap, adds the scenario's waves,
brings JustPaste.it in once copies are found there (the scenario's `joins`) and the platforms
report sightings, all through the API; then de-escalation, review and closure. Scenario minutes
are compressed to seconds. Everything it started is stopped at the end.

`run_scenario` plays a scenario over HTTP for the demo and for `eucp exercise run`
(`eucp.demo.exercise`), which plays a scenario file against a running stack.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

from eucp.client import ApiClient
from eucp.demo import presets
from eucp.demo.presets import (
    AUDITOR,
    COORDINATOR,
    SignedWebhook,
    compressed_clocks,
    simulator_webhook,
)
from eucp.demo.scenario import Join, Scenario, Sighting, Wave, load
from eucp.protocol.actions import Action
from eucp.protocol.clocks import SlaSettings
from eucp.protocol.decisions import DecisionKind
from eucp.protocol.identifiers import UrlIdentifier
from eucp.protocol.incident import MEETS, Assessment, Criterion, IncidentReport
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


def some(n: int, noun: str) -> str:
    """'1 platform', '2 platforms'."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


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


def report_of(
    scenario: Scenario, reporter: str | None = None, exercise: bool = False
) -> IncidentReport:
    """The scenario's report, made now: the event began as long before as the scenario says."""
    r = scenario.report
    return IncidentReport(
        title=r.title,
        description=r.summary,
        event_started_at=datetime.now(UTC)
        - timedelta(minutes=r.event_started_minutes_before_report),
        event_place=r.location,
        reporter=reporter or r.reported_by,
        affected_member_states=r.affected_member_states,
        exercise=exercise,
    )


Clients = Mapping[str, ApiClient]
# a step of the caller's own right after the activation (the demo's removal order)
Then = Callable[[Clients, str], Awaitable[None]]


@dataclass(frozen=True)
class Play:
    """How `run_scenario` plays a scenario: which of its platforms take part (activated with
    the first wave, or brought in when the scenario's `joins` say), how long a scenario minute
    lasts, the clocks of the incident and who coordinates. The platforms whose tokens it holds
    speak for themselves in the scenario: their sightings are reported and they give review
    input; the others (a table-top exercise's real platforms) report and answer on their own."""

    scenario: Scenario
    platforms: Sequence[str]
    seconds_per_minute: float
    sla: SlaSettings
    coordinator: str = COORDINATOR
    exercise: bool = False
    activation_reason: str = "all five criteria met; viral spread across services"
    then: Then | None = None

    @property
    def joins(self) -> list[Join]:
        return [j for j in self.scenario.joins if j.platform in self.platforms]

    @property
    def activated(self) -> list[str]:
        joining = {j.platform for j in self.joins}
        return [p for p in self.platforms if p not in joining]

    @property
    def settle_within(self) -> float:
        """Seconds the platforms are given after the last step to answer their tasks: the act
        deadline of the last ones and the escalation ladder past it. A platform still silent
        then keeps its tasks open; the closure withdraws them and the report counts them."""
        return (self.sla.act_within + 3 * self.sla.escalate_after).total_seconds()

    @property
    def minutes(self) -> float:
        """Scenario minutes from the activation to the last step."""
        steps: list[Wave | Join | Sighting] = [
            *self.scenario.waves,
            *self.joins,
            *(s for s in self.scenario.sightings if s.by in self.platforms),
        ]
        return max(e.at_minutes for e in steps) - self.scenario.waves[0].at_minutes


async def until(
    check: Callable[[], Awaitable[bool]], every: float = 0.3, within: float | None = None
) -> bool:
    """Polls the API until `check` holds (True) or `within` seconds pass (False): the API
    pushes nothing to a coordinator."""
    deadline = None if within is None else time.monotonic() + within
    while not await check():
        if deadline is not None and time.monotonic() >= deadline:
            return False
        await asyncio.sleep(every)
    return True


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


async def run_scenario(api: str, tokens: Mapping[str, str], play: Play) -> str:
    """The crisis itself, every step over HTTP with the participants' `tokens` (the
    coordinator's at least; an auditor's, if given, reads the summary); returns the incident
    id once it has completed and its review report is written."""
    scenario = play.scenario
    clients = {pid: ApiClient(api, token) for pid, token in tokens.items()}
    iru = clients[play.coordinator]
    speaking = [p for p in play.platforms if p in clients]
    watcher: asyncio.Task[None] | None = None
    try:
        report = report_of(scenario, play.coordinator, play.exercise)
        incident_id = (await iru.report(report, sla=play.sla)).incident_id
        what = "exercise" if play.exercise else "incident"
        say(f"REPORT {scenario.report.title}: {what} {incident_id}")
        watcher = asyncio.create_task(watch(iru, incident_id))
        criteria = {
            k: Criterion(status=v, evidence="scenario") for k, v in scenario.assessment.items()
        }
        await iru.act(incident_id, Action.assess, assessment=Assessment(**criteria))
        met = sum(c.status in MEETS for c in criteria.values())
        say(f"ASSESS {len(criteria)} criteria recorded, {met} met")
        [first, *waves] = scenario.waves
        answer = await iru.act(
            incident_id,
            Action.activate,
            reason=play.activation_reason,
            identifiers=first.identifiers,
            platforms=play.activated,
        )
        say(
            f"ACTIVE {len(answer.accepted_items)} identifiers to "
            f"{some(len(play.activated), 'platform')}, {answer.low_quality} low-quality PDQ "
            "dropped"
        )
        if play.then is not None:
            await play.then(clients, incident_id)
        await _steps(play, clients, iru, incident_id, waves, speaking)

        say("WAIT   for the platforms to finish their tasks")
        done = await until(
            lambda: _all_resolved(iru, incident_id), every=0.5, within=play.settle_within
        )
        if not done:
            say(f"WAIT   {await _open_tasks(iru, incident_id)}: the closure withdraws them")
        await iru.act(
            incident_id,
            Action.de_escalate,
            reason="re-upload attempts have fallen for hours; event over",
        )
        await iru.act(incident_id, Action.start_review)
        for pid in speaking:
            await clients[pid].act(
                incident_id,
                Action.submit_review_input,
                text=f"{pid}: hash matching at upload blocked most copies",
            )
        await iru.act(incident_id, Action.close, reason="debrief held; lessons recorded")
        await watcher
        await until(lambda: _completed(iru, incident_id))  # platforms done, report written
        await summarise(clients.get(AUDITOR, iru), incident_id)
        return incident_id
    finally:
        if watcher is not None and not watcher.done():
            watcher.cancel()
        for client in clients.values():
            await client.aclose()


async def _steps(
    play: Play,
    clients: Clients,
    iru: ApiClient,
    incident_id: str,
    waves: Sequence[Wave],
    speaking: Sequence[str],
) -> None:
    """The scenario's waves, joins and sightings after the activation, each at its minute."""
    first = play.scenario.waves[0].at_minutes
    taking_part = set(play.activated)
    start = time.monotonic()
    events: list[Wave | Join | Sighting] = [  # at the same minute: waves, joins, sightings
        *waves,
        *play.joins,
        *(s for s in play.scenario.sightings if s.by in speaking),
    ]
    for event in sorted(events, key=lambda e: e.at_minutes):
        due = (event.at_minutes - first) * play.seconds_per_minute
        await asyncio.sleep(max(0.0, due - (time.monotonic() - start)))
        if isinstance(event, Wave):
            a = await iru.act(incident_id, Action.add_content, identifiers=event.identifiers)
            say(
                f"WAVE   minute {event.at_minutes:g}: {len(a.accepted_items)} new, "
                f"{a.duplicates} repeats, {a.low_quality} low-quality dropped"
            )
        elif isinstance(event, Join):
            await iru.act(
                incident_id, Action.join_platform, platform=event.platform, reason=event.reason
            )
            taking_part.add(event.platform)
            given = await _given_on_joining(iru, incident_id, event.platform)
            say(f"JOIN   {event.platform} brought in: {some(given, 'open item')} ({event.reason})")
        elif event.by in taking_part:  # a platform not brought in yet cannot report
            a = await clients[event.by].act(
                incident_id, Action.report_sightings, identifiers=[event.identifier]
            )
            if a.accepted_items:
                say(f"SIGHT  {event.by} found a new copy: item {a.accepted_items[0]}")


async def _given_on_joining(iru: ApiClient, incident_id: str, platform: str) -> int:
    """The tasks a platform just brought in holds: the open items meant for it, which its
    workflow reads from the ledger as it starts (0 if none come within 10 s)."""
    held = 0

    async def arrived() -> bool:
        nonlocal held
        status = await iru.status(incident_id)
        assert isinstance(status, IncidentStatus)
        summary = status.platforms.get(platform)
        held = summary.tasks if summary else 0
        return held > 0

    await until(arrived, every=0.2, within=10.0)
    return held


async def _all_resolved(iru: ApiClient, incident_id: str) -> bool:
    status = await iru.status(incident_id)
    assert isinstance(status, IncidentStatus)
    return all(s.by_state.keys() <= RESOLVED for s in status.platforms.values())


async def _open_tasks(iru: ApiClient, incident_id: str) -> str:
    """Who still holds unanswered tasks, and how many: '12 tasks still open (snap 12)'."""
    status = await iru.status(incident_id)
    assert isinstance(status, IncidentStatus)
    open_ = {
        pid: sum(n for state, n in s.by_state.items() if state not in RESOLVED)
        for pid, s in sorted(status.platforms.items())
    }
    each = ", ".join(f"{pid} {n}" for pid, n in open_.items() if n)
    return f"{some(sum(open_.values()), 'task')} still open ({each})"


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


class Simulated(NamedTuple):
    """A platform played by a reference receiver (`eucp simulate-platform`): its webhook on
    loopback, its token and how it answers (the simulator's options)."""

    webhook: SignedWebhook
    port: int
    token: str
    flags: list[str]


def simulated_on_loopback(token: str, flags: list[str]) -> Simulated:
    """A simulator on a free loopback port, with a fresh webhook secret."""
    port = free_port()
    return Simulated(simulator_webhook(port, secrets.token_urlsafe(24)), port, token, flags)


async def start_simulators(stack: Stack, api: str, simulated: Mapping[str, Simulated]) -> None:
    """Starts a simulator per platform and waits until each listens."""
    for pid, sim in simulated.items():
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
                str(sim.port),
                *sim.flags,
            ],
            {"EUCP_TOKEN": sim.token, "EUCP_WEBHOOK_SECRET": sim.webhook.secret},
        )
    for sim in simulated.values():
        await wait_for_port("127.0.0.1", sim.port)


async def order_and_scrutiny(clients: Clients, incident_id: str) -> None:
    """The demo's removal order from a French authority, upheld by the host State's."""
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


async def main(settings: Settings) -> None:
    run = settings.var_dir / "demo"
    shutil.rmtree(run, ignore_errors=True)
    api_port = free_port()
    store = TokenStore(run / "tokens.json")
    simulated = {
        pid: simulated_on_loopback(store.issue(pid), flags) for pid, flags in BEHAVIOURS.items()
    }
    participants = registry({pid: sim.webhook for pid, sim in simulated.items()})
    participants.save(run / "participants.json")
    tokens = {
        p.id: simulated[p.id].token if p.id in simulated else store.issue(p.id)
        for p in participants.participants
    }
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
    play = Play(
        load(),
        platforms=list(BEHAVIOURS),
        seconds_per_minute=SECONDS_PER_SCENARIO_MINUTE,
        sla=SLA,
        then=order_and_scrutiny,
    )
    async with embedded_temporal(settings) as ui:
        with Stack(run / "logs", env) as stack:
            stack.start("worker", [EUCP, "worker"])
            stack.start("api", [EUCP, "api"])
            await start_simulators(stack, api, simulated)
            await wait_for_port("127.0.0.1", api_port)
            stack.check()
            say(
                f"UP     worker, API at {api}, {len(simulated)} platform receivers "
                f"(logs in {run / 'logs'})"
            )
            incident_id = await run_scenario(api, tokens, play)
        web = ui or f"the Temporal Web UI for {settings.temporal_address}"
        say(f"LOOK   {web}/namespaces/{settings.temporal_namespace}/workflows/{incident_id}")
        say(f"       report: {Path(settings.reports_dir) / incident_id / 'report.html'}")
        say(f"       audit:  eucp ledger verify {incident_id}")

"""`make demo`: a Christchurch-like crisis end to end on the embedded Temporal.

Three platforms are played in-process through the same Updates a real platform uses: Facebook
answers fast, JustPaste.it misses its deadlines and is escalated, Snap declines some voluntary
tasks with a reason. Scenario minutes are compressed to a few seconds in all.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from eucp.devserver import embedded_temporal
from eucp.incident import Assessment, Criterion, IncidentReport
from eucp.ledger import open_ledger
from eucp.participants import Actor, Channel, Contact, ParticipantKind, Registry
from eucp.scenario import Scenario, Sighting, Wave, load
from eucp.service import Incidents, Session
from eucp.settings import Settings, SlaSettings
from eucp.state import TaskQuery
from eucp.tasks import RESOLVED, Outcome, TaskReport, TaskState
from eucp.temporal import connect
from worker import running_worker

K = ParticipantKind
SECONDS_PER_SCENARIO_MINUTE = 0.05
SLA = SlaSettings(
    acknowledge_within=timedelta(seconds=3),
    act_within=timedelta(seconds=8),
    escalate_after=timedelta(seconds=3),
    assessment_within=timedelta(minutes=5),
    review_within=timedelta(seconds=30),
)
COORDINATOR = Actor(id="eu-iru", kind=K.coordinator)


@dataclass(frozen=True)
class Behaviour:
    """How a simulated platform answers: delays in seconds, and every n-th task declined."""

    ack_after: float
    act_after: float
    decline_every: int = 0


BEHAVIOURS = {
    "facebook": Behaviour(ack_after=0.3, act_after=1.0),
    "justpasteit": Behaviour(ack_after=5.0, act_after=14.0),
    "snap": Behaviour(ack_after=0.6, act_after=2.0, decline_every=7),
}


def registry() -> Registry:
    people = [
        Contact(id="eu-iru", kind=K.coordinator, name="Europol EU IRU"),
        Contact(id="nz-dia", kind=K.member_state, name="Affected government contact"),
        Contact(id="auditor", kind=K.auditor, name="Auditor"),
    ]
    scenario = load()
    platforms = [
        Contact(id=p.id, kind=K.platform, name=scenario.platform(p.id).name, channels=[Channel.log])
        for p in (scenario.platform(pid) for pid in BEHAVIOURS)
    ]
    return Registry(participants=people + platforms)


def say(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')}  {message}", flush=True)


async def play_platform(session: Session, behaviour: Behaviour, stop: asyncio.Event) -> None:
    """Acknowledges and acts on the platform's own tasks once their delays have passed."""
    declined = 0
    while not stop.is_set():
        now = datetime.now(UTC)
        page = await session.my_tasks(TaskQuery(limit=1000))
        reports = []
        for task in page.tasks:
            age = (now - task.assigned_at).total_seconds()
            if task.state in RESOLVED:
                continue
            if age >= behaviour.act_after:
                if behaviour.decline_every and task.item_no % behaviour.decline_every == 0:
                    declined += 1
                    reports.append(
                        TaskReport(
                            task_id=task.task_id,
                            outcome=Outcome.declined,
                            reason="does not breach our terms: news reporting",
                        )
                    )
                else:
                    reports.append(TaskReport(task_id=task.task_id, outcome=Outcome.removed))
            elif age >= behaviour.ack_after and task.state is TaskState.assigned:
                reports.append(TaskReport(task_id=task.task_id, outcome=Outcome.acknowledged))
        for start in range(0, len(reports), 250):
            await session.report_tasks(reports[start : start + 250])
        await asyncio.sleep(0.25)


async def watch(incidents: Incidents, incident_id: str, stop: asyncio.Event) -> None:
    """Prints what a coordinator would want to see change: phases, breaches, escalations."""
    seen: dict[object, object] = {}
    while not stop.is_set():
        status = await incidents.status(incident_id)
        if seen.get("phase") != status.crisis.phase:
            seen["phase"] = status.crisis.phase
            say(f"PHASE  {status.crisis.phase}")
        for pid, summary in status.platforms.items():
            # the first miss and the first escalation per platform; totals come at the end
            for label, count in (
                ("missed a deadline", summary.breaches),
                ("escalated to the coordinators", summary.escalations),
            ):
                if count and (pid, label) not in seen:
                    seen[(pid, label)] = count
                    say(
                        f"SLA    {pid}: {label} (reminder sent)"
                        if label.startswith("missed")
                        else f"SLA    {pid}: {label}"
                    )
        await asyncio.sleep(0.3)


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


async def run_scenario(incidents: Incidents, incident_id: str, reg: Registry) -> None:
    scenario = load()
    iru = incidents.as_participant(incident_id, COORDINATOR)
    platforms = {
        pid: incidents.as_participant(incident_id, Actor(id=pid, kind=K.platform))
        for pid in BEHAVIOURS
    }

    await incidents.report(incident_id, report_of(scenario), reg.public(), SLA)
    say(f"REPORT {scenario.report.title} (by {scenario.report.reported_by})")
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch(incidents, incident_id, stop))
    criteria = {
        k: Criterion(status=v, evidence="scenario assessment")
        for k, v in scenario.assessment.items()
    }
    await iru.assess(Assessment(**criteria))
    say("ASSESS five criteria recorded: all met")

    [first, *waves] = scenario.waves
    answer = await iru.activate(
        "all five criteria met; viral spread across services",
        identifiers=first.identifiers,
        platforms=list(BEHAVIOURS),
    )
    say(
        f"ACTIVE {len(answer.accepted_items)} identifiers to {len(BEHAVIOURS)} platforms "
        f"({answer.duplicates} repeats, {answer.low_quality} low-quality PDQ dropped)"
    )
    players = [
        asyncio.create_task(play_platform(s, BEHAVIOURS[p], stop)) for p, s in platforms.items()
    ]

    start = time.monotonic()
    events: list[Wave | Sighting] = [*waves, *(s for s in scenario.sightings if s.by in platforms)]
    for event in sorted(events, key=lambda e: e.at_minutes):
        due = (event.at_minutes - first.at_minutes) * SECONDS_PER_SCENARIO_MINUTE
        await asyncio.sleep(max(0.0, due - (time.monotonic() - start)))
        if isinstance(event, Wave):
            a = await iru.add_content(event.identifiers)
            say(
                f"WAVE   minute {event.at_minutes:g}: {len(a.accepted_items)} new identifiers, "
                f"{a.duplicates} repeats, {a.low_quality} low-quality dropped"
            )
        else:
            a = await platforms[event.by].report_sightings([event.identifier])
            if a.accepted_items:
                say(
                    f"SIGHT  {event.by} found a new copy: item {a.accepted_items[0]} "
                    "goes to the other platforms"
                )

    say("WAIT   for the platforms to finish their tasks")
    while True:
        status = await incidents.status(incident_id)
        if all(s.by_state.keys() <= RESOLVED for s in status.platforms.values()):
            break
        await asyncio.sleep(0.5)

    await iru.de_escalate("re-upload attempts have fallen for hours; event over")
    await iru.start_review()
    for pid, session in platforms.items():
        await session.submit_review_input(f"{pid}: hash matching at upload blocked most copies")
    await iru.close("debrief held; lessons recorded")
    stop.set()
    await asyncio.gather(watcher, *players)
    result = await incidents.result(incident_id)
    say(f"PHASE  {result.phase}")
    for pid, summary in sorted(result.platforms.items()):
        states = ", ".join(f"{n} {s}" for s, n in sorted(summary.by_state.items()))
        say(
            f"TASKS  {pid}: {states}; {summary.breaches} missed deadlines, "
            f"{summary.escalations} escalations"
        )


async def main(settings: Settings) -> None:
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    reg = registry()
    settings = settings.model_copy(
        update={
            "registry_path": settings.var_dir / "demo-participants.json",
            "task_queue": "eucp-demo",
        }
    )
    reg.save(settings.registry_path)
    incident_id = f"demo-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    async with embedded_temporal(settings) as ui:
        client = await connect(settings)
        async with running_worker(client, settings):
            await run_scenario(Incidents(client, settings), incident_id, reg)
        with open_ledger(settings.ledger_url) as ledger:
            chain = ledger.verify(incident_id)
        verdict = "verified" if chain.ok else f"BROKEN: {chain.problem}"
        say(f"LEDGER {chain.rows_checked} decisions, chain {verdict} (head {chain.head_hash})")
        where = ui or "the Temporal Web UI of the server at " + settings.temporal_address
        say(f"LOOK   {where}/namespaces/{settings.temporal_namespace}/workflows/{incident_id}")
        if not chain.ok:
            raise SystemExit(1)

"""Platform reports as real platforms send them: twice, late and out of order.

- duplicate: one bulk acknowledgement resent with its key, and sent three times at once under
  different keys; a sighting reported twice. Each task changes once, the sighting is one item.
- out of order: removals before acknowledgements (the late acknowledgement changes nothing),
  and acknowledgements racing removals of the same tasks.
- late: a platform silent until its tasks have climbed the whole escalation ladder, then
  acting (accepted); a report and a sighting after the incident closed (refused, not recorded).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from pathlib import Path

from chaos.crisis import CALM_SLA, Crisis, in_ledger, platform, staff, url
from chaos.results import Result
from chaos.rig import Rig
from eucp.protocol.actions import Action
from eucp.protocol.decisions import DecisionKind
from eucp.protocol.refusal import Refusal
from eucp.protocol.state import Answer
from eucp.protocol.tasks import Outcome, TaskReport
from eucp.runtime.registry import Registry

PLATFORMS = ["fastbook", "choosy"]
EAGER, LATE = PLATFORMS
ITEMS = 40
SLA = CALM_SLA.model_copy(
    update={
        "acknowledge_within": timedelta(seconds=2),
        "act_within": timedelta(seconds=3),
        "escalate_after": timedelta(seconds=1),
    }
)


async def run(root: Path) -> Result:
    registry = Registry(participants=[*staff(), *(platform(p) for p in PLATFORMS)])
    async with Rig(root / "reports-late-duplicate", registry) as rig:
        crisis = Crisis(rig, PLATFORMS)
        await crisis.report(SLA)
        await crisis.assess()
        await crisis.activate(ITEMS)
        problems: list[str] = []
        tasks = await crisis.task_ids(EAGER)
        problems += await duplicates(crisis, tasks[:20])
        problems += await out_of_order(crisis, tasks[20:30], tasks[30:40])
        problems += await sightings(crisis)
        # the late platform acts only once its last deadline has been escalated
        escalated = await in_ledger(
            rig.ledger_url,
            crisis.incident_id,
            lambda r: (
                r.decision.kind is DecisionKind.sla_escalated
                and f"/{LATE}/" in r.decision.decision_id
            ),
        )
        await crisis.take_down([LATE])
        await crisis.take_down([EAGER])  # the item the late platform sighted, and repeats
        await crisis.wind_down()
        if not await crisis.completed():
            problems.append("the crisis did not complete")
        refusals, refused = await after_close(crisis, tasks[0])
        problems += refused
        rows = await crisis.rows()
        sighted = [
            r.decision.inputs["items"]
            for r in rows
            if r.decision.kind is DecisionKind.sighting_reported
        ]
        if len(sighted) != 3 or sum(map(len, sighted)) != 1:
            problems.append(f"3 sightings of 1 new copy recorded as {sighted}")
        early = [  # its reports on its tasks (its sightings came before)
            r.decision.decision_id
            for r in rows
            if r.decision.actor.id == LATE and "task_id" in r.decision.inputs
            if r.seq < escalated.seq
        ]
        if early:
            problems.append(f"{LATE} reported on tasks before it was escalated: {early[:5]}")
        refusals.append(
            f"{LATE} reported on its tasks once {escalated.decision.decision_id} "
            f"(sla_escalated) was row "
            f"{escalated.seq}"
        )
        order = {(r.decision.inputs.get("task_id"), r.decision.kind): r.seq for r in rows}
        for task in tasks[20:30]:
            if (task, DecisionKind.task_acknowledged) in order:
                problems.append(f"{task}: a late acknowledgement after removal was recorded")
        for task in tasks[30:40]:
            ack, removed = (
                order.get((task, DecisionKind.task_acknowledged)),
                order.get((task, DecisionKind.task_removed)),
            )
            if removed is None or (ack is not None and ack > removed):
                problems.append(f"{task}: acknowledged at row {ack}, removed at {removed}")
        return await crisis.result("reports-late-duplicate", problems, refusals)


async def duplicates(crisis: Crisis, tasks: list[str]) -> list[str]:
    """One bulk acknowledgement resent with its key, then sent three times at once."""
    desk, incident = crisis.desk(EAGER), crisis.incident_id
    reports = [TaskReport(task_id=t, outcome=Outcome.acknowledged) for t in tasks[:10]]
    key = "ack-first-ten"
    first = await desk.api.report_tasks(incident, reports, idempotency_key=key)
    crisis.book.reports(reports, first)
    again = await desk.api.report_tasks(incident, reports, idempotency_key=key)
    crisis.book.reports(reports, again)
    problems = [] if again == first else [f"the same key answered {again}, first {first}"]
    rest = await asyncio.gather(
        *(crisis.report_tasks(EAGER, Outcome.acknowledged, tasks[10:]) for _ in range(3))
    )
    changed = Counter(t for answers in rest for a in answers for t in a.changed)
    if sorted(changed) != sorted(tasks[10:]) or set(changed.values()) != {1}:
        problems.append(f"3 concurrent copies changed {dict(changed)}")
    return problems


async def out_of_order(crisis: Crisis, first: list[str], racing: list[str]) -> list[str]:
    """`first` are removed before they are acknowledged; `racing` get both at once."""
    await crisis.report_tasks(EAGER, Outcome.removed, first)
    [late_ack] = await crisis.report_tasks(EAGER, Outcome.acknowledged, first)
    problems = [] if not late_ack.changed else [f"late acknowledgements applied: {late_ack}"]
    [ack], [removed] = await asyncio.gather(
        crisis.report_tasks(EAGER, Outcome.acknowledged, racing),
        crisis.report_tasks(EAGER, Outcome.removed, racing),
    )
    if sorted(removed.changed) != sorted(racing) or removed.refused:
        problems.append(f"racing removals: {removed}")
    if ack.refused:
        problems.append(f"racing acknowledgements refused: {ack.refused}")
    return problems


async def sightings(crisis: Crisis) -> list[str]:
    """The late platform sights a new copy twice (two keys), then an activated one."""
    answers = [await _sight(crisis, n) for n in (ITEMS + 1, ITEMS + 1, 1)]
    got = [(a.accepted_items, a.duplicates) for a in answers]
    wanted = [([ITEMS + 1], 0), ([], 1), ([], 1)]
    return [] if got == wanted else [f"sightings answered {got}, expected {wanted}"]


async def _sight(crisis: Crisis, n: int) -> Answer:
    desk = crisis.desk(LATE)

    async def sight(key: str) -> Answer:
        return await desk.api.act(
            crisis.incident_id, Action.report_sightings, identifiers=[url(n)], idempotency_key=key
        )

    return await desk.act(sight)


async def after_close(crisis: Crisis, task: str) -> tuple[list[str], list[str]]:
    """A report and a sighting once the incident is closed: each must be refused (4xx) with a
    rule, and nothing recorded. Returns what they were told, and the problems."""
    eager, late, incident = crisis.desk(EAGER).api, crisis.desk(LATE).api, crisis.incident_id
    attempts = {
        "report after close": eager.report_tasks(
            incident, [TaskReport(task_id=task, outcome=Outcome.not_found)]
        ),
        "sighting after close": late.act(
            incident, Action.report_sightings, identifiers=[url(ITEMS + 2)]
        ),
    }
    told, problems = [], []
    for what, attempt in attempts.items():
        try:
            answer = await attempt
        except Refusal as refused:
            told.append(f"{what}: {refused.status} {refused.kind} ({refused.rule})")
            if not refused.rule:
                problems.append(f"{what}: refused without a rule")
        else:
            problems.append(f"{what} was accepted: {answer}")
    return told, problems

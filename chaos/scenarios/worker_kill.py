"""The worker killed with SIGKILL at three moments, a new worker started each time:

- fan-out: the moment the activation is in the ledger, while the crisis starts one task
  workflow per platform with every item and the task notifications go out; then its successor
  the moment the first content wave is in the ledger, while the crisis's outbox signals the new
  items to the platforms;
- SLA escalation: the moment a silent platform's first missed deadline is recorded, with the
  rest of the ladder (backup desk, coordinators) still to climb;
- ledger batch: the moment a bulk task report is in the ledger but its answer has not reached
  the platform, with more bulk reports in flight (they are resent with their keys).
"""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import ExitStack, asynccontextmanager
from datetime import timedelta
from pathlib import Path

from chaos.crisis import CALM_SLA, TAKEDOWN, Crisis, Strike, in_ledger, platform, staff
from chaos.receivers import Webhook
from chaos.results import Result
from chaos.rig import Rig
from eucp.protocol.clocks import SlaSettings
from eucp.protocol.decisions import DecisionKind, LedgerRow
from eucp.runtime.registry import Registry

PLATFORMS = ["fastbook", "slowtube", "choosy"]


@asynccontextmanager
async def assessed(
    folder: Path, sla: SlaSettings = CALM_SLA
) -> AsyncIterator[tuple[Crisis, dict[str, Webhook]]]:
    """A rig whose platforms are told by real signed webhooks (receivers that answer 200), and
    a crisis on it reported and assessed; all stopped on exit."""
    hooks = {pid: Webhook(secrets.token_urlsafe(16)) for pid in PLATFORMS}
    with ExitStack() as stack:
        for hook in hooks.values():
            hook.up()
            stack.callback(hook.down)
        contacts = [*staff(), *(platform(p, h.url, h.secret) for p, h in hooks.items())]
        async with Rig(folder, Registry(participants=contacts)) as rig:
            crisis = Crisis(rig, PLATFORMS)
            await crisis.report(sla)
            await crisis.assess()
            yield crisis, hooks


async def fan_out(root: Path) -> Result:
    """Two kills: as the activation fans out, and as content waves go out to the platforms."""
    items, waves, wave = 200, 3, 100
    total = items + waves * wave
    async with assessed(root / "worker-kill-fan-out") as (crisis, hooks):
        first, second = Strike(crisis), Strike(crisis)
        await first.when(
            _kind(DecisionKind.activated), crisis.activate(items), crisis.rig.replace_worker
        )
        await second.when(
            _kind(DecisionKind.content_added),
            _waves(crisis, items + 1, waves, wave),
            crisis.rig.replace_worker,
        )
        problems = [f"{p}: {n} tasks, not {total}" for p, n in (await _tasks(crisis, total))]
        await crisis.take_down()
        await crisis.wind_down()
        await crisis.completed()  # every notice settled
        for pid, hook in hooks.items():
            if len(hook.tasks) != total:
                problems.append(f"{pid} was told of {len(hook.tasks)} tasks, not {total}")
        return await crisis.result(
            "worker-kill-fan-out",
            problems,
            [
                f"{first.evidence} when the activation ({items} items x 3 platforms) was "
                f"recorded; {second.evidence} when the first of {waves} waves of {wave} was"
            ],
        )


async def _waves(crisis: Crisis, first: int, waves: int, size: int) -> None:
    for n in range(waves):
        await crisis.add_content(first + n * size, size)


async def _tasks(crisis: Crisis, total: int, within: float = 60.0) -> list[tuple[str, int]]:
    """Waits until every platform holds `total` distinct tasks (the fan-out goes on beside the
    protocol); returns the platforms that do not, with what they hold."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        held = {p: len(set(await crisis.task_ids(p))) for p in PLATFORMS}
        short = [(p, n) for p, n in held.items() if n != total]
        if not short or loop.time() > deadline:
            return short
        await asyncio.sleep(0.5)


async def sla_escalation(root: Path) -> Result:
    """Two platforms act at once; `choosy` stays silent past its deadlines."""
    sla = CALM_SLA.model_copy(
        update={
            "acknowledge_within": timedelta(seconds=2),
            "act_within": timedelta(seconds=3),
            "escalate_after": timedelta(seconds=2),
        }
    )
    items, silent = 20, "choosy"
    async with assessed(root / "worker-kill-sla", sla) as (crisis, _):
        await crisis.activate(items)
        kill = Strike(crisis)
        await kill.when(
            _kind(DecisionKind.sla_breached, silent),
            crisis.take_down([p for p in PLATFORMS if p != silent]),
            crisis.rig.replace_worker,
        )
        clock = kill.row.decision.inputs["clock"] if kill.row else None
        # the top of the ladder for the act clock is reached after the new worker took over
        await in_ledger(
            crisis.rig.ledger_url, crisis.incident_id, _rung(DecisionKind.sla_escalated, "act")
        )
        await crisis.take_down([silent])
        await crisis.wind_down()
        problems = _ladder_problems(await crisis.rows(), await crisis.task_ids(silent))
        return await crisis.result(
            "worker-kill-sla",
            problems,
            [f"{kill.evidence} at the first missed deadline ({clock})"],
        )


async def ledger_batch(root: Path) -> Result:
    items, batch = 300, 50
    async with assessed(root / "worker-kill-ledger") as (crisis, _):
        await crisis.activate(items)
        before = crisis.book.answers
        kill = Strike(crisis)
        await kill.when(
            crisis.unanswered(*TAKEDOWN), crisis.take_down(batch=batch), crisis.rig.replace_worker
        )
        answered = kill.answers_before - before
        total = 2 * len(PLATFORMS) * items // batch
        problems = [] if answered < total else ["the takedown was over before the kill"]
        await crisis.wind_down()
        return await crisis.result(
            "worker-kill-ledger",
            problems,
            [f"{kill.evidence} with {answered} of {total} bulk reports answered"],
        )


def _kind(kind: DecisionKind, scope: str | None = None) -> Callable[[LedgerRow], bool]:
    def wanted(row: LedgerRow) -> bool:
        return row.decision.kind is kind and (
            scope is None or row.decision.decision_id.split("/")[-2] == scope
        )

    return wanted


def _rung(kind: DecisionKind, clock: str) -> Callable[[LedgerRow], bool]:
    return lambda row: row.decision.kind is kind and row.decision.inputs.get("clock") == clock


def _ladder_problems(rows: list[LedgerRow], silent_tasks: list[str]) -> list[str]:
    """Every silent task climbed each rung of both clocks exactly once."""
    rungs = Counter(
        (r.decision.inputs.get("task_id"), r.decision.inputs.get("clock"), r.decision.kind)
        for r in rows
        if r.decision.kind
        in (DecisionKind.sla_breached, DecisionKind.sla_backup_told, DecisionKind.sla_escalated)
    )
    return [
        f"{task} {clock} clock: {kind} recorded {rungs[task, clock, kind]} times"
        for task in silent_tasks
        for clock in ("acknowledge", "act")
        for kind in (
            DecisionKind.sla_breached,
            DecisionKind.sla_backup_told,
            DecisionKind.sla_escalated,
        )
        if rungs[task, clock, kind] != 1
    ]

"""Notification receivers misbehaving while a crisis runs, every one a real server on loopback:

- `downbook`'s webhook is down (nothing listens) for `DOWN` seconds from the report: deliveries
  are retried with back-off and arrive once it is back;
- `slowtube`'s webhook answers after `SLOW` seconds;
- `errorgram`'s webhook answers 500 for `DOWN` seconds;
- `flapbook`'s webhook goes down and up every `FLAP` seconds for `DOWN` seconds;
- the SMTP server defers (451) the coordinator's mail for `DEFER` seconds, then accepts it,
  and refuses (550, final) the member state's: those go to its backup desk instead.

The protocol goes on regardless; the crisis completes once every delivery has settled. Then
every notification must have arrived somewhere, on its primary route or its backup.
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import timedelta
from pathlib import Path

from chaos.crisis import AUDITOR, CALM_SLA, COORDINATOR, Crisis, platform
from chaos.receivers import Mailbox, Webhook
from chaos.results import Result
from chaos.rig import Rig
from chaos.tally import undelivered
from eucp.protocol.participants import Backup, Channel, Contact, ParticipantKind
from eucp.runtime.registry import Registry

DOWN = 30.0  # seconds the misbehaving webhooks misbehave
SLOW = 2.0
FLAP = 1.5
DEFER = 15.0
DOMAIN = "chaos.example.test"
MEMBER_STATE = "fr-pharos"
PHASE_CHANGES = 6  # reported, assessing, active, de-escalating, review, closed
# long enough for a delivery started while a receiver is down to arrive once it is back
SLA = CALM_SLA.model_copy(update={"deliver_within": timedelta(seconds=DOWN + 30)})


def desk(participant_id: str) -> Backup:
    return Backup(
        name=f"{participant_id} on-call desk",
        channels=[Channel.email],
        email=f"{participant_id}-desk@{DOMAIN}",
    )


def mailed(participant_id: str, kind: ParticipantKind, country: str | None = None) -> Contact:
    return Contact(
        id=participant_id,
        kind=kind,
        name=participant_id,
        country=country,
        channels=[Channel.email],
        email=f"{participant_id}@{DOMAIN}",
        backup=desk(participant_id),
    )


async def run(root: Path) -> Result:
    hooks = {p: Webhook(secrets.token_urlsafe(16)) for p in ("downbook", "slowtube")}
    hooks |= {p: Webhook(secrets.token_urlsafe(16)) for p in ("errorgram", "flapbook")}
    hooks["slowtube"].delay = SLOW
    hooks["errorgram"].status = 500
    for pid, hook in hooks.items():
        if pid != "downbook":
            hook.up()
    contacts = [
        mailed(COORDINATOR, ParticipantKind.coordinator),
        mailed(MEMBER_STATE, ParticipantKind.member_state, country="FR"),
        Contact(id=AUDITOR, kind=ParticipantKind.auditor, name="Auditor"),
        *(platform(p, h.url, h.secret, desk(p)) for p, h in hooks.items()),
    ]
    with Mailbox() as mail:
        mail.refuse[f"{COORDINATOR}@{DOMAIN}"] = "451 4.3.0 try again later"
        mail.refuse[f"{MEMBER_STATE}@{DOMAIN}"] = "550 5.1.1 mailbox unavailable"
        rig = Rig(
            root / "receivers-down",
            Registry(participants=contacts),
            env={"EUCP_SMTP_HOST": "127.0.0.1", "EUCP_SMTP_PORT": str(mail.port)},
        )
        try:
            async with rig:
                return await _crisis(rig, hooks, mail)
        finally:
            for hook in hooks.values():
                hook.down()


def faults_missed(
    hooks: dict[str, Webhook], mail: Mailbox, flaps: int, activated: float
) -> list[str]:
    """The misbehaviours no delivery ran into, as problems: a fault nobody met proves
    nothing."""
    evidence = {
        "downbook had no notice due while it was down": activated < DOWN,
        "slowtube's slow webhook was never called": hooks["slowtube"].attempts > 0,
        "errorgram never answered 500": hooks["errorgram"].refused > 0,
        "flapbook never went down": flaps > 0,
        "SMTP refused no recipient": mail.refusals > 0,
    }
    return [problem for problem, happened in evidence.items() if not happened]


async def _crisis(rig: Rig, hooks: dict[str, Webhook], mail: Mailbox) -> Result:
    loop = asyncio.get_running_loop()
    crisis = Crisis(rig, list(hooks))
    await crisis.report(SLA, affected=["FR"])  # the member state is told of every phase
    back = loop.time() + DOWN
    flapping = asyncio.create_task(hooks["flapbook"].flap(FLAP, lambda: loop.time() > back))
    try:
        await crisis.assess()
        await crisis.activate(30)
        activated = DOWN - (back - loop.time())  # seconds into downbook's outage
        await crisis.take_down()
        await asyncio.sleep(DEFER)
        del mail.refuse[f"{COORDINATOR}@{DOMAIN}"]
        await crisis.wind_down()  # its notifications go out while downbook is still down
        await asyncio.sleep(max(0.0, back - loop.time()))
        hooks["downbook"].up()
        hooks["errorgram"].status = 200
        flaps = await flapping
    finally:
        flapping.cancel()
    result = await crisis.result("receivers-down")
    delivered = {d for h in hooks.values() for d in h.delivered}
    delivered |= {d for ids in mail.delivered.values() for d in ids}
    problems = [f"notification never arrived: {d}" for d in undelivered(delivered)][:10]
    # the coordinator and the affected member state hear of every phase change; the platforms
    # of each from their activation on (not of the report or the assessment)
    expected = PHASE_CHANGES * 2 + (PHASE_CHANGES - 2) * len(hooks)
    phase_notices = {d.removesuffix("/backup") for d in delivered if "/crisis/" in d}
    if len(phase_notices) != expected:
        problems.append(f"{len(phase_notices)} phase-change notices arrived, not {expected}")
    ms_desk = mail.delivered.get(f"{MEMBER_STATE}-desk@{DOMAIN}", set())
    problems += [] if ms_desk else ["the refused member state's backup desk got nothing"]
    if not mail.delivered.get(f"{COORDINATOR}@{DOMAIN}"):
        problems.append("the deferred coordinator mail never arrived")
    problems += faults_missed(hooks, mail, flaps, activated)
    for pid, hook in hooks.items():
        if not hook.delivered:
            problems.append(f"{pid}'s webhook received nothing")
        if hook.bad_signatures:
            problems.append(f"{pid}'s webhook got {hook.bad_signatures} badly signed deliveries")
    notes = [
        f"{len(delivered)} deliveries arrived; webhook attempts "
        + ", ".join(f"{p} {h.attempts} ({h.refused} answered 500)" for p, h in hooks.items()),
        f"flapbook went down {flaps} times; SMTP refused {mail.refusals} recipients",
        f"downbook's activation notices were due {activated:.0f}s into its {DOWN:.0f}s outage",
    ]
    return Result(
        result.scenario, result.tally, [*result.problems, *problems], [*notes, *result.notes]
    )

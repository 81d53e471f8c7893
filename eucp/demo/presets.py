"""What the demo, the benchmark, the chaos suite and the tests set up alike: SLA clocks
compressed to the length of a run, and the participants they register (who they are and how
they are told). Built here once, so the four keep the same ids, channels and clock shape and
state only what really differs between them: the durations, the webhooks, the names.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import NamedTuple

from pydantic import SecretStr

from eucp.demo.simulator import WEBHOOK_PATH
from eucp.protocol.clocks import SlaSettings
from eucp.protocol.participants import Backup, Channel, Contact, ParticipantKind
from eucp.runtime.registry import Registry

COORDINATOR = "eu-iru"
AUDITOR = "auditor"
# display names by id; anyone else unnamed is shown by id
NAMES = {COORDINATOR: "Europol EU IRU", AUDITOR: "Auditor"}


def compressed_clocks(
    *, acknowledge: float, act: float, assessment: float, review: float, deliver: float
) -> SlaSettings:
    """Every protocol clock, in seconds, for a run that cannot wait the protocol's minutes. A
    missed deadline's reminder escalates to the coordinators one `acknowledge` later."""
    return SlaSettings(
        acknowledge_within=timedelta(seconds=acknowledge),
        act_within=timedelta(seconds=act),
        escalate_after=timedelta(seconds=acknowledge),
        assessment_within=timedelta(seconds=assessment),
        review_within=timedelta(seconds=review),
        deliver_within=timedelta(seconds=deliver),
    )


class SignedWebhook(NamedTuple):
    """Where a platform's notifications are POSTed, and the secret that signs them."""

    url: str
    secret: str


def simulator_webhook(port: int, secret: str) -> SignedWebhook:
    """The webhook of an `eucp simulate-platform` listening on loopback at `port`."""
    return SignedWebhook(f"http://127.0.0.1:{port}{WEBHOOK_PATH}", secret)


def on_call_desk(participant_id: str) -> Backup:
    """The participant's on-call desk, told on the log when the primary contact stays silent."""
    return Backup(name=f"{participant_id} on-call desk", channels=[Channel.log])


def contact(
    participant_id: str,
    kind: ParticipantKind,
    name: str | None = None,
    *,
    webhook: SignedWebhook | None = None,
    backup: Backup | None = None,
    country: str | None = None,
) -> Contact:
    """A participant told by its signed webhook when it has one, else on the log; shown by
    `name` if given, else as `NAMES` or its id say."""
    return Contact(
        id=participant_id,
        kind=kind,
        name=name or NAMES.get(participant_id, participant_id),
        channels=[Channel.webhook] if webhook else [Channel.log],
        webhook_url=webhook.url if webhook else None,
        webhook_secret=SecretStr(webhook.secret) if webhook else None,
        backup=backup,
        country=country,
    )


def registry(
    platforms: Mapping[str, SignedWebhook | None],
    *,
    member_states: Mapping[str, str] | None = None,
    names: Mapping[str, str] | None = None,
    desks: bool = False,
) -> Registry:
    """The coordinator, the member states (id: country), the auditor, then the platforms, each
    told by its webhook where `platforms` gives one and on the log otherwise. `names` are
    display names by id (see `contact` for the rest); with `desks` everyone has an on-call
    desk on the log."""
    named = names or {}
    people = [
        (COORDINATOR, ParticipantKind.coordinator),
        *((state, ParticipantKind.member_state) for state in member_states or {}),
        (AUDITOR, ParticipantKind.auditor),
    ]
    everyone = [*people, *((pid, ParticipantKind.platform) for pid in platforms)]
    return Registry(
        participants=[
            contact(
                pid,
                kind,
                named.get(pid),
                webhook=platforms.get(pid),
                backup=on_call_desk(pid) if desks else None,
                country=(member_states or {}).get(pid),
            )
            for pid, kind in everyone
        ]
    )

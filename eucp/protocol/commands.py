"""What participants send to a crisis: one model per Update, validated at the edge."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from eucp.protocol.clocks import LONGEST, SlaSettings
from eucp.protocol.identifiers import ContentIdentifier
from eucp.protocol.incident import Assessment, LinkedProtocol
from eucp.protocol.orders import ScrutinyOutcome
from eucp.protocol.participants import COUNTRY_PATTERN, ID_PATTERN, Actor, Participant
from eucp.protocol.tasks import LegalBasis, OrderDetails, TaskReport, VoluntaryReferral

MAX_BATCH = 1000
FROM_REGISTRY = "from_registry"
"""A command field's `json_schema_extra` key: the service fills the field, never the body."""


class Command(BaseModel):
    """Who acts and why; the reason is required where the phase machine says so."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    actor: Actor
    reason: str | None = Field(default=None, max_length=4000)


class Assess(Command):
    assessment: Assessment


class Activate(Command):
    override: str | None = Field(
        default=None,
        max_length=4000,
        description="why activate without all five criteria met; recorded as an override",
    )
    platforms: list[str] | None = Field(
        default=None, description="participating platforms; all registered platforms if omitted"
    )
    identifiers: list[ContentIdentifier] = Field(default_factory=list, max_length=MAX_BATCH)
    basis: LegalBasis = VoluntaryReferral()


class SetClocks(Command):
    """A coordinator changes some of the incident's clocks; the others stay as they are, and
    all those in force are recorded."""

    changes: dict[str, timedelta] = Field(
        min_length=1, description="clock name (a field of SlaSettings) -> its new duration"
    )

    @field_validator("changes")
    @classmethod
    def _known_and_positive(cls, changes: dict[str, timedelta]) -> dict[str, timedelta]:
        for name, duration in changes.items():
            if name not in SlaSettings.model_fields:
                raise ValueError(
                    f"no clock {name!r}; the clocks: {', '.join(SlaSettings.model_fields)}"
                )
            if duration <= timedelta(0):
                raise ValueError(f"{name}: a clock runs for a positive time")
            if duration > LONGEST:
                raise ValueError(f"{name}: a clock runs {LONGEST.days} days at most")
        return changes

    def applied_to(self, sla: SlaSettings) -> SlaSettings:
        return sla.model_copy(update=self.changes)


class JoinPlatform(Command):
    """A coordinator brings a platform into the running incident: it is given the open content
    meant for it, and told from then on."""

    platform: str = Field(pattern=ID_PATTERN)
    registered: Participant | None = Field(
        default=None,
        description="the platform's registry entry as the service reads it now; not sent",
        json_schema_extra={FROM_REGISTRY: True},
    )


class SuspendPlatform(Command):
    """A coordinator suspends a platform's participation: its open tasks are withdrawn, and it
    is given and told nothing more until it is brought in again."""

    platform: str = Field(pattern=ID_PATTERN)


class FlagThreat(Command):
    """Information on an imminent threat to life (TCO Art. 14(5)): the Member States concerned
    and Europol are told at once."""

    member_states: list[str] = Field(
        default_factory=list,
        max_length=27,
        description="the Member States concerned (ISO codes); the affected ones if none",
    )
    text: str = Field(min_length=1, max_length=4000)

    @field_validator("text")
    @classmethod
    def _said(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("say what the threat is")
        return text

    @field_validator("member_states")
    @classmethod
    def _countries(cls, states: list[str]) -> list[str]:
        for state in states:
            if not re.fullmatch(COUNTRY_PATTERN, state):
                raise ValueError(f"{state!r} is not a country code like FR or IE")
        if len(set(states)) < len(states):
            raise ValueError("name each Member State once")
        return states


class PostUpdate(Command):
    """A coordinator's situational update to the incident's participants."""

    text: str = Field(min_length=1, max_length=4000)

    @field_validator("text")
    @classmethod
    def _said(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("say what the update is")
        return text


class LinkProtocol(Command, LinkedProtocol):
    """The activation of another crisis protocol for the same event."""

    @property
    def link(self) -> LinkedProtocol:
        return LinkedProtocol(**self.model_dump(include=set(LinkedProtocol.model_fields)))


class AddContent(Command):
    identifiers: list[ContentIdentifier] = Field(min_length=1, max_length=MAX_BATCH)
    basis: LegalBasis = VoluntaryReferral()
    addressees: list[str] | None = Field(
        default=None,
        max_length=MAX_BATCH,
        description="the participating platforms a voluntary referral is for; all if omitted",
    )


class IssueOrder(Command):
    """A Member State authority's removal order (TCO Art. 3) for content in a running crisis."""

    identifiers: list[ContentIdentifier] = Field(min_length=1, max_length=MAX_BATCH)
    order: OrderDetails


class RequestScrutiny(Command):
    """The addressee asks the host Member State to scrutinise an order (TCO Art. 4(4)); the
    reason says why it may infringe the Regulation or fundamental rights."""

    reference: str = Field(min_length=1, max_length=100, description="the order's reference")


class DecideScrutiny(Command):
    """The host Member State authority's reasoned decision on a cross-border order (Art. 4)."""

    reference: str = Field(min_length=1, max_length=100, description="the order's reference")
    outcome: ScrutinyOutcome


class ClarifyOrder(Command):
    """The issuing authority's clarification of an order its addressee could not execute
    (Annex III); the reason carries it. The hour starts again on arrival (Art. 3(8))."""

    reference: str = Field(min_length=1, max_length=100, description="the order's reference")


class ReportSightings(Command):
    identifiers: list[ContentIdentifier] = Field(min_length=1, max_length=MAX_BATCH)


class SightingRequest(BaseModel):
    """One call's sightings inside a merged batch; its `request_id` makes a retry harmless."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cmd: ReportSightings
    request_id: str | None = None


class SightingsBatch(BaseModel):
    """Concurrent sighting calls the API merged into one Update: one ledger batch and one
    fan-out for all of them, a decision and an answer for each."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    requests: list[SightingRequest] = Field(min_length=1, max_length=MAX_BATCH)


class WithdrawContent(Command):
    items: list[int] = Field(min_length=1, max_length=MAX_BATCH)


class ReportFalsePositive(Command):
    item: int = Field(ge=1)


class DeEscalate(Command):
    withdraw_open_tasks: bool = False


class SubmitReviewInput(Command):
    text: str = Field(min_length=1, max_length=20_000)


class ReportTasks(BaseModel):
    """A platform's bulk report: many tasks in one Update (100-250 is the sweet spot)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    actor: Actor
    reports: list[TaskReport] = Field(min_length=1, max_length=MAX_BATCH)


class OrderChange(BaseModel):
    """The crisis telling the addressee's workflow what became of one of its orders: clarified
    by its issuer (the paused hour starts again) or found to infringe (it loses effect)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    actor: Actor
    reference: str
    items: list[int]
    change: Literal["clarified", "lost_effect"]
    text: str = Field(description="the clarification, or the scrutiny decision's reasons")


class WithdrawTasks(BaseModel):
    """The crisis telling a platform's workflow to withdraw tasks (all open ones if no items)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    actor: Actor
    reason: str
    items: list[int] | None = None

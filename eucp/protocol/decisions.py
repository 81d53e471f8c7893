"""Decisions: what the ledger records, one row each, and how a row is hashed."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from eucp.protocol.participants import Actor, ParticipantKind


class DecisionKind(StrEnum):
    # incident level
    reported = "reported"
    assessed = "assessed"
    activated = "activated"
    not_activated = "not_activated"
    activation_renewed = "activation_renewed"
    activation_expiring = "activation_expiring"
    clocks_set = "clocks_set"
    platform_joined = "platform_joined"
    platform_suspended = "platform_suspended"
    imminent_threat_flagged = "imminent_threat_flagged"
    situation_updated = "situation_updated"
    protocol_linked = "protocol_linked"
    content_added = "content_added"
    removal_order_issued = "removal_order_issued"
    scrutiny_requested = "scrutiny_requested"
    scrutiny_decided = "scrutiny_decided"
    scrutiny_window_closed = "scrutiny_window_closed"
    scrutiny_overdue = "scrutiny_overdue"
    order_clarified = "order_clarified"
    content_withdrawn = "content_withdrawn"
    sighting_reported = "sighting_reported"
    false_positive_reported = "false_positive_reported"
    de_escalated = "de_escalated"
    re_escalated = "re_escalated"
    review_started = "review_started"
    review_input = "review_input"
    closed = "closed"
    assessment_reminder = "assessment_reminder"
    assessment_escalated = "assessment_escalated"
    # task level
    task_acknowledged = "task_acknowledged"
    task_removed = "task_removed"
    task_not_found = "task_not_found"
    task_declined = "task_declined"
    task_cannot_comply = "task_cannot_comply"
    task_resumed = "task_resumed"
    task_withdrawn = "task_withdrawn"
    reinstatement_assigned = "reinstatement_assigned"
    task_reinstated = "task_reinstated"
    pause_alerted = "pause_alerted"
    sla_breached = "sla_breached"
    sla_backup_told = "sla_backup_told"
    sla_escalated = "sla_escalated"


# what an incident's course shows those who read its timeline: never an order, a task or
# content, which are their addressees' business
COURSE = frozenset(
    {
        DecisionKind.reported,
        DecisionKind.assessed,
        DecisionKind.activated,
        DecisionKind.not_activated,
        DecisionKind.activation_renewed,
        DecisionKind.activation_expiring,
        DecisionKind.clocks_set,
        DecisionKind.platform_joined,
        DecisionKind.platform_suspended,
        DecisionKind.imminent_threat_flagged,
        DecisionKind.situation_updated,
        DecisionKind.protocol_linked,
        DecisionKind.de_escalated,
        DecisionKind.re_escalated,
        DecisionKind.review_started,
        DecisionKind.closed,
    }
)


class Decision(BaseModel):
    """One accepted decision: who, what, when, why and on which inputs.

    `decision_id` is fixed by the workflow before the ledger write, so a retried write
    finds the row it already made instead of adding a second one.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    decision_id: str = Field(min_length=1, max_length=300)
    incident_id: str
    actor: Actor
    kind: DecisionKind
    reason: str | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    at: datetime


def is_lapse(d: Decision) -> bool:
    """Whether a `de_escalated` decision is the activation lapsing unrenewed: recorded by eucp
    itself with its `lapsed` input."""
    return (
        d.kind is DecisionKind.de_escalated
        and d.actor.kind is ParticipantKind.system
        and d.inputs.get("lapsed") is True
    )


class LedgerRow(BaseModel):
    """A decision as stored: its place in the incident's chain and the hashes that bind it."""

    model_config = ConfigDict(frozen=True)

    incident_id: str
    seq: int
    decision: Decision
    prev_hash: str
    hash: str


GENESIS_HASH = "0" * 64


def canonical_json(value: Any) -> str:
    """Key-sorted, compact JSON: the same decision always hashes the same."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def row_hash(
    incident_id: str, seq: int, decision: Decision, prev_hash: str, payload: str | None = None
) -> str:
    """SHA-256 over the canonical JSON of the row's content and the previous row's hash.

    `payload`, the decision's canonical JSON when the caller has it already, saves serialising
    the decision twice per row: the row is assembled around it in key order, byte for byte what
    `canonical_json` of the whole gives."""
    if payload is None:
        payload = canonical_json(decision.model_dump(mode="json"))
    body = (
        f'{{"decision":{payload},"incident_id":{canonical_json(incident_id)},'
        f'"prev_hash":{canonical_json(prev_hash)},"seq":{int(seq)}}}'
    )
    return hashlib.sha256(body.encode()).hexdigest()

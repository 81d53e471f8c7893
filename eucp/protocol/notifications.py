"""Notifications: what eucp tells a participant, and the record that it was delivered."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class NotificationKind(StrEnum):
    """Why a participant is being told something; sent as the `X-EUCP-Event` header."""

    task_assigned = "task_assigned"
    reminder = "reminder"
    escalation = "escalation"
    phase_changed = "phase_changed"
    situation_update = "situation_update"  # a coordinator's word to the incident's participants
    imminent_threat = "imminent_threat"  # TCO Art. 14(5): to the Member States concerned, Europol
    false_positive = "false_positive"
    review_requested = "review_requested"
    tasks_withdrawn = "tasks_withdrawn"
    removal_confirmed = "removal_confirmed"  # to a removal order's issuing authority (Annex II)
    clarification_requested = "clarification_requested"  # to the issuer (Annex III)
    clarification_received = "clarification_received"  # to the addressee: the hour restarts
    order_paused = "order_paused"  # to the issuer: force majeure or a de facto impossibility
    pause_alert = "pause_alert"  # a task paused too long: to coordinators and the issuer
    scrutiny_copy = "scrutiny_copy"  # a cross-border order, to the host State (TCO Art. 4(1))
    scrutiny_requested = "scrutiny_requested"  # the addressee asks (Art. 4(4))
    scrutiny_decided = "scrutiny_decided"  # upheld or infringes (Art. 4(6))
    scrutiny_overdue = "scrutiny_overdue"  # 72 hours from a request passed with no decision
    order_lost_effect = "order_lost_effect"  # to the addressee: tasks withdrawn, reinstate


class Route(StrEnum):
    """Which of the participant's contacts a notification goes to: its own channels
    (`primary`), or the backup contact in its registry entry (`backup`)."""

    primary = "primary"
    backup = "backup"


class Notification(BaseModel):
    """One message to one participant.

    `delivery_id` is fixed by the workflow and identical on every retry, so a receiver
    that sees it twice knows it is the same notification and can drop the duplicate.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    delivery_id: str = Field(min_length=1)
    recipient_id: str
    kind: NotificationKind
    incident_id: str
    summary: str
    data: dict[str, Any] = Field(default_factory=dict)
    route: Route = Route.primary


class Delivery(BaseModel):
    """The result of a notification: which channels of the routed contact accepted it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    delivery_id: str
    recipient_id: str
    channels: list[str]
    route: Route = Route.primary

"""The incident's clocks: every protocol duration, fixed when the incident is reported."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, Field


class SlaSettings(BaseModel):
    """Every protocol duration; a crisis may override any of them at report time."""

    acknowledge_within: timedelta = timedelta(minutes=15)
    act_within: timedelta = timedelta(minutes=60)
    escalate_after: timedelta = Field(
        default=timedelta(minutes=15),
        description="time from a missed deadline's reminder to the escalation to coordinators",
    )
    assessment_within: timedelta = timedelta(minutes=60)
    review_within: timedelta = timedelta(days=7)
    deliver_within: timedelta = Field(
        default=timedelta(hours=1),
        description="how long a notification is retried before its backup contact is told",
    )
    pause_alert_after: timedelta = Field(
        default=timedelta(hours=4),
        description="a task paused this long (TCO Annex III) alerts the coordinators and, "
        "for a removal order, its issuing authority",
    )

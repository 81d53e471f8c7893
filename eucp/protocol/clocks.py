"""The incident's clocks: every protocol duration, fixed when the incident is reported."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, Field, field_validator

LONGEST = timedelta(days=366)
"""The longest any clock may run: a deadline must be a date."""


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
    activation_for: timedelta = Field(
        default=timedelta(hours=48),
        description="how long an activation lasts unless renewed (real ones lasted 19-42 h)",
    )
    renewal_reminder: timedelta = Field(
        default=timedelta(hours=6),
        description="how long before an activation lapses the coordinators are reminded",
    )
    pause_alert_after: timedelta = Field(
        default=timedelta(hours=4),
        description="a task paused this long (TCO Annex III) alerts the coordinators and, "
        "for a removal order, its issuing authority",
    )

    @field_validator("*")
    @classmethod
    def _a_date_can_be_reckoned(cls, duration: timedelta) -> timedelta:
        if not timedelta(0) < duration <= LONGEST:
            raise ValueError(f"a clock runs for a positive time, {LONGEST.days} days at most")
        return duration


def spoken(duration: timedelta) -> str:
    """A duration as a person says it: "4 h", "1 h 30 min", "12 min", "45 s", "0.4 s",
    "20 ms"."""
    seconds = duration.total_seconds()
    if seconds < 0.05:
        return f"{seconds * 1000:.0f} ms"
    tenths = round(seconds, 1)
    if tenths < 10 and tenths % 1:
        return f"{tenths:.1f} s"
    if round(seconds) < 60:
        return f"{round(seconds)} s"
    minutes = round(seconds / 60)
    hours, minutes = divmod(minutes, 60)
    if not hours:
        return f"{minutes} min"
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def moment_in_words(at: datetime) -> str:
    """A time as a person reads it, with its zone: "2026-03-15 02:00 UTC"."""
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_clock_change(text: str) -> tuple[str, timedelta]:
    """`act_within=45m` -> ("act_within", 45 minutes): a clock and its new duration as people
    type them (s, m, h or d); which clocks exist is the command's rule (`SetClocks`)."""
    name, _, value = text.partition("=")
    found = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)([smhd])", value.strip())
    if not name.strip() or found is None:
        raise ValueError(f"{text.strip()!r}: say CLOCK=DURATION, e.g. act_within=45m")
    try:
        duration = timedelta(**{_UNITS[found.group(2)]: float(found.group(1))})
    except OverflowError:
        duration = LONGEST + LONGEST  # refused as too long below, as a duration
    if duration > LONGEST:
        raise ValueError(f"{text.strip()!r}: a clock runs {LONGEST.days} days at most")
    return name.strip(), duration

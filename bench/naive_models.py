"""The naive baseline's payloads (passed through the workflow sandbox)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class NaiveStep(BaseModel):
    """One step of one task: `acknowledged` or `removed`."""

    task_id: str
    outcome: str


class NaiveDecision(BaseModel):
    """The one decision a naive step writes to the ledger, in its own activity."""

    incident_id: str
    platform_id: str
    task_id: str
    outcome: str
    at: datetime

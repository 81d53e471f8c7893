"""The HTTP API's own wire models: request and answer bodies that are not protocol models.

Plain pydantic over the protocol layer, so that the HTTP client (and a platform's code) can
import them without FastAPI or Temporal. Action bodies are the commands without `actor`,
which the caller's token supplies (`body_of`).
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from eucp.protocol.clocks import SlaSettings
from eucp.protocol.commands import FROM_REGISTRY, MAX_BATCH, Command
from eucp.protocol.decisions import DecisionKind
from eucp.protocol.incident import IncidentReport
from eucp.protocol.participants import ID_PATTERN
from eucp.protocol.phases import Phase
from eucp.protocol.refusal import RefusalKind
from eucp.protocol.state import PlatformSummary
from eucp.protocol.tasks import Task, TaskReport


class ReportIncident(BaseModel):
    model_config = ConfigDict(extra="forbid")

    incident_id: str | None = Field(default=None, pattern=ID_PATTERN)
    report: IncidentReport
    sla: SlaSettings | None = None


class Reported(BaseModel):
    incident_id: str


class PlatformView(BaseModel):
    """What a platform may see of an incident: the crisis's phase and its own tasks."""

    incident_id: str
    title: str
    phase: Phase
    tasks: PlatformSummary


class TaskReports(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reports: list[TaskReport] = Field(min_length=1, max_length=MAX_BATCH)


class TimelineEntry(BaseModel):
    """One decision of an incident's course as a Member State reads it: what, when, by whom,
    why; never its inputs (identifiers, orders and tasks are others' business)."""

    at: datetime
    kind: DecisionKind
    by: str
    reason: str | None = None
    text: str | None = Field(default=None, description="a situational update's text")


class TaskChange(BaseModel):
    """One task of the platform as it stands after its last change (`GET /v1/tasks`)."""

    incident_id: str
    task: Task
    changed_at: datetime = Field(description="when the task last changed")
    false_positive: bool = Field(
        default=False,
        description="withdrawn after its item was reported as a false positive: confirmed",
    )


class TaskChanges(BaseModel):
    """A page of a platform's task changes across its incidents, oldest change first."""

    changes: list[TaskChange]
    checkpoint: str = Field(description="send as `since` to continue after these changes")
    as_of: datetime = Field(description="changes up to this moment are in this page or before")
    more: bool = Field(description="more changes are waiting: ask again at once")


class Problem(BaseModel):
    """One invalid input of a refused request."""

    field: str = Field(description="the input at fault: a body path, a parameter or a header")
    rule: str = Field(description="the rule it breaks, in words")


class RefusalDetails(Problem):
    """Why a request was refused; it changed nothing."""

    refusal: RefusalKind | Literal["unavailable"] = Field(
        description="the kind of refusal, one per status: unauthenticated 401, forbidden 403, "
        "not_found 404, conflict 409, too_large 413, invalid 422 (and 405), busy 429, "
        "unavailable 503 (the workflow service did not answer)"
    )


class ErrorBody(BaseModel):
    """Every refusal's body, whoever refused (`Refusal.body()`): the problem in `error`; for a
    request refused for its form (422), every invalid input in `errors` too."""

    error: RefusalDetails
    errors: list[Problem] = Field(
        default_factory=list, description="every invalid input of a request refused for its form"
    )


def _from_registry(extra: object) -> bool:
    return isinstance(extra, dict) and bool(extra.get(FROM_REGISTRY))


REASON_REQUIRED = {
    "type": "string",
    "maxLength": 4000,
    "pattern": r"\S",
    "description": "why: this action needs a reason, not blank (422 without one, once the "
    "caller may take the action in the incident's phase: 403, 404 and 409 come first)",
}


def _reason_required(schema: dict[str, Any]) -> None:
    schema["properties"]["reason"] = dict(REASON_REQUIRED)
    schema["required"] = ["reason", *schema.get("required", [])]


@cache
def body_of(command: type[Command], reason_required: bool = False) -> type[BaseModel]:
    """The request body of a command: its fields without `actor`, which the token supplies,
    and without those the service fills from the registry (a body cannot say them).

    An action that needs a reason has its own body model (`...WithReasonBody`), whose schema
    says so; it validates as the other does, so that the protocol's order of refusals holds
    (who may, then when, then why: `eucp.protocol.actions.check`)."""
    fields: Any = {
        name: (info.annotation, info)
        for name, info in command.model_fields.items()
        if name != "actor" and not _from_registry(info.json_schema_extra)
    }
    config = ConfigDict(extra="forbid")
    if reason_required:
        config["json_schema_extra"] = _reason_required
    name = f"{command.__name__}{'WithReason' if reason_required else ''}Body"
    return create_model(name, __config__=config, **fields)

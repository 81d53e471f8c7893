"""The one refusal: an input the protocol (or the API in front of it) will not take.

A `Refusal` names the input at fault (`field`), the rule it breaks (`rule`) and its kind, and it
changed nothing. It keeps that one form from the phase machine to the caller: the workflow
sends its `details` in an `ApplicationError` of type `Rejected` (an Update may raise nothing
else without retrying its workflow task forever; `workflows.errors` builds it), the service
reads it back with `from_application_error`, the HTTP API writes it as the error `body`, and
the HTTP client raises it again `from_body`. Nothing here imports Temporal or FastAPI.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any


class RefusalKind(StrEnum):
    """Why a request is refused; the error body's `refusal`, and its HTTP status."""

    invalid = "invalid"
    forbidden = "forbidden"
    not_found = "not_found"
    conflict = "conflict"
    unauthenticated = "unauthenticated"
    too_large = "too_large"
    busy = "busy"


HTTP_STATUS: dict[RefusalKind, int] = {
    RefusalKind.invalid: 422,
    RefusalKind.forbidden: 403,
    RefusalKind.not_found: 404,
    RefusalKind.conflict: 409,
    RefusalKind.unauthenticated: 401,
    RefusalKind.too_large: 413,
    RefusalKind.busy: 429,
}
KIND_OF_STATUS = {status: kind for kind, status in HTTP_STATUS.items()}

APPLICATION_ERROR_TYPE = "Rejected"


class Refusal(Exception):
    """A refused input; nothing changed (unless `applied` says what earlier batches did).

    `problems` lists every invalid input of a request (422); `retry_after` says when a busy
    caller may come back; `status` is the HTTP status (from the kind unless given).
    """

    def __init__(
        self,
        field: str,
        rule: str,
        kind: RefusalKind = RefusalKind.conflict,
        *,
        status: int | None = None,
        problems: Sequence[Mapping[str, str]] = (),
        retry_after: int | None = None,
        applied: Any = None,
    ) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule
        self.kind = kind
        self.status = status or HTTP_STATUS[kind]
        self.problems = [dict(p) for p in problems]
        self.retry_after = retry_after
        self.applied = applied

    # ---- the HTTP error body -------------------------------------------------------------

    def body(self) -> dict[str, Any]:
        """`{"error": {"field", "rule", "refusal"}}`, with `errors` when there are several."""
        error: dict[str, Any] = {"error": self.details()}
        return error | {"errors": self.problems} if self.problems else error

    @classmethod
    def from_body(cls, status: int, body: Any, text: str = "") -> Refusal:
        """The refusal an HTTP error answer carries; from its status and text if the body is
        not the API's error body."""
        try:
            error = body["error"]
            kind = RefusalKind(error["refusal"])
            return cls(
                str(error["field"]),
                str(error["rule"]),
                kind,
                status=status,
                problems=body.get("errors", ()),
            )
        except (KeyError, TypeError, ValueError):
            kind = KIND_OF_STATUS.get(status, RefusalKind.invalid)
            return cls("", text.strip()[:500], kind, status=status)

    # ---- across the workflow boundary ----------------------------------------------------

    def details(self) -> dict[str, str]:
        """What an `ApplicationError` of type `Rejected` carries for this refusal."""
        return {"field": self.field, "rule": self.rule, "refusal": self.kind.value}

    @classmethod
    def from_application_error(cls, error: BaseException | None) -> Refusal | None:
        """The refusal an Update's failure carries (an `ApplicationError` of type `Rejected`),
        or None if it is none."""
        if getattr(error, "type", None) != APPLICATION_ERROR_TYPE:
            return None
        details: dict[str, str] = getattr(error, "details", [{}])[0]
        return cls(details["field"], details["rule"], RefusalKind(details["refusal"]))

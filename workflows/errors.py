"""The one way workflows refuse input: an ApplicationError that names the field and the rule."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from eucp.phases import Refusal


def rejected(field: str, rule: str, refusal: Refusal = Refusal.conflict) -> ApplicationError:
    """A non-retryable error the caller sees as `field: rule`, with both in the details."""
    return ApplicationError(
        f"{field}: {rule}",
        {"field": field, "rule": rule, "refusal": refusal},
        type="Rejected",
        non_retryable=True,
    )

"""How workflows refuse input: an ApplicationError that names the field and the rule, or (while
a run drains for continue-as-new) one that asks for the Update again."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from eucp.protocol.phases import Refusal


def rejected(field: str, rule: str, refusal: Refusal = Refusal.conflict) -> ApplicationError:
    """A non-retryable error the caller sees as `field: rule`, with both in the details."""
    return ApplicationError(
        f"{field}: {rule}",
        {"field": field, "rule": rule, "refusal": refusal},
        type="Rejected",
        non_retryable=True,
    )


MOVING = "ContinuingAsNew"


def moving() -> ApplicationError:
    """Refuses an Update while the workflow drains for continue-as-new: nothing changed, and
    the service sends the Update again until the next run takes it."""
    return ApplicationError(
        "the workflow is continuing as new; send the Update again", type=MOVING, non_retryable=True
    )

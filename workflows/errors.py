"""How workflows refuse input: the protocol's `Refusal`, raised anywhere in workflow code, leaves
a validator or an Update handler as the `ApplicationError` an Update may raise (anything else
would retry the workflow task forever); while a run drains for continue-as-new, an error asks
for the Update again."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from eucp.protocol.refusal import APPLICATION_ERROR_TYPE, Refusal


def refused(refusal: Refusal) -> ApplicationError:
    """A non-retryable error the caller sees as `field: rule`, with both in the details."""
    return ApplicationError(
        str(refusal), refusal.details(), type=APPLICATION_ERROR_TYPE, non_retryable=True
    )


@contextmanager
def as_update_errors() -> Iterator[None]:
    """Around a validator or a handler's body: a `Refusal` inside leaves as `refused(...)`."""
    try:
        yield
    except Refusal as refusal:
        raise refused(refusal) from None


MOVING = "ContinuingAsNew"


def moving() -> ApplicationError:
    """Refuses an Update while the workflow drains for continue-as-new: nothing changed, and
    the service sends the Update again until the next run takes it."""
    return ApplicationError(
        "the workflow is continuing as new; send the Update again", type=MOVING, non_retryable=True
    )

"""The one way workflows refuse input: an ApplicationError that names the field and the rule."""

from __future__ import annotations

from temporalio.exceptions import ApplicationError


def rejected(field: str, rule: str) -> ApplicationError:
    """A non-retryable error the caller sees as `field: rule`, with both in the details."""
    return ApplicationError(
        f"{field}: {rule}", {"field": field, "rule": rule}, type="Rejected", non_retryable=True
    )

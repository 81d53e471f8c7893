"""Answers kept by request id, so that an Update retried with its Idempotency-Key gets its first
answer again and changes nothing, also when the retry reaches the next run: Temporal dedupes
Update ids within one run only, so the answers travel in the state across continue-as-new."""

from __future__ import annotations

from typing import TypeVar

from temporalio import workflow

AnswerT = TypeVar("AnswerT")


def request_key() -> str | None:
    """The caller's request id for the Update under way, when it has one: the service names an
    Update after the caller's Idempotency-Key (`participant:key`); one sent without a key has a
    random id (no colon) and is not remembered."""
    info = workflow.current_update_info()
    return f"update/{info.id}" if info is not None and ":" in info.id else None


def remember(answered: dict[str, AnswerT], key: str, answer: AnswerT, kept: int) -> None:
    """Keeps `answer` under `key`, and the latest `kept` answers only (dicts keep their order
    of insertion, so the oldest go first)."""
    answered[key] = answer
    while len(answered) > kept:
        del answered[next(iter(answered))]

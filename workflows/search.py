"""The typed search attributes of a crisis run (`eucp.protocol.search` names them), and their
values for a crisis state: set by the service as it starts the run, kept current by the run
itself (`CrisisWorkflow._index`), read back by the lists."""

from __future__ import annotations

from typing import Any

from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    SearchAttributeUpdate,
    TypedSearchAttributes,
)

from eucp.protocol import search
from eucp.protocol.state import CrisisState

PHASE = SearchAttributeKey.for_keyword(search.PHASE)
PLATFORMS = SearchAttributeKey.for_keyword_list(search.PLATFORMS)
REPORTER = SearchAttributeKey.for_keyword(search.REPORTER)
EXERCISE = SearchAttributeKey.for_bool(search.EXERCISE)
KEYS: list[SearchAttributeKey[Any]] = [PHASE, PLATFORMS, REPORTER, EXERCISE]


def indexed(state: CrisisState) -> TypedSearchAttributes:
    """What a crisis is found by, as it starts or continues as new (`changes` from none)."""
    return TypedSearchAttributes(
        [SearchAttributePair(u.key, u.value) for u in changes(TypedSearchAttributes.empty, state)]
    )


def changes(now: TypedSearchAttributes, state: CrisisState) -> list[SearchAttributeUpdate[Any]]:
    """The updates that make the attributes `now` say what the crisis is: its phase, the
    platforms given a part (suspended ones too: they still read it; none yet is no value, a
    keyword list is never set empty), its reporter and whether it is an exercise. None when
    they agree already."""
    updates: list[SearchAttributeUpdate[Any]] = []
    if now.get(PHASE) != state.phase.value:
        updates.append(PHASE.value_set(state.phase.value))
    if state.platforms and list(now.get(PLATFORMS) or []) != state.platforms:
        updates.append(PLATFORMS.value_set(list(state.platforms)))
    if now.get(REPORTER) != state.report.reporter:
        updates.append(REPORTER.value_set(state.report.reporter))
    if now.get(EXERCISE) != state.report.exercise:
        updates.append(EXERCISE.value_set(state.report.exercise))
    return updates

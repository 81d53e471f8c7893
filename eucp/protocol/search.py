"""Incidents found by what they are: the custom search attributes each crisis run carries in
Temporal's visibility store, and the conditions a search of them makes.

Every crisis run is indexed by its phase, the platforms that take part, its reporter and
whether it is an exercise (`workflows.search` sets them; the service, the console and
`temporal workflow list --query` read them). The names and their Temporal types are here,
as plain words, so that whatever registers them on a server (`eucp.runtime.devserver`, the
test fixtures, `docs/operations.md` for a cluster) and whatever sets them agree; nothing here
imports Temporal.

A search turns into a visibility query from checked values only: a phase of the protocol,
participant ids of `ID_PATTERN`, a boolean. None of them can hold a quote, so no value can
change the query it is put in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from eucp.protocol.participants import ID_PATTERN
from eucp.protocol.phases import Phase
from eucp.protocol.refusal import Refusal, RefusalKind

PHASE = "EucpPhase"  # the crisis's phase
PLATFORMS = "EucpPlatforms"  # the platforms given a part: suspended ones too (see `platforms`)
REPORTER = "EucpReporter"  # the participant who reported it
EXERCISE = "EucpExercise"  # true for an exercise's runs

# Each attribute and its type, as `temporal operator search-attribute create --type` and
# `temporal server start-dev --search-attribute NAME=TYPE` take it.
SEARCH_ATTRIBUTES: dict[str, str] = {
    PHASE: "Keyword",
    PLATFORMS: "KeywordList",
    REPORTER: "Keyword",
    EXERCISE: "Bool",
}


@dataclass(frozen=True)
class IncidentSearch:
    """What a list of incidents is narrowed to; every condition given must hold.

    `platform` finds the incidents the platform was given a part in, including those where
    its participation was suspended since: such a platform still reads the incident and its
    tasks (`GET /v1/incidents/{id}`), so its list still shows it."""

    phase: Phase | None = None
    platform: str | None = None
    reporter: str | None = None
    exercise: bool | None = None

    @classmethod
    def of(
        cls,
        phase: str | None = None,
        platform: str | None = None,
        reporter: str | None = None,
        exercise: bool | None = None,
    ) -> IncidentSearch:
        """The search a request's words ask for; a phase that is not one of the protocol's, or
        an id that no participant could have, is refused as invalid (422), naming it."""
        return cls(
            phase=_phase(phase) if phase else None,
            platform=_participant("platform", platform) if platform else None,
            reporter=_participant("reporter", reporter) if reporter else None,
            exercise=exercise,
        )

    def by_platform(self, platform_id: str) -> IncidentSearch:
        """The search as a platform may make it: among the incidents it was given a part in,
        by phase or exercise. Another platform's incidents, or who reported its own, are not
        its to learn (its view of an incident names neither), so naming them is refused."""
        if self.platform not in (None, platform_id):
            rule = f"a platform lists its own incidents: leave out platform, or give {platform_id}"
            raise Refusal("platform", rule, RefusalKind.forbidden)
        if self.reporter is not None:
            rule = "a platform does not learn who reported an incident: leave out reporter"
            raise Refusal("reporter", rule, RefusalKind.forbidden)
        return IncidentSearch(phase=self.phase, platform=platform_id, exercise=self.exercise)

    def conditions(self) -> list[str]:
        """The visibility query's conditions for this search, to be joined with AND."""
        found: list[str] = []
        if self.phase is not None:
            found.append(f"{PHASE} = {_quoted(self.phase.value)}")
        if self.platform is not None:  # a keyword list matches if any of its values is equal
            found.append(f"{PLATFORMS} = {_quoted(self.platform)}")
        if self.reporter is not None:
            found.append(f"{REPORTER} = {_quoted(self.reporter)}")
        if self.exercise is not None:
            found.append(f"{EXERCISE} = {'true' if self.exercise else 'false'}")
        return found


def _phase(value: str) -> Phase:
    try:
        return Phase(value)
    except ValueError:
        rule = f"no phase {value[:70]!r}: use one of {', '.join(p.value for p in Phase)}"
        raise Refusal("phase", rule, RefusalKind.invalid) from None


def _participant(field: str, value: str) -> str:
    if not re.fullmatch(ID_PATTERN, value):
        rule = f"use 1-63 of a-z 0-9 . _ - for a participant id (got {value[:70]!r})"
        raise Refusal(field, rule, RefusalKind.invalid)
    return value


def _quoted(value: str) -> str:
    """A checked value as a string of the query: it has no quote or backslash to escape."""
    if not re.fullmatch(r"[a-z0-9._-]+", value):
        raise ValueError(f"{value!r} is not a checked search value")
    return f"'{value}'"

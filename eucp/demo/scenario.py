"""The synthetic crises shipped with eucp (see eucp/demo/scenarios/): platforms, waves,
sightings, platforms brought in mid-crisis. `make demo` plays one; `eucp exercise run` plays any
file of this format against a running stack."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from eucp.protocol.identifiers import ContentIdentifier
from eucp.protocol.incident import CriterionStatus


class ScenarioPlatform(BaseModel):
    id: str
    name: str
    ack_median_min: float
    act_median_min: float
    decline_rate: float
    misses_sla: bool


class ScenarioReport(BaseModel):
    title: str
    reported_by: str
    event_started_minutes_before_report: float
    location: str
    affected_member_states: list[str]
    summary: str


class Wave(BaseModel):
    at_minutes: float
    identifiers: list[ContentIdentifier]


class Sighting(BaseModel):
    at_minutes: float
    by: str
    identifier: ContentIdentifier


class Join(BaseModel):
    """A platform not named at activation, brought in at `at_minutes` (action join_platform)."""

    at_minutes: float
    platform: str
    reason: str = Field(min_length=1)


class Expected(BaseModel):
    identifiers_sent: int
    sightings: int
    distinct_after_dedup_excluding_low_quality_pdq: int


class Scenario(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str
    pdq_match_distance: int
    pdq_min_quality: int
    platforms: list[ScenarioPlatform]
    report: ScenarioReport
    assessment: dict[str, CriterionStatus]
    waves: list[Wave]
    sightings: list[Sighting]
    joins: list[Join] = Field(default_factory=list)
    expected: Expected | None = None

    @model_validator(mode="after")
    def _names_its_platforms(self) -> Self:
        """Sightings and joins name platforms of the scenario; each joins once, after the
        first wave (the activation)."""
        known = {p.id for p in self.platforms}
        if not self.waves:
            raise ValueError("waves: the first wave is the activation's; give at least one")
        strangers = {s.by for s in self.sightings} | {j.platform for j in self.joins}
        if strangers - known:
            raise ValueError(f"not among the scenario's platforms: {sorted(strangers - known)}")
        joining = [j.platform for j in self.joins]
        if len(set(joining)) < len(joining):
            raise ValueError("joins: a platform is brought in once")
        start = self.waves[0].at_minutes
        if any(j.at_minutes < start for j in self.joins):
            raise ValueError("joins: a platform is brought in after the activation (first wave)")
        return self

    def platform(self, platform_id: str) -> ScenarioPlatform:
        return next(p for p in self.platforms if p.id == platform_id)


def load(name: str = "christchurch-like") -> Scenario:
    """A scenario shipped with eucp, by name."""
    text = resources.files("eucp.demo").joinpath("scenarios", f"{name}.json").read_text()
    return Scenario.model_validate_json(text)


def load_file(path: Path) -> Scenario:
    """A scenario file of this format anywhere (an exercise's own)."""
    return Scenario.model_validate_json(path.read_text(encoding="utf-8"))

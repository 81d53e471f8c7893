"""The synthetic crises shipped with eucp (see eucp/demo/scenarios/): platforms, waves,
sightings."""

from __future__ import annotations

from importlib import resources

from pydantic import BaseModel, ConfigDict

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
    expected: Expected

    def platform(self, platform_id: str) -> ScenarioPlatform:
        return next(p for p in self.platforms if p.id == platform_id)


def load(name: str = "christchurch-like") -> Scenario:
    text = resources.files("eucp.demo").joinpath("scenarios", f"{name}.json").read_text()
    return Scenario.model_validate_json(text)

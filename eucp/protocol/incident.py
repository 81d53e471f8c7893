"""What a crisis starts from: the report of a potential crisis and its assessment."""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from eucp.protocol.identifiers import ContentIdentifier
from eucp.protocol.participants import ID_PATTERN


class IncidentReport(BaseModel):
    """A participant's report of a potential crisis (2026 early warning; TCO Art. 14(5))."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=10_000)
    event_started_at: AwareDatetime
    event_place: str = Field(min_length=1, max_length=200)
    reporter: str = Field(pattern=ID_PATTERN)
    affected_member_states: list[str] = Field(default_factory=list)
    first_identifiers: list[ContentIdentifier] = Field(default_factory=list, max_length=1000)


class CriterionStatus(StrEnum):
    met = "met"
    not_met = "not_met"
    unknown = "unknown"


class Criterion(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    status: CriterionStatus = CriterionStatus.unknown
    evidence: str = Field(default="", max_length=4000)


class Assessment(BaseModel):
    """The five checks of an online crisis situation (Europol Reg. as amended by 2022/991)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    real_world_event: Criterion = Criterion()
    depicts_harm: Criterion = Criterion()
    intimidation: Criterion = Criterion()
    tve_link: Criterion = Criterion()
    multi_platform_virality: Criterion = Criterion()

    def all_met(self) -> bool:
        return all(
            getattr(self, name).status is CriterionStatus.met for name in type(self).model_fields
        )

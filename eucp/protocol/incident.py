"""What a crisis starts from: the report of a potential crisis and its assessment."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from eucp.protocol.identifiers import ContentIdentifier
from eucp.protocol.participants import COUNTRY_PATTERN, ID_PATTERN
from eucp.protocol.refusal import Refusal, RefusalKind


class IncidentReport(BaseModel):
    """A participant's report of a potential crisis (2026 early warning; TCO Art. 14(5))."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=10_000)
    event_started_at: AwareDatetime
    event_place: str = Field(min_length=1, max_length=200)
    reporter: str = Field(pattern=ID_PATTERN)
    affected_member_states: list[Annotated[str, Field(pattern=COUNTRY_PATTERN)]] = Field(
        default_factory=list, description="ISO 3166-1 alpha-2 codes, e.g. FR"
    )
    first_identifiers: list[ContentIdentifier] = Field(default_factory=list, max_length=1000)
    exercise: bool = Field(
        default=False,
        description="a rehearsal of the protocol: said in every notice, kept out of real figures",
    )


class LinkedProtocolKind(StrEnum):
    """Crisis protocols that run beside the EUCP for the same event."""

    gifct_cip = "gifct_cip"  # GIFCT's Content Incident Protocol
    christchurch_call = "christchurch_call"  # the Christchurch Call crisis response protocol
    other = "other"


PROTOCOL_NAMES: dict[LinkedProtocolKind, str] = {
    LinkedProtocolKind.gifct_cip: "GIFCT Content Incident Protocol",
    LinkedProtocolKind.christchurch_call: "Christchurch Call crisis response protocol",
    LinkedProtocolKind.other: "another protocol",
}
"""The protocols that run beside the EUCP, as people name them (`other` by its own name)."""


class LinkedProtocol(BaseModel):
    """An activation of another protocol for the same event, as the coordinator records it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    protocol: LinkedProtocolKind
    reference: str = Field(min_length=1, max_length=200, description="its id in that protocol")
    activated_at: AwareDatetime
    name: str | None = Field(default=None, max_length=200, description="for `other`: which")

    @model_validator(mode="after")
    def _other_is_named(self) -> LinkedProtocol:
        if self.protocol is LinkedProtocolKind.other and not (self.name and self.name.strip()):
            raise ValueError("name: say which protocol `other` is")
        return self


class CriterionStatus(StrEnum):
    met = "met"
    not_met = "not_met"
    unknown = "unknown"
    # criterion 4 alone: "a link or a reasonably suspected link" to terrorism or violent
    # extremism (Europol Reg. as amended by 2022/991, Art. 4(1)(u)) meets it
    suspected = "suspected"


MEETS = frozenset({CriterionStatus.met, CriterionStatus.suspected})


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

    @model_validator(mode="after")
    def _suspected_is_criterion_4s(self) -> Assessment:
        for name in type(self).model_fields:
            if name != "tve_link" and self.criteria[name].status is CriterionStatus.suspected:
                raise ValueError(
                    f"{name}: only tve_link (criterion 4) may be suspected; say met, not_met "
                    "or unknown"
                )
        return self

    @property
    def criteria(self) -> dict[str, Criterion]:
        return {name: getattr(self, name) for name in type(self).model_fields}

    def all_met(self) -> bool:
        """Every criterion met; criterion 4's suspected link counts as met."""
        return all(criterion.status in MEETS for criterion in self.criteria.values())

    def check_evidence(self) -> None:
        """A criterion marked met (or suspected) names its evidence."""
        for name, criterion in self.criteria.items():
            if criterion.status in MEETS and not criterion.evidence.strip():
                rule = f"{name} is marked {criterion.status}: say on what evidence"
                raise Refusal(f"assessment.{name}.evidence", rule, RefusalKind.invalid)


def check_grounds(assessment: Assessment | None, override: str | None) -> None:
    """An activation rests on all five criteria met, each with its evidence, or on an override
    whose reason the ledger records as such."""
    if override is not None and override.strip():
        return
    if assessment is None or not assessment.all_met():
        unmet = (
            "no assessment is recorded"
            if assessment is None
            else "not met: "
            + ", ".join(n for n, c in assessment.criteria.items() if c.status not in MEETS)
        )
        rule = (
            f"activation needs all five criteria met ({unmet}); or give an override saying "
            "why the coordinator activates all the same (it is recorded as an override)"
        )
        raise Refusal("override", rule)

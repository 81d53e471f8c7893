"""Participants of a crisis and the registry that says who they are and how to reach them."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class ParticipantKind(StrEnum):
    """The roles of the protocol; `system` is eucp itself acting on a timer."""

    coordinator = "coordinator"
    member_state = "member_state"
    platform = "platform"
    gifct = "gifct"
    auditor = "auditor"
    system = "system"


ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"


class Actor(BaseModel):
    """Who makes a decision: the participant id and the role it acts in."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=ID_PATTERN)
    kind: ParticipantKind


SYSTEM = Actor(id="eucp", kind=ParticipantKind.system)


class Participant(BaseModel):
    """A participant as the workflows know it: no addresses, no secrets."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=ID_PATTERN)
    kind: ParticipantKind
    name: str = Field(min_length=1, max_length=200)


class Channel(StrEnum):
    webhook = "webhook"
    log = "log"


class Contact(Participant):
    """A registry entry: the participant plus how notifications reach it (kept out of history)."""

    channels: list[Channel] = Field(default_factory=lambda: [Channel.log])
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None


class Registry(BaseModel):
    """The participants registry file (JSON)."""

    model_config = ConfigDict(extra="forbid")

    participants: list[Contact]

    @classmethod
    def load(cls, path: Path) -> Registry:
        return cls.model_validate_json(path.read_text())

    def get(self, participant_id: str) -> Contact:
        for contact in self.participants:
            if contact.id == participant_id:
                return contact
        raise KeyError(f"participant {participant_id!r} is not in the registry")

    def public(self) -> list[Participant]:
        """The participants without their contact details, as workflows may see them."""
        return [Participant(id=c.id, kind=c.kind, name=c.name) for c in self.participants]

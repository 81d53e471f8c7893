"""Participants of a crisis and the registry that says who they are and how to reach them."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    SerializationInfo,
    field_serializer,
    model_validator,
)


class ParticipantKind(StrEnum):
    """The roles of the protocol; `system` is eucp itself acting on a timer."""

    coordinator = "coordinator"
    member_state = "member_state"
    platform = "platform"
    gifct = "gifct"
    auditor = "auditor"
    system = "system"


ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"
COUNTRY_PATTERN = r"^[A-Z]{2}$"


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
    country: str | None = Field(
        default=None,
        pattern=COUNTRY_PATTERN,
        description="a Member State authority's country (ISO 3166-1 alpha-2): it issues "
        "removal orders as that State",
    )


class Channel(StrEnum):
    webhook = "webhook"
    email = "email"
    log = "log"


# An ASCII address `local-part@domain`: a dot-atom local part (no quoted strings) and a domain
# of letter-digit-hyphen labels (no IP literals). Deliberately simple: what an operator types.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL_PART = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*")
_DOMAIN_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def check_email_address(value: str) -> str:
    """`value` if it is a plain email address, else a `ValueError` saying what is wrong."""
    if len(value) > 254:
        raise ValueError("not an email address: longer than 254 characters")
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain:
        raise ValueError("not an email address: expected local-part@domain")
    if "@" in local:
        raise ValueError("not an email address: more than one @")
    if len(local) > 64:
        raise ValueError("not an email address: local part longer than 64 characters")
    if not _LOCAL_PART.fullmatch(local):
        raise ValueError(
            f"not an email address: local part {local!r} may hold ASCII letters, digits, "
            "!#$%&'*+/=?^_`{|}~- and single dots between them"
        )
    if not all(_DOMAIN_LABEL.fullmatch(label) for label in domain.split(".")):
        raise ValueError(
            f"not an email address: domain {domain!r} must be dot-separated labels of ASCII "
            "letters, digits and inner hyphens"
        )
    return value


EmailAddress = Annotated[str, AfterValidator(check_email_address)]


class Reach(BaseModel):
    """How notifications reach someone: the channels, in order, and what each one needs.

    `email` needs `email`; `webhook` needs `webhook_url` and a non-empty `webhook_secret`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    channels: list[Channel] = Field(default_factory=lambda: [Channel.log])
    email: EmailAddress | None = None
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None

    @field_serializer("webhook_secret", when_used="json")
    def _secret(self, value: SecretStr | None, info: SerializationInfo) -> str | None:
        if value is None:
            return None
        reveal = isinstance(info.context, dict) and info.context.get("reveal_secrets")
        return value.get_secret_value() if reveal else str(value)

    def missing(self, prefix: str = "") -> list[str]:
        """What the channels need and this entry lacks; `prefix` says where the entry sits."""
        lacking = []
        if Channel.email in self.channels and not self.email:
            lacking.append((Channel.email, "email"))
        if Channel.webhook in self.channels:
            if not self.webhook_url:
                lacking.append((Channel.webhook, "webhook_url"))
            if self.webhook_secret is None or not self.webhook_secret.get_secret_value():
                lacking.append((Channel.webhook, "webhook_secret"))
        return [
            f"{prefix}channels includes {channel} but {prefix}{field} is missing"
            for channel, field in lacking
        ]


class Backup(Reach):
    """Someone else at the participant, told when the route is `backup` (for instance the
    on-call desk when the primary contact stays silent). Usually a person: email by default."""

    name: str = Field(min_length=1, max_length=200)
    channels: list[Channel] = Field(default_factory=lambda: [Channel.email])


class Contact(Reach, Participant):
    """A registry entry: the participant plus how notifications reach it, and optionally a
    backup contact (all kept out of workflow history)."""

    backup: Backup | None = None

    @model_validator(mode="after")
    def _channels_can_work(self) -> Self:
        """Refuses a channel that could never deliver, naming the participant and the field."""
        problems = self.missing()
        if self.backup is not None:
            problems += self.backup.missing(prefix="backup.")
        if problems:
            raise ValueError(f"participant {self.id!r}: " + "; ".join(problems))
        return self

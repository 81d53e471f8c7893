"""`eucp participants`: the operator's participants registry (EUCP_REGISTRY_PATH) and API
tokens (EUCP_TOKENS_PATH), local files and not the HTTP API: register a participant, rotate its
token, list who is registered. Changes to the registry hold its lock (`Registry.locked`).
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from pydantic import BaseModel, Field, ValidationError

from eucp.cli.framework import Failure, Invalid, command
from eucp.cli.render import table
from eucp.protocol.identifiers import describe_invalid
from eucp.protocol.participants import Contact, ParticipantKind
from eucp.runtime.registry import Registry
from eucp.runtime.settings import Settings
from eucp.runtime.tokens import TokenStore


@click.group()
def participants() -> None:
    """The operator's participants registry (EUCP_REGISTRY_PATH) and API tokens
    (EUCP_TOKENS_PATH): local files, not over HTTP. A running API and worker read the registry
    again whenever the file changes: no restart after adding or changing a participant."""


class Registered(BaseModel):
    """A registry entry as `eucp participants` shows it: never a secret or an address."""

    id: str
    kind: ParticipantKind
    name: str
    channels: list[str]
    token: bool = Field(description="whether an API token has been issued")

    @classmethod
    def of(cls, contact: Contact, token: bool) -> Registered:
        channels = [str(channel) for channel in contact.channels]
        return cls(
            id=contact.id, kind=contact.kind, name=contact.name, channels=channels, token=token
        )


class Issued(BaseModel):
    """A participant and its new API token, shown this once."""

    participant: Registered
    registry: str
    token: str


def show_issued(issued: Issued) -> str:
    participant = issued.participant
    return (
        f"{participant.id} ({participant.kind}, {participant.name}) in {issued.registry}\n"
        "its API token, shown only this once (give it to the participant as EUCP_TOKEN):\n"
        f"{issued.token}"
    )


def show_participants(rows: list[Registered]) -> str:
    return table(
        ["ID", "KIND", "NAME", "CHANNELS", "TOKEN"],
        [
            (row.id, row.kind, row.name, ",".join(row.channels), "yes" if row.token else "no")
            for row in rows
        ],
    )


def _registry(path: Path) -> Registry:
    """The registry at `path` (empty if there is none yet), or a `Failure` saying what is wrong."""
    try:
        return Registry.load_or_empty(path)
    except ValidationError as err:
        problems = describe_invalid(err)
        raise Invalid(f"{path}: not a valid registry: {problems}", "fix it first") from None


def _issue(contact: Contact, path: Path) -> Issued:
    """A new token for the participant; any earlier one stops working."""
    token = TokenStore(Settings().tokens_path).issue(contact.id)
    return Issued(participant=Registered.of(contact, token=True), registry=str(path), token=token)


@command(participants, "add", show_issued, api=False, incident=False)
@click.argument("participant_id")
@click.option(
    "--kind",
    type=click.Choice([kind for kind in ParticipantKind if kind is not ParticipantKind.system]),
    required=True,
)
@click.option("--name", required=True, help="the organisation's name")
@click.option("--webhook-url", help="where signed task notifications are POSTed")
@click.option("--webhook-secret", help="the shared secret webhooks are signed with")
@click.option("--email", help="an address for email notifications")
@click.option(
    "--country",
    metavar="CC",
    help="a Member State authority's country (ISO code, e.g. FR): it issues orders as that State",
)
def participants_add(
    participant_id: str,
    kind: ParticipantKind,
    name: str,
    webhook_url: str | None,
    webhook_secret: str | None,
    email: str | None,
    country: str | None,
) -> Issued:
    """Register a participant (the file is created if missing) and issue its API token."""
    path = Settings().registry_path
    channels = (["webhook"] if webhook_url or webhook_secret else []) + (["email"] if email else [])
    entry = {
        "id": participant_id,
        "kind": kind,
        "name": name,
        "channels": [*channels, "log"],
        "webhook_url": webhook_url,
        "webhook_secret": webhook_secret,
        "email": email,
        "country": country.upper() if country else None,
    }
    try:
        contact = Contact.model_validate(entry)
    except ValidationError as err:
        raise Invalid(describe_invalid(err)) from None
    with Registry.locked(path):
        registry = _registry(path)
        if any(known.id == participant_id for known in registry.participants):
            raise Failure(
                f"{participant_id} is already registered in {path}",
                f"`eucp participants rotate-token {participant_id}` issues it a new token",
            )
        Registry(participants=[*registry.participants, contact]).save(path)
    return _issue(contact, path)


@command(participants, "rotate-token", show_issued, api=False, incident=False)
@click.argument("participant_id")
def participants_rotate_token(participant_id: str) -> Issued:
    """Issue a new API token for a participant; its old one stops working at once."""
    path = Settings().registry_path
    try:
        contact = _registry(path).get(participant_id)
    except KeyError:
        raise Failure(
            f"{participant_id} is not registered in {path}",
            "`eucp participants list` shows who is; `eucp participants add` registers",
        ) from None
    return _issue(contact, path)


@command(participants, "list", show_participants, api=False, incident=False)
def participants_list() -> list[Registered]:
    """The registered participants and whether each holds a token (never secrets)."""
    settings = Settings()
    holders: set[str] = set()
    if settings.tokens_path.exists():
        holders = {str(holder) for holder in json.loads(settings.tokens_path.read_text()).values()}
    return [
        Registered.of(contact, token=contact.id in holders)
        for contact in _registry(settings.registry_path).participants
    ]

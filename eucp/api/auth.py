"""Who is calling: a bearer token resolves to a registered participant, or the call is 401."""

from __future__ import annotations

from fastapi import Request

from eucp.api.errors import ApiError
from eucp.participants import Actor, ParticipantKind, Registry
from eucp.tokens import TokenStore


def authenticate(request: Request, tokens: TokenStore, registry: Registry) -> Actor:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "Authorization", "send 'Authorization: Bearer <token>'")
    participant_id = tokens.who(token.strip())
    if participant_id is None:
        raise ApiError(401, "Authorization", "unknown or rotated token")
    try:
        contact = registry.get(participant_id)
    except KeyError:
        raise ApiError(
            401, "Authorization", "the token's participant is no longer registered"
        ) from None
    return Actor(id=contact.id, kind=contact.kind)


def require(actor: Actor, *kinds: ParticipantKind) -> None:
    if actor.kind not in kinds:
        allowed = ", ".join(sorted(kinds))
        raise ApiError(403, "Authorization", f"only {allowed} may do this, not {actor.kind}")

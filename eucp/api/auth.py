"""Who is calling: a bearer token resolves to a registered participant, or the call is 401."""

from __future__ import annotations

import math
import time

import structlog
from fastapi import Request

from eucp.api.access_log import PARTICIPANT
from eucp.api.errors import ApiError
from eucp.api.limits import RateLimiter
from eucp.protocol.participants import Actor, ParticipantKind
from eucp.runtime.registry import Registry
from eucp.runtime.tokens import TokenStore

log = structlog.get_logger("eucp.api")


class Gatekeeper:
    """Authenticates callers and applies the rate limits: failed sign-ins per client address,
    requests per participant. Logs refusals without the token."""

    def __init__(self, tokens: TokenStore, failures: RateLimiter, requests: RateLimiter) -> None:
        self.tokens = tokens
        self.failures = failures
        self.requests = requests

    def authenticate(self, request: Request, registry: Registry) -> Actor:
        client = request.client.host if request.client else "unknown"
        now = time.monotonic()
        try:
            actor = _resolve(request, self.tokens, registry)
        except ApiError as err:
            log.warning("authentication failed", client=client, path=request.url.path, why=err.rule)
            wait = self.failures.take(f"failed:{client}", now)
            if wait:
                raise ApiError(
                    429, "Authorization", "too many failed sign-ins", retry_after=math.ceil(wait)
                ) from None
            raise
        setattr(request.state, PARTICIPANT, actor.id)  # for the request's log line
        wait = self.requests.take(actor.id, now)
        if wait:
            raise ApiError(
                429, "rate", f"{actor.id} is over its request rate", retry_after=math.ceil(wait)
            )
        return actor


def _resolve(request: Request, tokens: TokenStore, registry: Registry) -> Actor:
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

"""Who is calling: a bearer token resolves to a registered participant, or the call is 401."""

from __future__ import annotations

import math
import time

import structlog
from fastapi import Request

from eucp.api.access_log import PARTICIPANT
from eucp.api.limits import RateLimiter
from eucp.protocol.participants import Actor, ParticipantKind
from eucp.protocol.refusal import Refusal, RefusalKind
from eucp.runtime.registry import Registry
from eucp.runtime.tokens import TokenStore

UNAUTHENTICATED = RefusalKind.unauthenticated

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
        except Refusal as refusal:
            log.warning(
                "authentication failed", client=client, path=request.url.path, why=refusal.rule
            )
            wait = self.failures.take(f"failed:{client}", now)
            if wait:
                raise Refusal(
                    "Authorization",
                    "too many failed sign-ins",
                    RefusalKind.busy,
                    retry_after=math.ceil(wait),
                ) from None
            raise
        setattr(request.state, PARTICIPANT, actor.id)  # for the request's log line
        wait = self.requests.take(actor.id, now)
        if wait:
            raise Refusal(
                "rate",
                f"{actor.id} is over its request rate",
                RefusalKind.busy,
                retry_after=math.ceil(wait),
            )
        return actor


def _resolve(request: Request, tokens: TokenStore, registry: Registry) -> Actor:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Refusal("Authorization", "send 'Authorization: Bearer <token>'", UNAUTHENTICATED)
    participant_id = tokens.who(token.strip())
    if participant_id is None:
        raise Refusal("Authorization", "unknown or rotated token", UNAUTHENTICATED)
    try:
        contact = registry.get(participant_id)
    except KeyError:
        raise Refusal(
            "Authorization", "the token's participant is no longer registered", UNAUTHENTICATED
        ) from None
    if contact.kind is ParticipantKind.system:  # eucp itself acts on its timers, never by token
        raise Refusal("Authorization", "no participant signs in as eucp itself", UNAUTHENTICATED)
    return Actor(id=contact.id, kind=contact.kind)


def require(actor: Actor, *kinds: ParticipantKind) -> None:
    if actor.kind not in kinds:
        allowed = ", ".join(sorted(kinds))
        rule = f"only {allowed} may do this, not {actor.kind}"
        raise Refusal("Authorization", rule, RefusalKind.forbidden)

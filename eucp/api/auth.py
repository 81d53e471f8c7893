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
from eucp.runtime.tokens import TokenStore, digest

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
        """The caller of a request with a bearer token."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            refusal = Refusal(
                "Authorization", "send 'Authorization: Bearer <token>'", UNAUTHENTICATED
            )
            raise self._failed(request, refusal)
        return self.admit(request, digest(token.strip()), registry)

    def admit(self, request: Request, token_digest: str, registry: Registry) -> Actor:
        """The participant holding the token of `token_digest` (the console keeps digests
        only), within its request rate."""
        try:
            actor = _resolve(token_digest, self.tokens, registry)
        except Refusal as refusal:
            raise self._failed(request, refusal) from None
        setattr(request.state, PARTICIPANT, actor.id)  # for the request's log line
        wait = self.requests.take(actor.id, time.time())
        if wait:
            raise Refusal(
                "rate",
                f"{actor.id} is over its request rate",
                RefusalKind.busy,
                retry_after=math.ceil(wait),
            )
        return actor

    def _failed(self, request: Request, refusal: Refusal) -> Refusal:
        """The refusal of a failed sign-in, logged; 429 once the client address failed too
        often."""
        client = request.client.host if request.client else "unknown"
        log.warning("authentication failed", client=client, path=request.url.path, why=refusal.rule)
        wait = self.failures.take(client, time.time())
        if wait:
            return Refusal(
                "Authorization",
                "too many failed sign-ins",
                RefusalKind.busy,
                retry_after=math.ceil(wait),
            )
        return refusal


def _resolve(token_digest: str, tokens: TokenStore, registry: Registry) -> Actor:
    participant_id = tokens.owner(token_digest)
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

"""Who is signed in to the console: sessions kept in the API process's memory.

The cookie holds an opaque random id, never the token. The token stays in server memory so that
each request passes the API's own Gatekeeper again: a rotated token or a participant removed
from the registry ends the session at once, and the API's rate limits apply to the console too.
Sessions end after `IDLE` without a request or `LIFETIME` after sign-in, and with the process.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from fastapi import Request

from eucp.api.auth import Gatekeeper
from eucp.protocol.participants import Actor, ParticipantKind
from eucp.protocol.refusal import Refusal, RefusalKind
from eucp.runtime.registry import Registry

COOKIE = "eucp_console"
IDLE = timedelta(minutes=30)
LIFETIME = timedelta(hours=12)
CAPACITY = 10_000
STAFF = frozenset({ParticipantKind.coordinator, ParticipantKind.auditor})


@dataclass(frozen=True)
class Notice:
    """The answer to the last action on an incident, shown once on its page."""

    accepted: bool
    title: str
    lines: tuple[str, ...] = ()


@dataclass
class ConsoleSession:
    actor: Actor
    token: str = field(repr=False)
    started: float
    seen: float
    notices: dict[str, Notice] = field(default_factory=dict)

    @property
    def may_act(self) -> bool:
        """Coordinators act; auditors read."""
        return self.actor.kind is ParticipantKind.coordinator


class SignInRefused(Exception):
    """A sign-in or a session the console does not accept, with the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def new_cookie() -> str:
    return secrets.token_urlsafe(32)


def authenticate(request: Request, token: str, gatekeeper: Gatekeeper, registry: Registry) -> Actor:
    """The coordinator or auditor holding `token`, checked by the API's Gatekeeper (its logs,
    its failed sign-in limit per client address) as if sent as a bearer token."""
    scope = dict(request.scope)
    scope["headers"] = [(b"authorization", f"Bearer {token}".encode())]
    try:
        actor = gatekeeper.authenticate(Request(scope), registry)
    except Refusal as refusal:
        unknown = refusal.kind is RefusalKind.unauthenticated
        message = "Unknown or rotated token." if unknown else f"{refusal.rule}."
        raise SignInRefused(refusal.status, message) from None
    if actor.kind not in STAFF:
        raise SignInRefused(
            403,
            f"The console is for coordinators and auditors; {actor.id} is a "
            f"{actor.kind.replace('_', ' ')} and uses the HTTP API.",
        )
    return actor


class Sessions:
    """Signed-in sessions by cookie value; at most `capacity`, the least recently used go first."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        idle: timedelta = IDLE,
        lifetime: timedelta = LIFETIME,
        capacity: int = CAPACITY,
    ) -> None:
        self._clock = clock
        self._idle = idle.total_seconds()
        self._lifetime = lifetime.total_seconds()
        self._capacity = capacity
        self._by_cookie: dict[str, ConsoleSession] = {}

    def open(self, actor: Actor, token: str) -> str:
        """A new session under a new cookie value (never the one used before sign-in)."""
        now = self._clock()
        cookie = new_cookie()
        self._by_cookie[cookie] = ConsoleSession(actor=actor, token=token, started=now, seen=now)
        while len(self._by_cookie) > self._capacity:
            del self._by_cookie[next(iter(self._by_cookie))]
        return cookie

    def find(
        self, request: Request, cookie: str, gatekeeper: Gatekeeper, registry: Registry
    ) -> ConsoleSession | None:
        """The live session of `cookie`, its token and role checked again; None if it ended."""
        session = self._by_cookie.pop(cookie, None)
        now = self._clock()
        if session is None or now - session.seen > self._idle:
            return None
        if now - session.started > self._lifetime:
            return None
        try:
            actor = authenticate(request, session.token, gatekeeper, registry)
        except SignInRefused as refused:
            if refused.status == 429:
                self._by_cookie[cookie] = session
                raise
            return None
        if actor != session.actor:
            return None
        session.seen = now
        self._by_cookie[cookie] = session  # most recently used last
        return session

    def close(self, cookie: str) -> None:
        self._by_cookie.pop(cookie, None)

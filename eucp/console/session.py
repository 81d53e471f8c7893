"""Who is signed in to the console: sessions kept in the state all API processes share
(`eucp.runtime.shared`), so a session works whichever process answers.

The cookie holds an opaque random id, never the token; the store keeps digests of both. Each
request passes the API's own Gatekeeper again with the token's digest: a rotated token or a
participant removed from the registry ends the session at once, and the API's rate limits
apply to the console too. Sessions end after `IDLE` without a request or `LIFETIME` after
sign-in.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta

from fastapi import Request

from eucp.api.auth import Gatekeeper
from eucp.protocol.participants import Actor, ParticipantKind
from eucp.protocol.refusal import Refusal, RefusalKind
from eucp.runtime.registry import Registry
from eucp.runtime.shared import SharedState, StoredSession
from eucp.runtime.tokens import digest

COOKIE = "eucp_console"
IDLE = timedelta(minutes=30)
LIFETIME = timedelta(hours=12)
SWEEP_EVERY = 100  # sign-ins between two deletions of ended sessions, per process
STAFF = frozenset({ParticipantKind.coordinator, ParticipantKind.auditor})


@dataclass(frozen=True)
class Notice:
    """The answer to the last action on an incident, shown once on its page."""

    accepted: bool
    title: str
    lines: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConsoleSession:
    """A live session: who signed in, under which cookie."""

    actor: Actor
    cookie: str = field(repr=False)

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
    its failed sign-in limit per client address) as a bearer token would be."""
    return _staff(request, digest(token), gatekeeper, registry)


def _staff(
    request: Request, token_digest: str, gatekeeper: Gatekeeper, registry: Registry
) -> Actor:
    try:
        actor = gatekeeper.admit(request, token_digest, registry)
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
    """Signed-in sessions by cookie value, in `state`."""

    def __init__(
        self,
        state: SharedState,
        clock: Callable[[], float] = time.time,
        idle: timedelta = IDLE,
        lifetime: timedelta = LIFETIME,
    ) -> None:
        self._state = state
        self._clock = clock
        self._idle = idle.total_seconds()
        self._lifetime = lifetime.total_seconds()
        self._opened = 0

    def open(self, actor: Actor, token: str) -> str:
        """A new session under a new cookie value (never the one used before sign-in)."""
        now = self._clock()
        cookie = new_cookie()
        self._state.open_session(cookie, StoredSession(actor.id, digest(token), now, now))
        self._opened += 1
        if self._opened % SWEEP_EVERY == 0:
            self._state.forget_sessions(now - self._idle, now - self._lifetime)
        return cookie

    def find(
        self, request: Request, cookie: str, gatekeeper: Gatekeeper, registry: Registry
    ) -> ConsoleSession | None:
        """The live session of `cookie`, its token and role checked again; None if it ended."""
        stored = self._state.session(cookie)
        now = self._clock()
        if stored is None:
            return None
        if now - stored.seen > self._idle or now - stored.started > self._lifetime:
            self._state.close_session(cookie)
            return None
        try:
            actor = _staff(request, stored.token_digest, gatekeeper, registry)
        except SignInRefused as refused:
            if refused.status == 429:
                raise
            self._state.close_session(cookie)
            return None
        if actor.id != stored.participant_id:
            return None
        self._state.touch_session(cookie, now)
        return ConsoleSession(actor, cookie)

    def close(self, cookie: str) -> None:
        self._state.close_session(cookie)

    def keep_notice(self, session: ConsoleSession, incident_id: str, notice: Notice) -> None:
        """The answer to show once on the incident's page, whichever process serves it."""
        self._state.set_notice(session.cookie, incident_id, asdict(notice))

    def take_notice(self, session: ConsoleSession, incident_id: str) -> Notice | None:
        held = self._state.set_notice(session.cookie, incident_id, None)
        if held is None:
            return None
        return Notice(held["accepted"], held["title"], tuple(held["lines"]))

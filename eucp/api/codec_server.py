"""The codec endpoint: lets an authorised person read encrypted payloads in the Temporal Web UI
and CLI, per Temporal's remote codec protocol (`POST /encode`, `POST /decode`, each also under
`/{namespace}/`; JSON `{"payloads": [...]}` both ways).

Who may use it: the operator (`EUCP_CODEC_SERVER_TOKEN`) and coordinators and auditors (their
participant tokens); platforms and member states may not. A caller authenticates with
`Authorization: Bearer <token>` (the `temporal` CLI's `--codec-auth`), or signs in once at
`GET /` in the browser and gets a session cookie, which the Web UI sends when its codec setting
"Include cross-origin credentials" is on. Every use is logged with the caller, never the token.

Run it with `python -m eucp.api.codec_server` (on `EUCP_CODEC_SERVER_HOST:PORT`, 127.0.0.1:8234).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import math
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import structlog
import uvicorn
from google.protobuf.json_format import MessageToDict, ParseDict, ParseError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from temporalio.api.common.v1 import Payload, Payloads

from eucp.api.limits import FAILED_SIGN_IN_BURST, RateLimiter
from eucp.protocol.participants import ParticipantKind
from eucp.runtime.codec import CodecError, EncryptionCodec
from eucp.runtime.registry import RegistryFile
from eucp.runtime.settings import Settings
from eucp.runtime.shared import SharedState
from eucp.runtime.tokens import TokenStore

log = structlog.get_logger("eucp.codec")

READERS = (ParticipantKind.coordinator, ParticipantKind.auditor)
SESSION_COOKIE = "eucp_codec_session"
SESSION_SECONDS = 8 * 3600
MAX_SESSIONS = 1000
MAX_BODY_BYTES = 16 * 1024 * 1024  # a page of history: many payloads of up to 2 MB
OPERATOR = "operator"


@dataclass(frozen=True)
class Caller:
    """Who is using the endpoint: `operator`, or a coordinator's or auditor's participant id."""

    id: str
    kind: str


class CodecHttpError(Exception):
    """An HTTP error answer: status and a message safe to show (never a token)."""

    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after

    def response(self) -> JSONResponse:
        headers = {}
        if self.status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="eucp-codec"'
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        return JSONResponse({"error": self.message}, status_code=self.status, headers=headers)


class CodecAccess:
    """Resolves bearer tokens and session cookies to callers; limits failed sign-ins per client
    address."""

    def __init__(self, settings: Settings) -> None:
        operator = settings.codec_server_token
        self._operator = operator.get_secret_value().encode() if operator else None
        self._tokens = TokenStore(settings.tokens_path)
        self._registry_file = RegistryFile(settings.registry_path)
        self._failures = RateLimiter(
            SharedState(settings.shared_state_url),
            "codec-failed-sign-ins",
            rate=settings.api_failed_auth_per_minute / 60,
            burst=FAILED_SIGN_IN_BURST,
        )
        self._sessions: dict[str, tuple[str, float]] = {}  # session id -> (token, expiry)

    def caller(self, request: Request) -> Caller:
        """The caller of a request, by its bearer token or else its session cookie."""
        try:
            return self.by_token(_bearer(request) or self._session_token(request))
        except CodecHttpError as error:
            self.refused(request, error)
            raise

    def by_token(self, token: str | None) -> Caller:
        if not token:
            raise CodecHttpError(401, "send 'Authorization: Bearer <token>', or sign in at /")
        if self._operator is not None and hmac.compare_digest(token.encode(), self._operator):
            return Caller(id=OPERATOR, kind=OPERATOR)
        participant_id = self._tokens.who(token)
        if participant_id is None:
            raise CodecHttpError(401, "unknown or rotated token")
        try:
            contact = self._registry_file.current().get(participant_id)
        except (KeyError, FileNotFoundError):
            raise CodecHttpError(401, "the token's participant is not registered") from None
        if contact.kind not in READERS:
            raise CodecHttpError(
                403, f"only coordinators and auditors may use the codec, not {contact.kind}"
            )
        return Caller(id=contact.id, kind=contact.kind)

    def open_session(self, token: str) -> str:
        """A new session for an already accepted token; returns the cookie value."""
        now = time.monotonic()
        self._sessions = {s: v for s, v in self._sessions.items() if v[1] > now}
        while len(self._sessions) >= MAX_SESSIONS:
            del self._sessions[next(iter(self._sessions))]
        session_id = secrets.token_urlsafe(32)
        self._sessions[session_id] = (token, now + SESSION_SECONDS)
        return session_id

    def close_session(self, request: Request) -> None:
        self._sessions.pop(request.cookies.get(SESSION_COOKIE, ""), None)

    def _session_token(self, request: Request) -> str | None:
        """The token a live session was opened with: checked again on every use, so a rotated
        token or a participant no longer allowed ends its sessions at once."""
        found = self._sessions.get(request.cookies.get(SESSION_COOKIE, ""))
        if found is None or found[1] <= time.monotonic():
            return None
        return found[0]

    def refused(self, request: Request, error: CodecHttpError) -> None:
        """Logs a refused request (without the token); raises 429 instead when the client
        address has failed too often."""
        client = request.client.host if request.client else "unknown"
        log.warning(
            "codec authentication refused",
            client=client,
            path=request.url.path,
            status=error.status,
            why=error.message,
        )
        if error.status == 401:
            wait = self._failures.take(client, time.time())
            if wait:
                raise CodecHttpError(429, "too many failed sign-ins", retry_after=math.ceil(wait))


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise CodecHttpError(413, f"request bodies are limited to {MAX_BODY_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise CodecHttpError(413, f"request bodies are limited to {MAX_BODY_BYTES} bytes")
    return bytes(body)


def _payloads(body: bytes) -> list[Payload]:
    try:
        data = json.loads(body)
        if not isinstance(data, dict):
            raise ParseError("expected an object")
        message = ParseDict(data, Payloads(), ignore_unknown_fields=True)
    except (ValueError, ParseError) as err:
        raise CodecHttpError(400, f'expected {{"payloads": [...]}} as JSON: {err}') from None
    return list(message.payloads)


def _as_json(payloads: list[Payload]) -> dict[str, Any]:
    return {"payloads": [MessageToDict(p) for p in payloads]}


LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>eucp codec: sign in</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
<h1>eucp codec</h1>
<p>Sign in with a coordinator's or auditor's token to read encrypted payloads in the Temporal
Web UI. In the UI's codec settings, set this address as the endpoint and turn on
<em>Include cross-origin credentials</em>.</p>
<form method="post" action="session">
<label>Token <input type="password" name="token" autocomplete="off" required></label>
<button type="submit">Sign in</button>
</form>
</body></html>
"""


def create_codec_app(settings: Settings, codec: EncryptionCodec | None = None) -> Starlette:
    """The codec endpoint over `codec` (by default the one the settings configure)."""
    codec = codec or EncryptionCodec.from_settings(settings)
    if codec is None:
        raise ValueError("no codec keys configured (EUCP_CODEC_KEYS): nothing to decode with")
    access = CodecAccess(settings)

    async def run_codec(request: Request) -> Response:
        operation = request.url.path.rsplit("/", 1)[-1]
        try:
            caller = access.caller(request)
            payloads = _payloads(await _body(request))
            if operation == "decode":
                result = await codec.decode(payloads)
            else:
                result = await codec.encode(payloads)
        except CodecHttpError as error:
            return error.response()
        except CodecError as err:
            log.warning("codec refused payloads", operation=operation, problem=str(err))
            return CodecHttpError(400, str(err)).response()
        log.info(
            f"codec {operation}",
            caller=caller.id,
            kind=caller.kind,
            namespace=request.headers.get("x-namespace") or request.path_params.get("namespace"),
            payloads=len(payloads),
        )
        return JSONResponse(_as_json(result))

    async def login_page(request: Request) -> Response:
        return HTMLResponse(LOGIN_PAGE)

    async def open_session(request: Request) -> Response:
        try:
            token = _bearer(request)
            if token is None:
                form = parse_qs((await _body(request)).decode(errors="replace"))
                token = (form.get("token") or [""])[0].strip() or None
            try:
                caller = access.by_token(token)
            except CodecHttpError as error:
                access.refused(request, error)
                raise
        except CodecHttpError as error:
            return error.response()
        log.info("codec session opened", caller=caller.id, kind=caller.kind)
        response = HTMLResponse(
            f"<!doctype html><p>Signed in as {caller.id}. The Temporal Web UI can now decode "
            "eucp payloads in this browser.</p>"
        )
        response.set_cookie(
            SESSION_COOKIE,
            access.open_session(token or ""),
            max_age=SESSION_SECONDS,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return response

    async def close_session(request: Request) -> Response:
        access.close_session(request)
        response = Response(status_code=204)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    return Starlette(
        routes=[
            Route("/", login_page, methods=["GET"]),
            Route("/session", open_session, methods=["POST"]),
            Route("/session", close_session, methods=["DELETE"]),
            Route("/encode", run_codec, methods=["POST"]),
            Route("/decode", run_codec, methods=["POST"]),
            Route("/{namespace}/encode", run_codec, methods=["POST"]),
            Route("/{namespace}/decode", run_codec, methods=["POST"]),
        ],
        middleware=[
            Middleware(
                CORSMiddleware,
                allow_origins=settings.codec_origins,
                allow_methods=["POST"],
                allow_headers=["Authorization", "Content-Type", "X-Namespace"],
                allow_credentials=True,
                max_age=600,
            )
        ],
    )


async def serve(settings: Settings) -> None:
    """Serves the codec endpoint until SIGINT or SIGTERM."""
    app = create_codec_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.codec_server_host,
        port=settings.codec_server_port,
        log_level="warning",
        access_log=False,
    )
    log.info(
        "codec endpoint started",
        url=f"http://{settings.codec_server_host}:{settings.codec_server_port}",
        origins=settings.codec_origins,
    )
    await uvicorn.Server(config).serve()


def main() -> None:
    from eucp.runtime import logs

    asyncio.run(serve(logs.configured_settings()))


if __name__ == "__main__":
    main()

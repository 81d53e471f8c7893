"""What every `eucp` command shares: where API commands go (`Target`: `--api`, `--token`,
`--json`), the `command` decorator that gives a command those options and its output, and the
errors with the exit codes scripts can trust (`Failure`, `Invalid`, `Unavailable`), so each
command group only says what it asks for and which API call it makes.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import IO, Any, TypeVar

import click
from pydantic_core import to_jsonable_python

from eucp.client import DEFAULT_API, ApiClient, ApiTimeout, ApiUnavailable
from eucp.protocol.refusal import Refusal

Decorated = TypeVar("Decorated", bound=Callable[..., Any])
Call = Callable[[ApiClient], Awaitable[Any]]

REFUSED, INVALID, UNAVAILABLE = 1, 2, 3  # exit codes; 0 is done
SHARED = {"api", "token", "json", "idempotency_key"}  # options every (API) command takes
TOKEN_HINT = (
    "set EUCP_TOKEN (or --token) to the token `eucp participants add` printed "
    "(`eucp participants rotate-token ID` issues a new one)"
)


@dataclass
class Target:
    """Where API commands go and how they answer: set on `eucp` itself or on each command."""

    api: str = DEFAULT_API
    token: str | None = None
    json: bool = False


def current_target() -> Target:
    return click.get_current_context().ensure_object(Target)


def _store(attr: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, _: click.Parameter, value: Any) -> None:
        if value is not None and value is not False:
            setattr(ctx.ensure_object(Target), attr, value)

    return callback


def target_options(top: bool) -> Callable[[Decorated], Decorated]:
    """`--api`, `--token`, `--json`: on `eucp` (with env vars and defaults) and on each command
    (overriding, so `eucp crisis list --json` and `eucp --json crisis list` both work)."""

    def apply(function: Decorated) -> Decorated:
        options = [
            click.option(
                "--api",
                metavar="URL",
                envvar="EUCP_API_URL" if top else None,
                default=DEFAULT_API if top else None,
                show_default=top,
                expose_value=False,
                callback=_store("api"),
                help="base URL of the eucp API (env EUCP_API_URL)",
            ),
            click.option(
                "--token",
                metavar="TOKEN",
                envvar="EUCP_TOKEN" if top else None,
                expose_value=False,
                callback=_store("token"),
                help="your bearer token (env EUCP_TOKEN)",
            ),
            click.option(
                "--json",
                is_flag=True,
                expose_value=False,
                callback=_store("json"),
                help="machine-readable output (errors too, on stderr)",
            ),
        ]
        for option in reversed(options):
            function = option(function)
        return function

    return apply


class Failure(click.ClickException):
    """A command the protocol refused: a message and what to do, on stderr, and an exit code
    scripts can trust (the subclasses below)."""

    exit_code = REFUSED

    def __init__(self, message: str, hint: str | None = None, detail: Any = None) -> None:
        super().__init__(message)
        self.hint = hint
        self.detail = detail
        ctx = click.get_current_context(silent=True)
        target = ctx.find_object(Target) if ctx else None
        self.as_json = bool(target and target.json)

    def show(self, file: IO[Any] | None = None) -> None:
        if self.as_json:
            body = {"exit_code": self.exit_code, "message": self.message, "hint": self.hint}
            if self.detail is not None:
                body["error"] = self.detail
            click.echo(json.dumps(body), err=True)
            return
        click.echo(f"error: {self.message}", err=True)
        if self.hint:
            click.echo(f"  {self.hint}", err=True)


class Invalid(Failure):
    """Bad input: arguments, files, or what the API found invalid (422)."""

    exit_code = INVALID


class Unavailable(Failure):
    """The API cannot be reached, failed, is busy, or does not know the token (401)."""

    exit_code = UNAVAILABLE


def refused(err: Refusal) -> Failure:
    """The exit code and advice for a refusal of the API."""
    what = f"{err.field}: {err.rule}" if err.field else err.rule
    detail = {"status": err.status, "field": err.field, "rule": err.rule, "refusal": err.kind}
    kind: type[Failure] = Failure
    hint = None
    if err.status == 401:
        kind, hint = Unavailable, TOKEN_HINT
    elif err.status == 404 and err.field.startswith("reports"):
        hint = "`eucp task list INCIDENT_ID` shows your tasks"
    elif err.status == 404:
        hint = "`eucp crisis list` shows the incidents you may see"
    elif err.status == 409:
        hint = "`eucp crisis status INCIDENT_ID` shows where the incident stands"
    elif err.status == 403:
        hint = "your token's participant may not do this (see `eucp participants list`)"
    elif err.status in (400, 413, 422):
        kind = Invalid
        extra = [f"{problem['field']}: {problem['rule']}" for problem in err.problems[1:]]
        what = "; ".join([what, *extra])
        hint = "send fewer items at once" if err.status == 413 else None
    elif err.status == 429:
        kind, hint = Unavailable, "the incident is busy; try again shortly"
    if err.applied is not None:
        done = to_jsonable_python(err.applied)
        detail["applied"] = done
        hint = f"{hint + '; ' if hint else ''}earlier batches were applied: {json.dumps(done)}"
    return kind(f"{err.kind}: {what}", hint, detail)


def call_api(target: Target, call: Call) -> Any:
    """Runs one command's API calls with the caller's token; API errors become `Failure`s."""
    if not target.token:
        raise Unavailable("no token", TOKEN_HINT)

    async def run() -> Any:
        async with ApiClient(target.api, target.token) as client:
            return await call(client)

    try:
        return asyncio.run(run())
    except Refusal as err:
        raise refused(err) from None
    except ApiTimeout as err:
        hint = "it may still take effect: run it again with the same --idempotency-key"
        raise Unavailable(str(err), hint) from None
    except ApiUnavailable as err:
        hint = "is `eucp api` running there? set EUCP_API_URL or --api"
        raise Unavailable(str(err), hint if err.status is None else None) from None


def emit(result: Any, render: Callable[[Any], str], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(to_jsonable_python(result), indent=2, ensure_ascii=False))
    else:
        text = render(result)
        if text:
            click.echo(text)


def command(
    group: click.Group,
    name: str,
    render: Callable[[Any], str],
    *,
    api: bool = True,
    incident: bool = True,
    idempotent: bool = False,
) -> Callable[[Callable[..., Any]], click.Command]:
    """A command with the shared options and output. With `api`, the function checks its input
    and returns the API call to make (`Call`); otherwise it returns the result itself.
    `incident` adds the INCIDENT_ID argument (first, passed as `incident_id`); `idempotent`
    adds `--idempotency-key`."""

    def decorate(function: Callable[..., Any]) -> click.Command:
        @functools.wraps(function)
        def run(**kwargs: Any) -> None:
            result = function(**kwargs)
            target = current_target()
            if api:
                result = call_api(target, result)
            emit(result, render, target.json)

        wrapped: Callable[..., Any] = run
        if idempotent:
            wrapped = click.option(
                "--idempotency-key",
                metavar="KEY",
                help="the same key again returns the first answer and changes nothing",
            )(wrapped)
        if api:
            wrapped = target_options(top=False)(wrapped)
        else:
            wrapped = click.option(
                "--json",
                is_flag=True,
                expose_value=False,
                callback=_store("json"),
                help="machine-readable output",
            )(wrapped)
        if incident:
            wrapped = click.argument("incident_id")(wrapped)
        cmd = group.command(name)(wrapped)
        cmd.params.sort(key=lambda param: param.name in SHARED)  # the command's own options first
        return cmd

    return decorate

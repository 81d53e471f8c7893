"""The `eucp` command: run the stack, the demo, read the ledger; the coordinators' and platforms'
verbs as a thin client of the HTTP API (`eucp crisis`, `eucp task`); and the operator's
participants and tokens (`eucp participants`, local files).

Exit codes: 0 done, 1 refused by the protocol (403, 404, 409), 2 invalid input (422, bad
arguments), 3 the API cannot be reached, failed, or does not know the token (401).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import json
import os
import sys
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

import click
from pydantic import BaseModel, Field, ValidationError
from pydantic_core import to_jsonable_python

from eucp.audit.cli import audit
from eucp.client import DEFAULT_API, ApiClient, ApiRefusal, ApiTimeout, ApiUnavailable
from eucp.demo.simulator import simulate_platform
from eucp.protocol.identifiers import (
    AnyIdentifier,
    HashIdentifier,
    PlatformItemIdentifier,
    UrlIdentifier,
)
from eucp.protocol.incident import Assessment, Criterion, CriterionStatus, IncidentReport
from eucp.protocol.participants import Contact, ParticipantKind
from eucp.protocol.phases import RULES, Action
from eucp.protocol.state import Answer, PlatformSummary, ReportAnswer, TaskPage
from eucp.protocol.tasks import CannotComplyReason, Outcome, RemovalOrder, TaskReport, TaskState
from eucp.runtime import logs
from eucp.runtime.registry import Registry
from eucp.runtime.settings import Settings, get_settings
from eucp.runtime.tokens import TokenStore

if TYPE_CHECKING:  # the API's wire models: fastapi and temporalio load only when needed
    from eucp.api.app import Listing, PlatformView, Reported
    from eucp.protocol.decisions import LedgerRow
    from eucp.protocol.state import IncidentStatus

F = TypeVar("F", bound=Callable[..., Any])
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


def _target() -> Target:
    return click.get_current_context().ensure_object(Target)


def _store(attr: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, _: click.Parameter, value: Any) -> None:
        if value is not None and value is not False:
            setattr(ctx.ensure_object(Target), attr, value)

    return callback


def target_options(top: bool) -> Callable[[F], F]:
    """`--api`, `--token`, `--json`: on `eucp` (with env vars and defaults) and on each command
    (overriding, so `eucp crisis list --json` and `eucp --json crisis list` both work)."""

    def apply(f: F) -> F:
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
            f = option(f)
        return f

    return apply


@click.group()
@target_options(top=True)
def main() -> None:
    """eucp: the EU Crisis Protocol as durable Temporal workflows."""


main.add_command(simulate_platform)  # a reference platform receiver (eucp.simulator)
main.add_command(audit)  # replay, timeline, verify, export (eucp.audit)


# ---- the stack, the demo, the ledger -------------------------------------------------------


@main.command()
def worker() -> None:
    """Run the worker against the configured Temporal (EUCP_TEMPORAL_ADDRESS)."""
    from worker import main as worker_main

    worker_main()


@main.command()
def up() -> None:
    """The embedded stack in the foreground: dev server (var/temporal.db, UI on 8233) and worker.

    Ctrl-C stops both.
    """
    from eucp.runtime.devserver import embedded_temporal
    from worker import serve

    settings = get_settings()
    logs.configure(json=settings.log_json)
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    if not settings.registry_path.exists():
        from eucp.demo.run import registry

        registry().save(settings.registry_path)
        click.echo(f"wrote a starter participants registry to {settings.registry_path}: edit it")

    async def run() -> None:
        async with embedded_temporal(settings) as ui:
            click.echo(
                f"Temporal at {settings.temporal_address}, Web UI {ui or '(existing server)'}"
            )
            await serve(settings)

    asyncio.run(run())


@main.command()
def api() -> None:
    """Serve the HTTP API (EUCP_API_HOST:EUCP_API_PORT) until Ctrl-C."""
    import uvicorn

    from eucp.api.app import create_app

    settings = get_settings()
    logs.configure(json=settings.log_json)
    uvicorn.run(
        create_app(settings), host=settings.api_host, port=settings.api_port, log_config=None
    )


@main.command()
def demo() -> None:
    """Run a Christchurch-like crisis end to end on the embedded default."""
    from eucp.demo.run import main as demo_main

    settings = get_settings()
    logs.configure(json=False, level=30)
    asyncio.run(demo_main(settings))


@main.group()
def ledger() -> None:
    """Read and verify the decision ledger (EUCP_LEDGER_URL)."""


@ledger.command("verify")
@click.argument("incident_id")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def ledger_verify(incident_id: str, as_json: bool) -> None:
    """Recompute an incident's hash chain; exit 1 on any break."""
    from eucp.runtime.ledger import open_ledger

    with open_ledger(_settings().ledger_url) as opened:
        report = opened.verify(incident_id)
    if as_json or _target().json:
        click.echo(report.model_dump_json())
    elif report.ok:
        click.echo(f"{incident_id}: {report.rows_checked} decisions, chain verified")
    else:
        click.echo(f"{incident_id}: BROKEN at row {report.first_bad_seq}: {report.problem}")
    sys.exit(0 if report.ok else 1)


@ledger.command("list")
@click.argument("incident_id", required=False)
def ledger_list(incident_id: str | None) -> None:
    """Incidents in the ledger, or one incident's decisions as JSON lines."""
    from eucp.runtime.ledger import open_ledger

    with open_ledger(_settings().ledger_url) as opened:
        if incident_id is None:
            for name in opened.incidents():
                click.echo(name)
            return
        for row in opened.rows(incident_id):
            click.echo(json.dumps(row.model_dump(mode="json")))


def _settings() -> Settings:
    return get_settings()


# ---- shared option handling, errors and output ---------------------------------------------


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


def describe(err: ValidationError) -> str:
    """A pydantic error as one line per problem, without pydantic's boilerplate."""
    return "; ".join(
        ".".join(str(p) for p in e["loc"]) + ": " + e["msg"].removeprefix("Value error, ")
        if e["loc"]
        else e["msg"].removeprefix("Value error, ")
        for e in err.errors()
    )


def refused(err: ApiRefusal) -> Failure:
    """The exit code and advice for a refusal of the API."""
    what = f"{err.field}: {err.rule}" if err.field else err.rule
    detail = {"status": err.status, "field": err.field, "rule": err.rule, "refusal": err.refusal}
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
        extra = [f"{p['field']}: {p['rule']}" for p in err.problems[1:]]
        what = "; ".join([what, *extra])
        hint = "send fewer items at once" if err.status == 413 else None
    elif err.status == 429:
        kind, hint = Unavailable, "the incident is busy; try again shortly"
    if err.applied is not None:
        done = to_jsonable_python(err.applied)
        detail["applied"] = done
        hint = f"{hint + '; ' if hint else ''}earlier batches were applied: {json.dumps(done)}"
    return kind(f"{err.refusal}: {what}", hint, detail)


def call_api(target: Target, call: Call) -> Any:
    """Runs one command's API calls with the caller's token; API errors become `Failure`s."""
    if not target.token:
        raise Unavailable("no token", TOKEN_HINT)

    async def run() -> Any:
        async with ApiClient(target.api, target.token) as client:
            return await call(client)

    try:
        return asyncio.run(run())
    except ApiRefusal as err:
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

    def decorate(fn: Callable[..., Any]) -> click.Command:
        @functools.wraps(fn)
        def run(**kwargs: Any) -> None:
            result = fn(**kwargs)
            target = _target()
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
        cmd.params.sort(key=lambda p: p.name in SHARED)  # the command's own options first
        return cmd

    return decorate


# ---- human output --------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Plain aligned columns."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )


def pairs(items: Iterable[tuple[str, object]]) -> str:
    """`name  value` lines, the values aligned."""
    rows = list(items)
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def utc(at: datetime) -> str:
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M:%SZ}"


def ranges(numbers: Sequence[int]) -> str:
    """1, 2, 3, 5 -> "1-3, 5"."""
    spans: list[list[int]] = []
    for n in sorted(numbers):
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans) or "none"


def show_answer(a: Answer) -> str:
    return pairs(
        [
            ("phase", a.phase),
            ("decisions", ", ".join(a.decisions) or "none"),
            ("accepted items", ranges(a.accepted_items)),
            ("duplicates", a.duplicates),
            ("low quality", a.low_quality),
        ]
    )


def show_reported(r: Reported) -> str:
    return f"reported {r.incident_id}"


def show_listings(listings: list[Listing]) -> str:
    rows = [(x.incident_id, x.status, x.started_at) for x in listings]
    return table(["INCIDENT", "WORKFLOW", "STARTED"], rows) if rows else "no incidents"


def platform_table(summaries: Sequence[PlatformSummary], final: Iterable[str] = ()) -> str:
    done = set(final)
    states = [s for s in TaskState if any(s in p.by_state for p in summaries)]
    headers = ["PLATFORM", "TASKS", *[s.value.upper() for s in states]]
    headers += ["OPEN BREACHES", "BREACHES", "ESCALATIONS"]
    rows = [
        [
            p.platform_id + (" (final)" if p.platform_id in done else ""),
            p.tasks,
            *[p.by_state.get(s, 0) for s in states],
            len(p.open_breaches),
            p.breaches,
            p.escalations,
        ]
        for p in summaries
    ]
    return table(headers, rows)


def show_status(status: IncidentStatus | PlatformView) -> str:
    from eucp.protocol.state import IncidentStatus

    if not isinstance(status, IncidentStatus):
        head = pairs(
            [("incident", status.incident_id), ("title", status.title), ("phase", status.phase)]
        )
        return f"{head}\n\n{platform_table([status.tasks])}"
    c = status.crisis
    since = c.phases[-1] if c.phases else None
    phase = f"{c.phase} since {utc(since.at)} by {since.by}" if since else c.phase
    head = pairs(
        [
            ("incident", c.incident_id),
            ("title", c.title),
            ("phase", phase + (" (activation decision overdue)" if c.assessment_overdue else "")),
            ("items", c.items),
            ("decisions", c.decisions),
            ("false positives", ranges(c.false_positives)),
            ("review inputs", c.review_inputs),
        ]
    )
    platforms = [status.platforms[p] for p in c.platforms if p in status.platforms]
    return f"{head}\n\n{platform_table(platforms, c.finals)}" if platforms else head


def _identifier(identifier: AnyIdentifier) -> str:
    return identifier.value if isinstance(identifier, UrlIdentifier) else identifier.key


def show_tasks(page: TaskPage) -> str:
    rows = [
        (
            t.task_id,
            t.item_no,
            t.state,
            t.basis.kind,
            utc(t.assigned_at),
            _identifier(t.identifier),
        )
        for t in page.tasks
    ]
    text = table(["TASK", "ITEM", "STATE", "BASIS", "ASSIGNED", "IDENTIFIER"], rows)
    more = f"; next page: --offset {page.next_offset}" if page.next_offset is not None else ""
    return f"{text}\n{len(page.tasks)} of {page.total} tasks{more}"


def show_report_answer(a: ReportAnswer) -> str:
    head = f"changed {len(a.changed)}, unchanged {len(a.unchanged)}, refused {len(a.refused)}"
    return "\n".join([head, *(f"  {task}: {rule}" for task, rule in a.refused.items())])


def show_rows(rows: list[LedgerRow]) -> str:
    return table(
        ["SEQ", "AT", "KIND", "ACTOR", "REASON"],
        [
            (
                r.seq,
                utc(r.decision.at),
                r.decision.kind,
                r.decision.actor.id,
                r.decision.reason,
            )
            for r in rows
        ],
    )


# ---- input: identifiers, assessment, dates, JSON files --------------------------------------


def parse_identifier(text: str) -> AnyIdentifier:
    """`https://...`, `md5:HEX`, `sha256:HEX`, `pdq:HEX:QUALITY` or `item:PLATFORM:ITEM_ID`;
    a `ValueError` saying what is wrong otherwise."""
    scheme, _, rest = text.partition(":")
    scheme = scheme.lower()
    data: dict[str, Any]
    model: type[UrlIdentifier | HashIdentifier | PlatformItemIdentifier]
    if scheme in ("http", "https"):
        model = UrlIdentifier
        data = {"value": text}
    elif scheme in ("md5", "sha256"):
        model, data = HashIdentifier, {"algorithm": scheme, "value": rest}
    elif scheme == "pdq":
        value, _, quality = rest.partition(":")
        if not quality.isdigit():
            raise ValueError("a pdq hash is pdq:HEX:QUALITY, QUALITY 0-100")
        model, data = HashIdentifier, {"algorithm": "pdq", "value": value, "quality": int(quality)}
    elif scheme == "item":
        platform, _, item_id = rest.partition(":")
        model, data = PlatformItemIdentifier, {"platform": platform, "item_id": item_id}
    else:
        raise ValueError(
            "expected an http(s) URL, md5:HEX, sha256:HEX, pdq:HEX:QUALITY or item:PLATFORM:ID"
        )
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ValueError(describe(err)) from None


def lines_of(source: IO[str]) -> Iterator[tuple[int, str]]:
    """(line number, text) of a file's non-blank lines that are not `#` comments."""
    for n, line in enumerate(source, 1):
        text = line.strip()
        if text and not text.startswith("#"):
            yield n, text


def read_identifiers(args: Sequence[str], source: IO[str] | None) -> list[AnyIdentifier]:
    """Identifiers from the arguments and the file; every bad one named, and none returned if
    any is bad (so nothing is sent)."""
    where = [(f"argument {n}", text) for n, text in enumerate(args, 1)]
    if source is not None:
        name = "stdin" if source.name == "<stdin>" else source.name
        where += [(f"{name} line {n}", text) for n, text in lines_of(source)]
    found: list[AnyIdentifier] = []
    bad: list[str] = []
    for place, text in where:
        try:
            found.append(parse_identifier(text))
        except ValueError as err:
            bad.append(f"{place}: {err} ({text[:80]!r})")
    if bad:
        raise Invalid(
            f"{len(bad)} bad identifier{'s' if len(bad) > 1 else ''}, nothing was sent:\n  "
            + "\n  ".join(bad)
        )
    return found


def many(
    argument: str,
    into: str,
    read: Callable[[tuple[str, ...], IO[str] | None], list[Any]],
    help: str,
) -> Callable[[F], F]:
    """ARGUMENT... and `--from FILE` ('-': stdin), read together into one list `into`."""

    def apply(fn: F) -> F:
        @click.argument(argument, nargs=-1)
        @click.option("--from", "from_file", type=click.File("r"), help=help)
        @functools.wraps(fn)
        def wrapper(from_file: IO[str] | None, **kw: Any) -> Any:
            values = kw.pop(argument)
            return fn(**{into: read(values, from_file)}, **kw)

        return wrapper  # type: ignore[return-value]

    return apply


def identifiers_input(required: bool) -> Callable[[F], F]:
    """IDENTIFIER... arguments and `--from FILE`, passed on as `identifiers`."""

    def read(args: tuple[str, ...], source: IO[str] | None) -> list[Any]:
        found = read_identifiers(args, source)
        if required and not found:
            raise Invalid("no identifiers", "give them as arguments or with --from FILE")
        return found

    return many(
        "identifier",
        "identifiers",
        read,
        "identifiers, one per line ('-': stdin): an http(s) URL, md5:HEX, sha256:HEX, "
        "pdq:HEX:QUALITY or item:PLATFORM:ID; blank lines and # comments are skipped",
    )


def _task_ids(args: tuple[str, ...], source: IO[str] | None) -> list[Any]:
    listed = [text for _, text in lines_of(source)] if source else []
    return list(dict.fromkeys([*args, *listed]))  # each once, in order


task_ids_input = many("task_id", "task_ids", _task_ids, "task ids, one per line ('-': stdin)")


def load_model(model: type[BaseModel], source: IO[str], what: str) -> Any:
    """A JSON file as one of the project's models, or a `Failure` naming the problems."""
    try:
        return model.model_validate_json(source.read())
    except ValidationError as err:
        raise Invalid(f"{source.name}: not a valid {what}: {describe(err)}") from None


def removal_order_option(f: F) -> F:
    def load(_: click.Context, __: click.Parameter, value: IO[str] | None) -> Any:
        return None if value is None else load_model(RemovalOrder, value, "removal order")

    return click.option(
        "--removal-order",
        "basis",
        type=click.File("r"),
        callback=load,
        help="JSON file of a TCO removal order (Annex I fields); voluntary referral otherwise",
    )(f)


def parse_criterion(text: str) -> tuple[str, Any]:
    """`real_world_event=met:evidence` -> ("real_world_event", Criterion)."""
    name, eq, rest = text.partition("=")
    name = name.strip().replace("-", "_")
    status, _, evidence = rest.partition(":")
    status = status.strip().replace("-", "_")
    if not eq or name not in Assessment.model_fields:
        raise click.BadParameter(
            f"{text!r}: expected NAME=STATUS[:EVIDENCE], NAME one of "
            + ", ".join(Assessment.model_fields)
        )
    if status not in CriterionStatus.__members__:
        raise click.BadParameter(
            f"{text!r}: STATUS is one of " + ", ".join(CriterionStatus.__members__)
        )
    try:
        return name, Criterion(status=CriterionStatus(status), evidence=evidence.strip())
    except ValidationError as err:
        raise click.BadParameter(f"{text!r}: {describe(err)}") from None


class AwareTime(click.ParamType[datetime]):
    """An ISO 8601 time with its offset (`2026-03-15T01:40:00Z`), or `now`."""

    name = "ISO-TIME"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        if isinstance(value, datetime):
            return value
        if str(value).lower() == "now":
            return datetime.now(UTC)
        try:
            parsed = datetime.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 time, e.g. 2026-03-15T01:40:00Z", param, ctx)
        if parsed.tzinfo is None:
            self.fail(f"{value!r} has no time zone: add Z or an offset like +01:00", param, ctx)
        return parsed


def reason_option(action: str) -> Callable[[F], F]:
    """`--reason`, required when the phase machine requires one for `action`."""
    rule = RULES[Action(action)]
    needed = f"required ({rule.source})" if rule.reason_required else "optional"
    return click.option("--reason", required=rule.reason_required, help=f"why; {needed}")


def read_text(value: str) -> str:
    return sys.stdin.read() if value == "-" else value


# ---- eucp crisis ---------------------------------------------------------------------------


@main.group()
def crisis() -> None:
    """Report, steer and follow incidents over the API (coordinators; platforms: sightings,
    false-positive, review-input). Every command takes --api, --token and --json."""


@command(crisis, "report", show_reported, incident=False, idempotent=True)
@click.option("--title", required=True, help="a short name of the event")
@click.option("--place", required=True, help="where the event takes place")
@click.option(
    "--event-started",
    type=AwareTime(),
    default="now",
    show_default=True,
    help="when the event began, ISO 8601 with its time zone",
)
@click.option("--description", default="", help="what is known so far")
@click.option("--member-state", multiple=True, metavar="CC", help="affected Member State (repeat)")
@click.option("--reporter", required=True, help="your participant id (the token's)")
@click.option("--incident-id", help="choose the incident id (default: one is made up)")
@identifiers_input(required=False)
def crisis_report(
    title: str,
    place: str,
    event_started: datetime,
    description: str,
    member_state: tuple[str, ...],
    reporter: str,
    incident_id: str | None,
    identifiers: list[AnyIdentifier],
    idempotency_key: str | None,
) -> Call:
    """Report a potential crisis, with its first identifiers if any."""
    try:
        report = IncidentReport(
            title=title,
            event_place=place,
            event_started_at=event_started,
            description=description,
            affected_member_states=[m.upper() for m in member_state],
            reporter=reporter,
            first_identifiers=identifiers,
        )
    except ValidationError as err:
        raise Invalid(describe(err)) from None
    return lambda api: api.report(report, incident_id, idempotency_key=idempotency_key)


@command(crisis, "list", show_listings, incident=False)
def crisis_list() -> Call:
    """The incidents you may see."""
    return lambda api: api.incidents()


@command(crisis, "status", show_status)
def crisis_status(incident_id: str) -> Call:
    """Where an incident stands: phase, items, each platform's tasks by state."""
    return lambda api: api.status(incident_id)


@command(crisis, "decisions", show_rows)
@click.option("--after", type=click.IntRange(min=0), default=0, help="after this ledger row")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--all", "every", is_flag=True, help="every row, page after page")
def crisis_decisions(incident_id: str, after: int, limit: int, every: bool) -> Call:
    """The incident's decisions as the ledger recorded them (coordinators, auditors)."""
    if every:
        return lambda api: api.all_decisions(incident_id)
    return lambda api: api.decisions(incident_id, after, limit)


@command(crisis, "assess", show_answer, idempotent=True)
@click.option(
    "--criterion",
    "criteria",
    multiple=True,
    metavar="NAME=STATUS[:EVIDENCE]",
    help="e.g. real_world_event=met:'livestream seen on 3 services' (repeat for each)",
)
@click.option(
    "--file",
    "from_file",
    type=click.File("r"),
    help="the assessment as JSON ('-': stdin); --criterion overrides its entries",
)
@reason_option("assess")
def crisis_assess(
    incident_id: str,
    criteria: tuple[str, ...],
    from_file: IO[str] | None,
    reason: str | None,
    idempotency_key: str | None,
) -> Call:
    """Record the five-criteria assessment (real_world_event, depicts_harm, intimidation,
    tve_link, multi_platform_virality: met, not_met or unknown, with evidence)."""
    if not criteria and from_file is None:
        raise Invalid("no assessment", "give --criterion NAME=STATUS[:EVIDENCE] or --file FILE")
    base = load_model(Assessment, from_file, "assessment") if from_file else Assessment()
    assessment = base.model_copy(update=dict(parse_criterion(c) for c in criteria))
    return lambda api: api.assess(incident_id, assessment, reason, idempotency_key)


@command(crisis, "activate", show_answer, idempotent=True)
@identifiers_input(required=False)
@reason_option("activate")
@click.option(
    "--platform", "platforms", multiple=True, help="a participating platform (repeat); all if none"
)
@removal_order_option
def crisis_activate(
    incident_id: str,
    identifiers: list[AnyIdentifier],
    reason: str,
    platforms: tuple[str, ...],
    basis: Any,
    idempotency_key: str | None,
) -> Call:
    """Activate the protocol: every platform gets a task per identifier."""
    return lambda api: api.activate(
        incident_id, reason, identifiers, list(platforms) or None, basis, idempotency_key
    )


@command(crisis, "decline", show_answer, idempotent=True)
@reason_option("decline")
def crisis_decline(incident_id: str, reason: str, idempotency_key: str | None) -> Call:
    """Decide not to activate (a final phase)."""
    return lambda api: api.decline(incident_id, reason, idempotency_key)


@command(crisis, "add-content", show_answer, idempotent=True)
@identifiers_input(required=True)
@removal_order_option
def crisis_add_content(
    incident_id: str, identifiers: list[AnyIdentifier], basis: Any, idempotency_key: str | None
) -> Call:
    """New identifiers for every participating platform (1,000 per request)."""
    return lambda api: api.add_content(incident_id, identifiers, basis, None, idempotency_key)


@command(crisis, "withdraw", show_answer, idempotent=True)
@click.argument("items", nargs=-1, required=True, type=click.IntRange(min=1))
@reason_option("withdraw_content")
def crisis_withdraw(
    incident_id: str, items: tuple[int, ...], reason: str, idempotency_key: str | None
) -> Call:
    """Withdraw content items (by number): their open tasks are withdrawn."""
    return lambda api: api.withdraw_content(incident_id, list(items), reason, idempotency_key)


@command(crisis, "de-escalate", show_answer, idempotent=True)
@reason_option("de_escalate")
@click.option("--withdraw-open-tasks", is_flag=True, help="withdraw every task still open")
def crisis_de_escalate(
    incident_id: str, reason: str, withdraw_open_tasks: bool, idempotency_key: str | None
) -> Call:
    """Move the crisis to de-escalation."""
    return lambda api: api.de_escalate(incident_id, reason, withdraw_open_tasks, idempotency_key)


@command(crisis, "re-escalate", show_answer, idempotent=True)
@reason_option("re_escalate")
def crisis_re_escalate(incident_id: str, reason: str, idempotency_key: str | None) -> Call:
    """Back from de-escalation to active."""
    return lambda api: api.re_escalate(incident_id, reason, idempotency_key)


@command(crisis, "review", show_answer, idempotent=True)
@reason_option("start_review")
def crisis_review(incident_id: str, reason: str | None, idempotency_key: str | None) -> Call:
    """Start the post-incident review."""
    return lambda api: api.start_review(incident_id, reason, idempotency_key)


@command(crisis, "close", show_answer, idempotent=True)
@reason_option("close")
def crisis_close(incident_id: str, reason: str | None, idempotency_key: str | None) -> Call:
    """Close the review and the incident."""
    return lambda api: api.close(incident_id, reason, idempotency_key)


@command(crisis, "review-input", show_answer, idempotent=True)
@click.argument("text")
def crisis_review_input(incident_id: str, text: str, idempotency_key: str | None) -> Call:
    """Submit lessons learned during the review (TEXT, or '-' to read stdin)."""
    body = read_text(text)
    return lambda api: api.submit_review_input(incident_id, body, idempotency_key)


@command(crisis, "sightings", show_answer, idempotent=True)
@identifiers_input(required=True)
def crisis_sightings(
    incident_id: str, identifiers: list[AnyIdentifier], idempotency_key: str | None
) -> Call:
    """Report new copies seen (they become tasks for the other platforms)."""
    return lambda api: api.report_sightings(incident_id, identifiers, None, idempotency_key)


@command(crisis, "false-positive", show_answer, idempotent=True)
@click.argument("item", type=click.IntRange(min=1))
@reason_option("report_false_positive")
def crisis_false_positive(
    incident_id: str, item: int, reason: str, idempotency_key: str | None
) -> Call:
    """Report a content item as a false positive."""
    return lambda api: api.report_false_positive(incident_id, item, reason, idempotency_key)


# ---- eucp task -----------------------------------------------------------------------------


@main.group()
def task() -> None:
    """A platform's own tasks over the API: list them, acknowledge, report outcomes."""


@command(task, "list", show_tasks)
@click.option("--state", type=click.Choice(TaskState), help="only tasks in this state")
@click.option("--platform", help="whose tasks (coordinators and auditors; a platform sees its own)")
@click.option("--offset", type=click.IntRange(min=0), default=0)
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--all", "every", is_flag=True, help="every task, page after page")
def task_list(
    incident_id: str,
    state: TaskState | None,
    platform: str | None,
    offset: int,
    limit: int,
    every: bool,
) -> Call:
    """List tasks of an incident."""

    async def everything(api: ApiClient) -> TaskPage:
        tasks = [t async for t in api.iter_tasks(incident_id, platform, state)]
        return TaskPage(tasks=tasks, total=len(tasks), next_offset=None)

    if every:
        return everything
    return lambda api: api.tasks(incident_id, platform, state, offset, limit)


def report_on(
    incident_id: str,
    task_ids: list[str],
    every_in: TaskState | None,
    make: Callable[[str], Any],
    key: str | None,
) -> Call:
    """Reports on the named tasks and, with `every_in`, on every task in that state now."""
    if not task_ids and every_in is None:
        raise Invalid("no tasks", "name task ids, use --from FILE, or select them by state")
    try:
        reports = [make(t) for t in task_ids]
    except ValidationError as err:
        raise Invalid(describe(err)) from None

    async def run(api: ApiClient) -> ReportAnswer:
        more = []
        if every_in is not None:
            named = set(task_ids)
            async for t in api.iter_tasks(incident_id, state=every_in):
                if t.task_id not in named:
                    more.append(make(t.task_id))
        if not reports and not more:
            return ReportAnswer()
        return await api.report_tasks(incident_id, reports + more, key)

    return run


@command(task, "ack", show_report_answer, idempotent=True)
@task_ids_input
@click.option("--all-assigned", is_flag=True, help="every task of yours still assigned")
def task_ack(
    incident_id: str, task_ids: list[str], all_assigned: bool, idempotency_key: str | None
) -> Call:
    """Acknowledge receipt of tasks (250 per request)."""

    def make(task_id: str) -> TaskReport:
        return TaskReport(task_id=task_id, outcome=Outcome.acknowledged)

    every = TaskState.assigned if all_assigned else None
    return report_on(incident_id, task_ids, every, make, idempotency_key)


@command(task, "report", show_report_answer, idempotent=True)
@task_ids_input
@click.option(
    "--outcome", type=click.Choice(Outcome), required=True, help="what happened to the content"
)
@click.option("--reason", help="why (required to decline)")
@click.option(
    "--cannot-comply",
    "cannot_comply",
    type=click.Choice(CannotComplyReason),
    help="TCO Annex III reason, with --outcome cannot_comply",
)
@click.option(
    "--all-in",
    "all_in",
    type=click.Choice(TaskState),
    help="also every task of yours in this state",
)
def task_report(
    incident_id: str,
    task_ids: list[str],
    outcome: Outcome,
    reason: str | None,
    cannot_comply: CannotComplyReason | None,
    all_in: TaskState | None,
    idempotency_key: str | None,
) -> Call:
    """Report an outcome on tasks: removed, not_found, declined, cannot_comply, resumed,
    acknowledged (250 per request)."""
    if cannot_comply and outcome is not Outcome.cannot_comply:
        raise Invalid("--cannot-comply goes with --outcome cannot_comply")

    def make(task_id: str) -> TaskReport:
        return TaskReport(
            task_id=task_id, outcome=outcome, reason=reason, cannot_comply=cannot_comply
        )

    return report_on(incident_id, task_ids, all_in, make, idempotency_key)


# ---- eucp participants (local files) -------------------------------------------------------


@main.group()
def participants() -> None:
    """The operator's participants registry (EUCP_REGISTRY_PATH) and API tokens
    (EUCP_TOKENS_PATH): local files, not over HTTP. A running API and worker read the registry
    at start: restart them after adding a participant."""


class Registered(BaseModel):
    """A registry entry as `eucp participants` shows it: never a secret or an address."""

    id: str
    kind: ParticipantKind
    name: str
    channels: list[str]
    token: bool = Field(description="whether an API token has been issued")

    @classmethod
    def of(cls, contact: Contact, token: bool) -> Registered:
        channels = [str(c) for c in contact.channels]
        return cls(
            id=contact.id, kind=contact.kind, name=contact.name, channels=channels, token=token
        )


class Issued(BaseModel):
    """A participant and its new API token, shown this once."""

    participant: Registered
    registry: str
    token: str


def show_issued(issued: Issued) -> str:
    p = issued.participant
    return (
        f"{p.id} ({p.kind}, {p.name}) in {issued.registry}\n"
        "its API token, shown only this once (give it to the participant as EUCP_TOKEN):\n"
        f"{issued.token}"
    )


def show_participants(rows: list[Registered]) -> str:
    return table(
        ["ID", "KIND", "NAME", "CHANNELS", "TOKEN"],
        [(r.id, r.kind, r.name, ",".join(r.channels), "yes" if r.token else "no") for r in rows],
    )


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialises operator commands on one registry (read, change, write) by locking its
    folder, so no lock file is left behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)
        yield
    finally:
        os.close(folder)  # releases the lock


def _registry(path: Path) -> Registry:
    """The registry at `path` (empty if there is none yet), or a `Failure` saying what is wrong."""
    if not path.exists():
        return Registry(participants=[])
    try:
        return Registry.load(path)
    except ValidationError as err:
        raise Invalid(f"{path}: not a valid registry: {describe(err)}", "fix it first") from None


def _issue(contact: Contact, path: Path) -> Issued:
    """A new token for the participant; any earlier one stops working."""
    token = TokenStore(Settings().tokens_path).issue(contact.id)
    return Issued(participant=Registered.of(contact, token=True), registry=str(path), token=token)


@command(participants, "add", show_issued, api=False, incident=False)
@click.argument("participant_id")
@click.option(
    "--kind",
    type=click.Choice([k for k in ParticipantKind if k is not ParticipantKind.system]),
    required=True,
)
@click.option("--name", required=True, help="the organisation's name")
@click.option("--webhook-url", help="where signed task notifications are POSTed")
@click.option("--webhook-secret", help="the shared secret webhooks are signed with")
@click.option("--email", help="an address for email notifications")
def participants_add(
    participant_id: str,
    kind: ParticipantKind,
    name: str,
    webhook_url: str | None,
    webhook_secret: str | None,
    email: str | None,
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
    }
    try:
        contact = Contact.model_validate(entry)
    except ValidationError as err:
        raise Invalid(describe(err)) from None
    with _locked(path):
        registry = _registry(path)
        if any(c.id == participant_id for c in registry.participants):
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
        holders = {str(p) for p in json.loads(settings.tokens_path.read_text()).values()}
    return [
        Registered.of(c, token=c.id in holders)
        for c in _registry(settings.registry_path).participants
    ]


if __name__ == "__main__":
    main()

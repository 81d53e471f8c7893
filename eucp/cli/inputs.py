"""What commands read from people: identifiers and task ids from arguments and files, JSON files
as the project's models, assessment criteria, times with their zone, and the options several
commands share (`--reason` as the phase machine wants it, `--removal-order`). Bad input is an
`Invalid` naming every problem, and nothing is sent.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import IO, Any

import click
from pydantic import BaseModel, ValidationError

from eucp.cli.framework import Decorated, Invalid
from eucp.protocol.actions import ACTIONS, Action
from eucp.protocol.clocks import parse_clock_change
from eucp.protocol.identifiers import AnyIdentifier, describe_invalid, lines_of, parse_identifier
from eucp.protocol.incident import Assessment, Criterion, CriterionStatus
from eucp.protocol.tasks import RemovalOrder


def read_identifiers(args: Sequence[str], source: IO[str] | None) -> list[AnyIdentifier]:
    """Identifiers from the arguments and the file; every bad one named, and none returned if
    any is bad (so nothing is sent)."""
    where = [(f"argument {number}", text) for number, text in enumerate(args, 1)]
    if source is not None:
        name = "stdin" if source.name == "<stdin>" else source.name
        where += [(f"{name} line {number}", text) for number, text in lines_of(source)]
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
) -> Callable[[Decorated], Decorated]:
    """ARGUMENT... and `--from FILE` ('-': stdin), read together into one list `into`."""

    def apply(function: Decorated) -> Decorated:
        @click.argument(argument, nargs=-1)
        @click.option("--from", "from_file", type=click.File("r"), help=help)
        @functools.wraps(function)
        def wrapper(from_file: IO[str] | None, **kwargs: Any) -> Any:
            values = kwargs.pop(argument)
            return function(**{into: read(values, from_file)}, **kwargs)

        return wrapper  # type: ignore[return-value]

    return apply


def identifiers_input(required: bool) -> Callable[[Decorated], Decorated]:
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
        raise Invalid(f"{source.name}: not a valid {what}: {describe_invalid(err)}") from None


def removal_order_option(function: Decorated) -> Decorated:
    def load(_: click.Context, __: click.Parameter, value: IO[str] | None) -> Any:
        return None if value is None else load_model(RemovalOrder, value, "removal order")

    return click.option(
        "--removal-order",
        "basis",
        type=click.File("r"),
        callback=load,
        help="JSON file of a TCO removal order (Annex I fields); voluntary referral otherwise",
    )(function)


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
        raise click.BadParameter(f"{text!r}: {describe_invalid(err)}") from None


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


def reason_option(action: Action) -> Callable[[Decorated], Decorated]:
    """`--reason`, required when the table of actions requires one for `action`."""
    rule = ACTIONS[action]
    needed = f"required ({rule.source})" if rule.reason_required else "optional"
    return click.option("--reason", required=rule.reason_required, help=f"why; {needed}")


def parse_clock(text: str) -> tuple[str, timedelta]:
    """`act_within=45m` -> ("act_within", 45 minutes), for `--set`."""
    try:
        return parse_clock_change(text)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None


def read_text(value: str) -> str:
    """The value itself, or stdin for '-'."""
    return sys.stdin.read() if value == "-" else value

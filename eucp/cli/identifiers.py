"""`eucp identifiers`: an incident's identifiers out to a file, and a hash list file into an
incident, in two formats:

- `csv`: one identifier a row under a header, with its quality and its GIFCT labels:
  `item,type,value,quality,platform,entity,content_type,behaviour` (`type` is url, item, md5,
  sha256, pdq, vpdq or tmk; python-threatexchange's names video_md5, video_sha256 and tmk_pdqf
  are read too; `item` is the number in the incident it came from, not read back);
- `tx`: python-threatexchange's file exchange (`LocalFileSignalExchangeAPI`), one
  `SIGNAL_TYPE SIGNAL` a line, what `threatexchange dataset -P -S` prints and what a `file`
  collaboration of the library reads: no quality, no labels, no platform's item ids.

Export reads what the caller may see: coordinators and auditors the content the incident's
decisions admitted and did not take back (`GET .../decisions`), a platform its own tasks but
the withdrawn ones (`GET .../tasks`). Import is a coordinator's `add_content` of the whole
file, in batches: every row is checked first, and one bad row sends nothing.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from eucp.cli.framework import Call, Invalid, call_api, command, current_target, target_options
from eucp.cli.render import pairs
from eucp.client import ApiClient, batch_key, merge_answers
from eucp.protocol.actions import Action
from eucp.protocol.commands import MAX_BATCH
from eucp.protocol.decisions import Decision, DecisionKind
from eucp.protocol.identifiers import (
    TX_ALGORITHM_OF_SIGNAL,
    TX_SIGNAL_OF_ALGORITHM,
    TX_URL_SIGNAL,
    AnyIdentifier,
    HashAlgorithm,
    HashIdentifier,
    Labels,
    PlatformItemIdentifier,
    UrlIdentifier,
    describe_invalid,
)
from eucp.protocol.refusal import Refusal
from eucp.protocol.state import Answer
from eucp.protocol.tasks import ContentItem, TaskState, open_items, ranges

FORMATS = ("csv", "tx")
COLUMNS = ("item", "type", "value", "quality", "platform", "entity", "content_type", "behaviour")
LABELS = ("entity", "content_type", "behaviour")
SIGNALS = (*TX_SIGNAL_OF_ALGORITHM.values(), TX_URL_SIGNAL)
TYPES = ("url", "item", *(a.value for a in HashAlgorithm))
# the request body a batch of identifiers may fill, under the API's 1 MiB: video hashes weigh
# up to 350 KB each
BATCH_BYTES = 768 * 1024
SHOWN_BAD = 20  # bad rows listed, at most


@click.group()
def identifiers() -> None:
    """An incident's identifiers out to a file, and hash lists (from GIFCT, Tech Against
    Terrorism, python-threatexchange) into an incident: as CSV with labels, or in
    python-threatexchange's file-exchange format (tx)."""


# ---- export ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Exported:
    """One identifier of the incident: its item number there, and the identifier."""

    item: int
    identifier: AnyIdentifier


def standing_items(decisions: Sequence[Decision]) -> list[ContentItem]:
    """The content the incident's decisions admitted and did not take back: neither withdrawn
    by a coordinator nor under an order that lost its effect (`open_items`' rules, but a
    de-escalation that withdrew the open tasks withdrew tasks, not the content)."""
    return open_items(
        [
            d
            for d in decisions
            if not (d.kind is DecisionKind.de_escalated and d.inputs.get("withdraw_open_tasks"))
        ]
    )


async def visible_identifiers(api: ApiClient, incident_id: str) -> list[Exported]:
    """The incident's identifiers the caller may see: all those standing for a coordinator or
    an auditor (who read the decisions); a platform's own tasks, but the withdrawn ones, for
    a platform (whom the decisions refuse, 403)."""
    try:
        rows = await api.all_decisions(incident_id)
    except Refusal as refused:
        if refused.status != 403:
            raise
    else:
        if not rows:  # every incident has its report: 404 for one that does not exist
            await api.status(incident_id)
        items = standing_items([row.decision for row in rows])
        return [Exported(item.no, item.identifier) for item in items]
    own: dict[int, Exported] = {}
    async for task in api.iter_tasks(incident_id):
        if task.state is not TaskState.withdrawn:  # a reinstatement is a second task, same item
            own.setdefault(task.item_no, Exported(task.item_no, task.identifier))
    return [own[no] for no in sorted(own)]


def csv_row(exported: Exported) -> dict[str, Any]:
    identifier = exported.identifier
    row: dict[str, Any] = {"item": exported.item, **identifier.labels.model_dump()}
    if isinstance(identifier, HashIdentifier):
        row |= {"type": identifier.algorithm, "value": identifier.value}
        row["quality"] = identifier.quality
    elif isinstance(identifier, UrlIdentifier):
        row |= {"type": "url", "value": identifier.value, "platform": identifier.platform}
    else:
        row |= {"type": "item", "value": identifier.item_id, "platform": identifier.platform}
    return row


def as_csv(found: Sequence[Exported]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(csv_row(exported) for exported in found)
    return out.getvalue()


def signal_of(identifier: AnyIdentifier) -> tuple[str, str] | None:
    """python-threatexchange's (signal type, signal) of an identifier; None for a platform's
    item id, which the library has no signal for."""
    if isinstance(identifier, HashIdentifier):
        return TX_SIGNAL_OF_ALGORITHM[identifier.algorithm], identifier.value
    if isinstance(identifier, UrlIdentifier):
        return TX_URL_SIGNAL, identifier.value
    return None


def as_tx(found: Sequence[Exported]) -> tuple[str, int, int]:
    """The file exchange's lines, each signal once; how many identifiers have no signal (a
    platform's item id: the library has none for it), and how many URLs one line cannot hold
    as they are (a line break in it, or spaces around it, which the library strips)."""
    lines: dict[str, None] = {}
    no_signal = no_line = 0
    for exported in found:
        signal = signal_of(exported.identifier)
        if signal is None:
            no_signal += 1
        elif signal[1] != signal[1].strip() or len(signal[1].splitlines()) > 1:
            no_line += 1
        else:
            lines[f"{signal[0]} {signal[1]}"] = None
    return "".join(f"{line}\n" for line in lines), no_signal, no_line


@identifiers.command("export")
@click.argument("incident_id")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="csv", show_default=True)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="write here (default: stdout); nothing is written if the API refuses",
)
@target_options(top=False)
def export(incident_id: str, fmt: str, out: Path | None) -> None:
    """Write the incident's identifiers: csv (with quality and labels), or tx, which
    python-threatexchange's file exchange reads (`threatexchange config collab edit
    local_file NAME --create --filename FILE`).

    Coordinators and auditors get every identifier the incident admitted and did not take
    back (withdrawn content and an order found to infringe are left out); a platform gets
    those of its own tasks that are not withdrawn. What was written is said on stderr.
    """
    target = current_target()
    found: list[Exported] = call_api(target, lambda api: visible_identifiers(api, incident_id))
    no_signal = no_line = 0
    if fmt == "csv":
        text = as_csv(found)
    else:
        text, no_signal, no_line = as_tx(found)
    if out is None:
        click.echo(text, nl=False)
    else:
        with out.open("w", encoding="utf-8", newline="") as sink:
            sink.write(text)
    written = len(found) if fmt == "csv" else text.count("\n")
    summary: dict[str, Any] = {
        "incident_id": incident_id,
        "format": fmt,
        "identifiers": written,
        "left_out": {"no_signal": no_signal, "no_line": no_line},
        "out": str(out) if out else None,
    }
    if target.json:
        click.echo(json.dumps(summary), err=True)
        return
    said = f"{incident_id}: {written} identifiers as {fmt} to {out or 'stdout'}"
    if no_signal:
        said += f"; {no_signal} left out: a platform's item id has no python-threatexchange signal"
    if no_line:
        said += f"; {no_line} left out: a URL with a line break, or spaces around it"
    if fmt == "tx" and written:
        said += "; the tx format carries no quality and no labels"
    click.echo(said, err=True)


# ---- import ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Defaults:
    """What a row that does not say takes: the labels, the PDQ quality and (tx) the signal
    type given as options."""

    labels: Labels
    pdq_quality: int | None = None
    signal_type: str | None = None


def labelled(given: dict[str, str], defaults: Labels) -> Labels:
    """The row's labels, each one it leaves empty taken from the options."""
    values = {name: (given.get(name) or "").strip() or getattr(defaults, name) for name in LABELS}
    try:
        return Labels(**values)
    except ValidationError as err:
        raise ValueError(describe_invalid(err)) from None


def build(
    kind: str, value: str, quality: str, platform: str, labels: Labels, defaults: Defaults
) -> AnyIdentifier:
    """The identifier of one row, or a `ValueError` saying which rule it breaks."""
    kind = kind.strip().lower()
    kind = TX_ALGORITHM_OF_SIGNAL.get(kind, kind)
    value, quality, platform = value.strip(), quality.strip(), platform.strip()
    if kind not in TYPES:
        known = ", ".join(TYPES)
        raise ValueError(
            f"type: {kind!r} is none of {known} (or video_md5, video_sha256, tmk_pdqf)"
        )
    if not value:
        raise ValueError("value: empty")
    if quality and not quality.isdigit():
        raise ValueError(f"quality: a whole number 0-100, got {quality!r}")
    score = int(quality) if quality else None
    model: type[UrlIdentifier | PlatformItemIdentifier | HashIdentifier]
    data: dict[str, Any] = {"labels": labels}
    if kind in ("url", "item"):
        if score is not None:
            raise ValueError(
                f"quality: a hash has one, not {'a URL' if kind == 'url' else 'an item'}"
            )
        if kind == "url":
            model, data = UrlIdentifier, data | {"value": value, "platform": platform or None}
        elif not platform:
            raise ValueError("platform: an item id needs the platform it is on")
        else:
            model, data = PlatformItemIdentifier, data | {"item_id": value, "platform": platform}
    else:
        if platform:
            raise ValueError("platform: a hash is bound to no platform")
        if kind == HashAlgorithm.pdq and score is None:
            if defaults.pdq_quality is None:
                raise ValueError(
                    "quality: a pdq hash needs its quality score (0-100): a quality column, "
                    "or --pdq-quality N for the whole list"
                )
            score = defaults.pdq_quality
        model, data = HashIdentifier, data | {"algorithm": kind, "value": value, "quality": score}
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ValueError(describe_invalid(err)) from None


Parsed = Iterator[tuple[int, AnyIdentifier | ValueError]]


def csv_rows(text: str, defaults: Defaults) -> Parsed:
    """(line, identifier or what is wrong) of each row of a CSV list under its header."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    limit = csv.field_size_limit(max(len(text), 131_072))  # a tmk hash is 350 KB
    try:
        header: list[str] | None = None
        while True:
            line = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as err:
                yield line, ValueError(f"not CSV: {err}")
                return
            if not any(cell.strip() for cell in row):
                continue
            if header is None:
                header = [cell.strip().lower() for cell in row]
                problem = header_problem(header)
                if problem:
                    yield line, ValueError(problem)
                    return
                continue
            if len(row) != len(header):
                yield line, ValueError(f"{len(row)} fields, where the header has {len(header)}")
                continue
            cells = dict(zip(header, row, strict=True))
            try:
                labels = labelled(cells, defaults.labels)
                yield (
                    line,
                    build(
                        cells["type"],
                        cells["value"],
                        cells.get("quality", ""),
                        cells.get("platform", ""),
                        labels,
                        defaults,
                    ),
                )
            except ValueError as err:
                yield line, err
    finally:
        csv.field_size_limit(limit)


def header_problem(header: list[str]) -> str | None:
    unknown = [name for name in header if name not in COLUMNS]
    if unknown:
        return (
            f"the header's column {unknown[0]!r} is none of {', '.join(COLUMNS)} "
            "(the first row names the columns; type and value are needed)"
        )
    twice = sorted({name for name in header if header.count(name) > 1})
    if twice:
        return f"the header names {twice[0]!r} twice"
    missing = [name for name in ("type", "value") if name not in header]
    if missing:
        return f"the header has no {missing[0]!r} column (the first row names the columns)"
    return None


def tx_rows(text: str, defaults: Defaults) -> Parsed:
    """(line, identifier or what is wrong) of each line `SIGNAL_TYPE SIGNAL`, or `SIGNAL`
    alone with a default signal type, as the library's file exchange reads them (blank lines
    skipped; `#` comments too, which the library would not read as signals either)."""
    for line, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        signal_type, signal = defaults.signal_type, stripped
        if signal_type is None:
            signal_type, _, signal = stripped.partition(" ")
            if not signal.strip():
                shape = "SIGNAL_TYPE SIGNAL (python-threatexchange's file exchange)"
                yield line, ValueError(f"a line is {shape}, got {stripped[:60]!r}")
                continue
        if signal_type not in SIGNALS:
            known = ", ".join(SIGNALS)
            yield line, ValueError(f"signal type {signal_type[:40]!r} is none eucp takes: {known}")
            continue
        try:  # the library's names: build reads them as eucp's types
            yield line, build(signal_type, signal, "", "", defaults.labels, defaults)
        except ValueError as err:
            yield line, err


def read_list(name: str, text: str, fmt: str, defaults: Defaults) -> list[AnyIdentifier]:
    """Every identifier of the list, or an `Invalid` naming each bad row by its line and the
    rule it breaks (so nothing is sent)."""
    rows = csv_rows(text, defaults) if fmt == "csv" else tx_rows(text, defaults)
    found: list[AnyIdentifier] = []
    bad: list[str] = []
    for line, parsed in rows:
        if isinstance(parsed, ValueError):
            bad.append(f"{name} line {line}: {parsed}")
        else:
            found.append(parsed)
    if bad:
        shown = bad[:SHOWN_BAD]
        if len(bad) > SHOWN_BAD:
            shown.append(f"... and {len(bad) - SHOWN_BAD} more")
        hint = "--format tx reads python-threatexchange's file exchange" if fmt == "csv" else None
        raise Invalid(
            f"{len(bad)} bad row{'s' if len(bad) > 1 else ''}, nothing was sent:\n  "
            + "\n  ".join(shown),
            hint if any("header" in b for b in bad) else None,
        )
    if not found:
        raise Invalid(f"{name}: no identifiers in it")
    return found


def read_source(path: str) -> tuple[str, str]:
    """The file's name and its text (UTF-8, a byte order mark dropped); '-' is stdin."""
    try:
        if path == "-":
            data = sys.stdin.buffer.read()
            name = "stdin"
        else:
            data, name = Path(path).read_bytes(), path
    except OSError as err:
        raise Invalid(f"{path}: cannot be read: {err.strerror}") from None
    try:
        return name, data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise Invalid(f"{name}: not UTF-8 text (byte {err.start})") from None


def batches(found: Sequence[AnyIdentifier]) -> Iterator[list[AnyIdentifier]]:
    """Up to `MAX_BATCH` identifiers a request, and no more than `BATCH_BYTES` of them."""
    batch: list[AnyIdentifier] = []
    size = 0
    for identifier in found:
        weight = len(identifier.model_dump_json(exclude_none=True)) + 1
        if batch and (len(batch) == MAX_BATCH or size + weight > BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(identifier)
        size += weight
    if batch:
        yield batch


async def add_all(
    api: ApiClient,
    incident_id: str,
    found: Sequence[AnyIdentifier],
    addressees: list[str] | None,
    idempotency_key: str | None,
) -> Answer:
    """`add_content` of every identifier, batch after batch, the answers merged; a refusal
    says what the earlier batches added (`Refusal.applied`)."""
    answers: list[Answer] = []
    for n, batch in enumerate(batches(found)):
        try:
            answers.append(
                await api.act(
                    incident_id,
                    Action.add_content,
                    idempotency_key=batch_key(idempotency_key, n),
                    identifiers=batch,
                    addressees=addressees,
                )
            )
        except Refusal as refused:
            refused.applied = merge_answers(answers) if answers else None
            raise
    return merge_answers(answers)


def show_imported(result: dict[str, Any]) -> str:
    return pairs(
        [
            ("read", f"{result['read']} identifiers from {result['file']}"),
            ("phase", result["phase"]),
            ("accepted items", ranges(result["accepted_items"])),
            ("duplicates", result["duplicates"]),
            ("low quality", result["low_quality"]),
        ]
    )


@command(identifiers, "import", show_imported, idempotent=True)
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="csv", show_default=True)
@click.option(
    "--pdq-quality",
    type=click.IntRange(0, 100),
    help="the quality of pdq hashes the list gives none for (a tx list never does)",
)
@click.option(
    "--signal-type",
    type=click.Choice(SIGNALS),
    help="tx: every line is a bare signal of this type (as the library's --signal-type)",
)
@click.option("--entity", help="label of rows that give none: the entity (GIFCT taxonomy)")
@click.option("--content-type", help="label of rows that give none: the type of content")
@click.option("--behaviour", help="label of rows that give none: the behaviour it shows")
@click.option(
    "--platform",
    "addressees",
    multiple=True,
    help="a participating platform the referral is for (repeat); all if none",
)
def import_list(
    incident_id: str,
    file: str,
    fmt: str,
    pdq_quality: int | None,
    signal_type: str | None,
    entity: str | None,
    content_type: str | None,
    behaviour: str | None,
    addressees: tuple[str, ...],
    idempotency_key: str | None,
) -> Call:
    """Add a hash list FILE ('-': stdin) to the incident as new content (coordinators): csv
    with a header (type and value; quality, platform, entity, content_type, behaviour if
    given; item is not read) or tx (`SIGNAL_TYPE SIGNAL` lines, as python-threatexchange's
    file exchange reads and `threatexchange dataset -P -S` prints them; bare signals with
    --signal-type).

    Every row is checked first: one bad row, and nothing is sent (the error names its line
    and the rule). Then the identifiers go in batches, and eucp's dedup counts the repeats of
    what the incident holds as duplicates and drops low-quality PDQ hashes.
    """
    if signal_type is not None and fmt != "tx":
        raise Invalid("--signal-type is for a tx list (--format tx)")
    try:
        labels = Labels(entity=entity, content_type=content_type, behaviour=behaviour)
    except ValidationError as err:
        raise Invalid(f"labels: {describe_invalid(err)}") from None
    name, text = read_source(file)
    found = read_list(name, text, fmt, Defaults(labels, pdq_quality, signal_type))
    named = list(addressees) or None

    async def send(api: ApiClient) -> dict[str, Any]:
        answer = await add_all(api, incident_id, found, named, idempotency_key)
        return {"file": name, "read": len(found), **answer.model_dump(mode="json")}

    return send

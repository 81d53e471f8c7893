"""`eucp audit`: list, replay, timeline, verify, export. Exit 0: no finding; 1: findings;
2: the audit could not run (Temporal unreachable, not a bundle, bad arguments).

Registered on the main command by `main.add_command(audit)`. Tests and embedders may pass a
`Settings` as the click context object; otherwise the EUCP_* environment is read.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import BaseModel
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from activities.report import ReportActivities, ReportFiles, WriteReport
from eucp.audit.bundle import BundleError, export_evidence, read_bundle
from eucp.audit.listing import list_incidents
from eucp.audit.models import (
    EntryStatus,
    Evidence,
    ExportReport,
    Finding,
    IncidentState,
    ListReport,
    ReplayReport,
    TimelineReport,
    VerifyReport,
)
from eucp.audit.replay import replay_evidence
from eucp.audit.sources import gather
from eucp.audit.timeline import build_timeline
from eucp.audit.verify import verify_evidence
from eucp.protocol.clocks import spoken
from eucp.protocol.deadlines import MISSED
from eucp.protocol.participants import ID_PATTERN
from eucp.protocol.tasks import TaskState
from eucp.runtime.codec import CodecError
from eucp.runtime.ledger import Ledger, open_ledger
from eucp.runtime.settings import Settings, get_settings
from eucp.runtime.temporal import connect

T = TypeVar("T")


class AuditError(click.ClickException):
    """The audit could not run at all: exit 2, never mistaken for a clean result."""

    exit_code = 2


class Moment(click.ParamType):  # type: ignore[type-arg]
    """An ISO 8601 time; without a zone it is UTC."""

    name = "TIME"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        if isinstance(value, datetime):
            moment = value
        else:
            try:
                moment = datetime.fromisoformat(str(value))
            except ValueError:
                self.fail(
                    f"{value!r} is not an ISO 8601 time (e.g. 2026-03-15T02:10:00Z)", param, ctx
                )
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


_JSON = click.option("--json", "as_json", is_flag=True, help="machine-readable output")
_BUNDLE = click.option(
    "--bundle",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="audit this exported bundle offline (no Temporal, no database)",
)
_MANIFEST_SUM = click.option(
    "--manifest-sha256",
    metavar="HEX",
    help="with --bundle: the manifest SHA-256 export printed, kept apart from the bundle",
)
_AT = click.option("--at", type=Moment(), help="also show the incident's state at this time")


@click.group()
def audit() -> None:
    """Audit incidents: replay their histories, cross-check the ledger, export bundles."""


@audit.command("list")
@_JSON
@click.pass_context
def list_command(ctx: click.Context, as_json: bool) -> None:
    """Every incident in Temporal or the ledger, closed ones too: phase, reporter, dates."""
    settings = _settings(ctx)

    async def run() -> ListReport:
        client = await _connect(settings)
        with _ledger(settings) as ledger:
            return await list_incidents(client, ledger)

    report = _run(run())
    _emit(ctx, report, report.ok, as_json, _list_text)


def _evidence_command(
    *, temporal: bool, ledger: bool, options: Sequence[Callable[[Any], Any]] = ()
) -> Callable[[Callable[..., None]], click.Command]:
    """An `audit` command on one incident's evidence: INCIDENT_ID (read from Temporal and/or
    the ledger, as `temporal` and `ledger` say) or --bundle FILE with --manifest-sha256, then
    the command's own `options`, then --json. The decorated function is called with the click
    context, the gathered `Evidence`, its own options and `as_json`, so it says only what it
    does with the evidence."""

    def decorate(use: Callable[..., None]) -> click.Command:
        @functools.wraps(use)
        def command(
            ctx: click.Context,
            incident_id: str | None,
            bundle: Path | None,
            manifest_sha256: str | None,
            **own: Any,
        ) -> None:
            evidence = _evidence(
                ctx, incident_id, bundle, manifest_sha256, temporal=temporal, ledger=ledger
            )
            use(ctx, evidence, **own)

        in_help_order = [
            click.argument("incident_id", required=False),
            *options,
            _BUNDLE,
            _MANIFEST_SUM,
            _JSON,
        ]
        with_params: Callable[..., None] = click.pass_context(command)
        for param in reversed(in_help_order):  # click shows the last one applied first
            with_params = param(with_params)
        return audit.command()(with_params)

    return decorate


@_evidence_command(temporal=True, ledger=False)
def replay(ctx: click.Context, evidence: Evidence, as_json: bool) -> None:
    """Replay every run of the incident's workflows against the current code."""
    report = _run(replay_evidence(evidence))
    _emit(ctx, report, report.ok, as_json, _replay_text)


@_evidence_command(temporal=True, ledger=True, options=[_AT])
def timeline(ctx: click.Context, evidence: Evidence, at: datetime | None, as_json: bool) -> None:
    """The decisions rebuilt from history, checked one by one against the ledger."""
    report = build_timeline(evidence, at)
    _emit(ctx, report, report.ok, as_json, _timeline_text)


@_evidence_command(temporal=False, ledger=True)
def verify(ctx: click.Context, evidence: Evidence, as_json: bool) -> None:
    """Recompute the ledger's hash chain; name the first bad row."""
    report = verify_evidence(evidence)
    _emit(ctx, report, report.ok, as_json, _verify_text)


@audit.command()
@click.argument("incident_id")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="the bundle file to write (a zip)",
)
@_JSON
@click.pass_context
def export(ctx: click.Context, incident_id: str, output: Path, as_json: bool) -> None:
    """Write one bundle (histories, ledger rows, manifest of SHA-256 sums) that replays and
    verifies offline."""
    evidence = _evidence(ctx, incident_id, None, None, temporal=True, ledger=True)
    if not evidence.histories and not evidence.rows:
        raise AuditError(f"nothing to export: {incident_id} has no history and no ledger rows")
    report = export_evidence(evidence, output)
    _emit(ctx, report, report.ok, as_json, _export_text)


# ---- collecting evidence ----------------------------------------------------------------------


def _settings(ctx: click.Context) -> Settings:
    found = ctx.find_object(Settings)
    return found if found is not None else get_settings()


def _evidence(
    ctx: click.Context,
    incident_id: str | None,
    bundle: Path | None,
    manifest_sha256: str | None,
    *,
    temporal: bool,
    ledger: bool,
) -> Evidence:
    """From the bundle if given, else from Temporal and/or the ledger."""
    if bundle is not None:
        try:
            evidence, _ = read_bundle(bundle, manifest_sha256)
        except BundleError as err:
            raise AuditError(str(err)) from None
        if incident_id is not None and incident_id != evidence.incident_id:
            raise AuditError(f"{bundle} holds incident {evidence.incident_id}, not {incident_id}")
        return evidence
    if incident_id is None:
        raise click.UsageError("give an INCIDENT_ID, or --bundle FILE")
    if manifest_sha256 is not None:
        raise click.UsageError("--manifest-sha256 goes with --bundle")
    if not re.fullmatch(ID_PATTERN, incident_id):
        raise click.BadParameter(f"{incident_id!r} is not an incident id", param_hint="INCIDENT_ID")
    settings = _settings(ctx)

    async def run() -> Evidence:
        client = await _connect(settings) if temporal else None
        if not ledger:
            return await gather(incident_id, client=client)
        with _ledger(settings) as opened:
            return await gather(incident_id, client=client, ledger=opened)

    return _run(run())


async def _connect(settings: Settings) -> Client:
    try:
        return await connect(settings)
    except Exception as err:  # the bridge raises RuntimeError, TLS setup OSError
        raise AuditError(f"cannot reach Temporal at {settings.temporal_address}: {err}") from None


@contextmanager
def _ledger(settings: Settings) -> Iterator[Ledger]:
    try:
        opened = open_ledger(settings.ledger_url)
    except Exception as err:  # sqlite3, psycopg and url errors alike
        raise AuditError(f"cannot open the ledger: {err}") from None
    with opened:
        yield opened


def _run(work: Awaitable[T]) -> T:
    async def guarded() -> T:
        try:
            return await work
        except RPCError as err:
            raise AuditError(f"Temporal refused a request: {err}") from None
        except CodecError as err:  # a key this process lacks: the message names it
            raise AuditError(f"cannot decrypt a history: {err}") from None

    return asyncio.run(guarded())


# ---- output ---------------------------------------------------------------------------------


def _emit(
    ctx: click.Context,
    report: BaseModel,
    ok: bool,
    as_json: bool,
    text: Callable[[Any], list[str]],
) -> None:
    """Print the report (JSON, or text and its findings) and exit 0 if ok, else 1."""
    if as_json:
        click.echo(report.model_dump_json(indent=1))
    else:
        for line in text(report):
            click.echo(line)
        findings: list[Finding] = getattr(report, "findings", [])
        for finding in findings:
            click.echo(f"  FINDING {finding}")
        click.echo("OK: no findings" if ok else f"NOT OK: {len(findings)} finding(s)")
    ctx.exit(0 if ok else 1)


def _list_text(report: ListReport) -> list[str]:
    lines = [
        f"{'INCIDENT':24} {'PHASE':14} {'REPORTER':12} {'REPORTED':20} {'CLOSED':20} "
        f"{'WORKFLOW':10} ROWS"
    ]
    for i in report.incidents:
        lines.append(
            f"{i.incident_id:24} {i.phase or '?':14} {i.reporter or '?':12} "
            f"{_time(i.reported_at):20} {_time(i.closed_at):20} "
            f"{(i.workflow_status or 'gone').lower():10} {i.ledger_rows}"
            + (" exercise" if i.exercise else "")
        )
    return lines


def _replay_text(report: ReplayReport) -> list[str]:
    lines = [f"{report.incident_id}: {len(report.runs)} run(s) replayed ({report.source})"]
    for run in report.runs:
        head = f"{run.workflow_id} run {run.run_id} ({run.workflow_type}, {run.events} events)"
        if run.divergence is None:
            lines.append(f"  ok       {head}")
        else:
            d = run.divergence
            at = f" at event {d.event_id} ({d.event_type})" if d.event_id is not None else ""
            lines.append(f"  DIVERGED {head}{at}: {d.message}")
    return lines


def _timeline_text(report: TimelineReport) -> list[str]:
    lines = [
        f"{report.incident_id}: {len(report.entries)} decision(s), "
        f"{report.anchors_checked} ledger head(s) confirmed ({report.source})",
        f"  {'SEQ':>5} {'AT':24} {'KIND':24} {'ACTOR':12} {'DECISION':36} STATUS",
    ]
    for e in report.entries:
        seq = str(e.seq) if e.seq is not None else "-"
        status = "ok" if e.status is EntryStatus.ok else f"{e.status.upper()}: {e.note}"
        lines.append(
            f"  {seq:>5} {_time(e.at, precise=True):24} {e.kind:24} {e.actor:12} "
            f"{e.decision_id:36} {status}"
        )
    if report.state is not None:
        lines += _state_text(report.state)
    return lines


def _state_text(state: IncidentState) -> list[str]:
    lines = [
        f"state at {_time(state.at)} after {state.decisions} decision(s): "
        + ("EXERCISE, " if state.exercise else "")
        + f"phase {state.phase or 'not reported yet'}, {state.items} item(s)"
        + (", activation decision overdue" if state.assessment_overdue else "")
    ]
    if state.activation_expires is not None:
        lines.append(f"  the activation lapses at {_time(state.activation_expires)} unless renewed")
    for platform, counts in state.tasks.items():
        shown = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no tasks"
        suspended = " (suspended)" if platform in state.suspended else ""
        lines.append(f"  {platform}{suspended}: {shown}")
    for b in state.open_breaches:
        lines.append(
            f"  open, {MISSED[b.deadline]}: {b.task_id} {b.clock} (due {b.due})"
            + (", backup told" if b.backup_told else "")
            + (", escalated" if b.escalated else "")
        )
    for o in state.orders:
        done = sum(s is TaskState.reinstated for s in o.reinstatements.values())
        lines.append(
            f"  order {o.reference} ({o.issuing_member_state}, {o.issuer}) to {o.platform} "
            f"({o.host_member_state}): scrutiny {o.stage}, {o.clarifications} clarification(s)"
            + (f", {done}/{len(o.reinstatements)} reinstated" if o.reinstatements else "")
        )
    for link in state.linked:
        lines.append(
            f"  linked: {link.name or link.protocol} {link.reference}, "
            f"activated {_time(link.activated_at)}"
        )
    if state.clocks is not None:
        clocks = state.clocks
        lines.append(
            f"  clocks in force: acknowledge within {spoken(clocks.acknowledge_within)}, "
            f"act within {spoken(clocks.act_within)}, activation for "
            f"{spoken(clocks.activation_for)}"
        )
    return lines


def _verify_text(report: VerifyReport) -> list[str]:
    chain = report.chain
    if chain.ok:
        return [
            f"{report.incident_id}: {chain.rows_checked} row(s), chain verified, "
            f"head {chain.head_hash} ({report.source})"
        ]
    return [f"{report.incident_id}: chain BROKEN after {chain.rows_checked - 1} good row(s)"]


def _export_text(report: ExportReport) -> list[str]:
    return [
        f"wrote {report.path}: {report.histories} history run(s), {report.rows} ledger row(s)",
        f"manifest SHA-256 {report.manifest_sha256} (keep it apart from the bundle)",
    ]


def _time(moment: datetime | None, precise: bool = False) -> str:
    """UTC, to the second (or the millisecond)."""
    if moment is None:
        return "-"
    text = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return (text[:-3] if precise else text[:-7]) + "Z"


@audit.command()
@click.argument("incident_id")
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="folder for report.md, report.json and report.html (default: EUCP_REPORTS_DIR/INCIDENT)",
)
@_JSON
@click.pass_context
def report(ctx: click.Context, incident_id: str, output: Path | None, as_json: bool) -> None:
    """Write the post-incident review report from the ledger: Markdown, JSON, HTML."""
    settings = _settings(ctx)
    request = WriteReport(incident_id=incident_id, output_dir=str(output) if output else None)
    with _ledger(settings) as opened:
        try:
            files = ReportActivities(opened, settings.reports_dir).write_report(request)
        except ApplicationError as err:
            raise AuditError(str(err)) from None
    _emit(ctx, files, files.chain_ok, as_json, _report_text)


def _report_text(files: ReportFiles) -> list[str]:
    chain = "verified" if files.chain_ok else "BROKEN (see eucp audit verify)"
    return [
        f"{files.rows} decisions, chain {chain}; report written:",
        *(f"  {path}" for path in (files.markdown_path, files.json_path, files.html_path)),
    ]

"""The API's answers as text for people (`--json` prints them as they are): aligned tables and
`name  value` lines, times in UTC, item numbers as ranges.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from eucp.api.wire import PlatformView, Reported
from eucp.protocol.decisions import LedgerRow
from eucp.protocol.identifiers import AnyIdentifier, UrlIdentifier
from eucp.protocol.orders import OrderRecord, in_words
from eucp.protocol.state import (
    Answer,
    IncidentStatus,
    Listing,
    PlatformSummary,
    ReportAnswer,
    TaskPage,
)
from eucp.protocol.tasks import LegalBasis, TaskState, VoluntaryReferral, ranges


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Plain aligned columns."""
    cells = [[str(header) for header in headers]] + [
        ["" if cell is None else str(cell) for cell in row] for row in rows
    ]
    widths = [max(len(row[column]) for row in cells) for column in range(len(headers))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    )


def pairs(items: Iterable[tuple[str, object]]) -> str:
    """`name  value` lines, the values aligned."""
    rows = list(items)
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)


def utc(at: datetime) -> str:
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M:%SZ}"


def show_answer(answer: Answer) -> str:
    return pairs(
        [
            ("phase", answer.phase),
            ("decisions", ", ".join(answer.decisions) or "none"),
            ("accepted items", ranges(answer.accepted_items)),
            ("duplicates", answer.duplicates),
            ("low quality", answer.low_quality),
        ]
    )


def show_reported(reported: Reported) -> str:
    return f"reported {reported.incident_id}"


def show_listings(listings: list[Listing]) -> str:
    rows = [(listing.incident_id, listing.status, listing.started_at) for listing in listings]
    return table(["INCIDENT", "WORKFLOW", "STARTED"], rows) if rows else "no incidents"


def platform_table(summaries: Sequence[PlatformSummary], final: Iterable[str] = ()) -> str:
    done = set(final)
    states = [
        state for state in TaskState if any(state in summary.by_state for summary in summaries)
    ]
    headers = ["PLATFORM", "TASKS", *[state.value.upper() for state in states]]
    headers += ["PAST DEADLINE NOW", "LEGAL DEADLINES MISSED", "TARGETS MISSED", "ESCALATIONS"]
    rows = [
        [
            summary.platform_id + (" (final)" if summary.platform_id in done else ""),
            summary.tasks,
            *[summary.by_state.get(state, 0) for state in states],
            _past_deadline(summary),
            summary.legal_deadlines_missed,
            summary.targets_missed,
            summary.escalations,
        ]
        for summary in summaries
    ]
    return table(headers, rows)


def _past_deadline(summary: PlatformSummary) -> str:
    """Tasks past a deadline now, naming those past a legal one: `3 (1 legal)`."""
    legal = len(summary.open_legal_deadlines)
    return f"{len(summary.open_breaches)}" + (f" ({legal} legal)" if legal else "")


def show_status(status: IncidentStatus | PlatformView) -> str:
    if not isinstance(status, IncidentStatus):
        head = pairs(
            [("incident", status.incident_id), ("title", status.title), ("phase", status.phase)]
        )
        return f"{head}\n\n{platform_table([status.tasks])}"
    crisis = status.crisis
    since = crisis.phases[-1] if crisis.phases else None
    phase = f"{crisis.phase} since {utc(since.at)} by {since.by}" if since else crisis.phase
    overdue = " (activation decision overdue)" if crisis.assessment_overdue else ""
    head = pairs(
        [
            ("incident", crisis.incident_id),
            ("title", crisis.title),
            ("phase", phase + overdue),
            ("items", crisis.items),
            ("decisions", crisis.decisions),
            ("false positives", ranges(crisis.false_positives)),
            ("review inputs", crisis.review_inputs),
        ]
    )
    platforms = [status.platforms[name] for name in crisis.platforms if name in status.platforms]
    return f"{head}\n\n{platform_table(platforms, crisis.finals)}" if platforms else head


def _identifier(identifier: AnyIdentifier) -> str:
    return identifier.value if isinstance(identifier, UrlIdentifier) else identifier.key


def _basis(basis: LegalBasis) -> str:
    """A voluntary referral, or the removal order by its reference and issuing State, with
    its Art. 11(3) confidentiality (the user must not be told yet)."""
    if isinstance(basis, VoluntaryReferral):
        return "voluntary"
    secret = ", confidential" if basis.confidential else ""
    return f"order {basis.reference} ({basis.issuing_member_state}){secret}"


def scrutiny_in_words(order: OrderRecord) -> str:
    return in_words(order, utc)


def show_orders(orders: list[OrderRecord]) -> str:
    rows = [
        (
            order.reference,
            f"{order.issuing_member_state} ({order.issuer})",
            f"{order.platform} ({order.host_member_state})",
            ranges(order.items),
            utc(order.received_at),
            scrutiny_in_words(order),
            "yes" if order.confidential else "no",
        )
        for order in orders
    ]
    headers = ["ORDER", "ISSUED BY", "ADDRESSEE", "ITEMS", "RECEIVED", "SCRUTINY", "CONFIDENTIAL"]
    return f"{table(headers, rows)}\n{len(orders)} removal order(s)"


def show_tasks(page: TaskPage) -> str:
    rows = [
        (
            task.task_id,
            task.item_no,
            task.state,
            _basis(task.basis),
            utc(task.assigned_at),
            _identifier(task.identifier),
        )
        for task in page.tasks
    ]
    text = table(["TASK", "ITEM", "STATE", "BASIS", "ASSIGNED", "IDENTIFIER"], rows)
    more = f"; next page: --offset {page.next_offset}" if page.next_offset is not None else ""
    return f"{text}\n{len(page.tasks)} of {page.total} tasks{more}"


def show_report_answer(answer: ReportAnswer) -> str:
    head = (
        f"changed {len(answer.changed)}, unchanged {len(answer.unchanged)}, "
        f"refused {len(answer.refused)}"
    )
    return "\n".join([head, *(f"  {task}: {rule}" for task, rule in answer.refused.items())])


def show_rows(rows: list[LedgerRow]) -> str:
    return table(
        ["SEQ", "AT", "KIND", "ACTOR", "REASON"],
        [
            (
                row.seq,
                utc(row.decision.at),
                row.decision.kind,
                row.decision.actor.id,
                row.decision.reason,
            )
            for row in rows
        ],
    )

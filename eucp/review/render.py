"""The review report as Markdown, JSON and one self-contained HTML page with inline SVG charts.

The page needs nothing from the network: styles are inline and the charts are SVG drawn with
matplotlib, embedded in the HTML. matplotlib is imported only inside the chart functions (it is
slow to import, and the workflow sandbox must never load it).
"""

from __future__ import annotations

import html
import io
import json
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from eucp.protocol.deadlines import Deadline
from eucp.review.figures import (
    CLOCKS,
    DEFINITIONS,
    ActivePeriod,
    OrderFigures,
    PlatformFigures,
    ReviewFigures,
    TargetScore,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

ONE_MICROSECOND = timedelta(microseconds=1)
_PLOT_LOCK = threading.Lock()  # matplotlib's rc settings are global; draw one chart at a time


# ---- values as text ------------------------------------------------------------------------


def duration(value: timedelta | None) -> str:
    """`[Dd ]H:MM:SS` with the exact fraction of a second (trailing zeros dropped); `-` for none."""
    if value is None:
        return "-"
    micros = value // ONE_MICROSECOND
    sign = "-" if micros < 0 else ""
    seconds, fraction = divmod(abs(micros), 1_000_000)
    minutes, secs = divmod(seconds, 60)
    hours, mins = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    text = f"{sign}{f'{days}d ' if days else ''}{hours}:{mins:02d}:{secs:02d}"
    return f"{text}.{fraction:06d}".rstrip("0") if fraction else text


def moment(value: datetime | None) -> str:
    """An exact UTC time, or `-`."""
    return "-" if value is None else value.astimezone(UTC).isoformat(sep=" ")


def share(platform: PlatformFigures) -> str:
    """`n/d (p%)` of the tasks acted within one hour, or `-` when no task had its full hour."""
    fraction = platform.share_within_hour
    if fraction is None:
        return "-"
    return f"{platform.acted_within_hour}/{platform.tasks_with_full_hour} ({percent(fraction)})"


def percent(fraction: Fraction) -> str:
    """`33.3%`: one decimal, a whole number without it."""
    return f"{float(fraction) * 100:.1f}".removesuffix(".0") + "%"


def within_target(score: TargetScore) -> str:
    """`n/d (p%)` of the counted tasks within target, or `-` when none is counted."""
    fraction = score.share
    if fraction is None:
        return "-"
    return f"{score.within}/{score.counted} ({percent(fraction)})"


def verdict(met: bool | None) -> str:
    return {True: "meets its targets", False: "falls short", None: "not scored"}[met]


def _by_clock(counts: dict[str, int]) -> str:
    total = sum(counts.values())
    if not total:
        return "0"
    return f"{total} (" + ", ".join(f"{clock} {n}" for clock, n in counts.items()) + ")"


# ---- the document, once, for both Markdown and HTML ----------------------------------------


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Para:
    text: str


@dataclass(frozen=True)
class Table:
    headers: Sequence[str]
    rows: Sequence[Sequence[str]]


@dataclass(frozen=True)
class Quote:
    by: str
    text: str


@dataclass(frozen=True)
class Terms:
    items: Sequence[tuple[str, str]]


@dataclass(frozen=True)
class Chart:
    name: str
    caption: str


@dataclass(frozen=True)
class Banner:
    """What must not be missed: set apart at the top of the report."""

    title: str
    text: str


Block = Heading | Para | Table | Quote | Terms | Chart | Banner

EXERCISE = (
    "This incident was an exercise: a rehearsal of the protocol, not a crisis. Every figure"
    " below is an exercise's, and none of them is to be read or counted as a real incident's."
)


def heading(f: ReviewFigures) -> str:
    """The report's title: an exercise's says so first."""
    return ("Exercise \N{EM DASH} p" if f.exercise else "P") + f"ost-incident review: {f.title}"


def document(f: ReviewFigures) -> list[Block]:
    """The report's content, in order; `Chart` blocks are drawn only in HTML."""
    a, ids = f.activation, f.identifiers
    chain = "verified" if f.ledger.chain_ok else f"BROKEN: {f.ledger.problem}"
    blocks: list[Block] = [
        Heading(1, heading(f)),
        *([Banner("EXERCISE", EXERCISE)] if f.exercise else []),
        Para(
            f"Incident {f.incident_id}, reported by {f.reporter}"
            + (f" ({f.event_place})" if f.event_place else "")
            + f"; phase {f.phase}. Computed from ledger rows {f.ledger.first_seq} to"
            f" {f.ledger.last_seq} ({f.ledger.rows} decisions), head hash {f.ledger.head_hash};"
            f" hash chain {chain}. Figures as of {moment(f.as_of)}, the last recorded decision."
            " Durations are [days d] H:MM:SS; definitions are at the end."
        ),
        Heading(2, "Key figures"),
        Table(
            ["figure", "value"],
            [
                ["event start to report", duration(a.event_to_report)],
                ["report to activation", duration(a.report_to_activation)],
                [
                    f"report to decision ({a.decision or 'none yet'})",
                    duration(a.report_to_decision),
                ],
                ["activation length (to first de-escalation)", duration(a.activation_length)],
                ["time active (all active periods)", duration(a.time_active)],
                ["de-escalations / re-escalations", f"{a.de_escalations} / {a.re_escalations}"],
                ["renewals / lapses", f"{a.renewals} / {a.lapses}"],
                [
                    "platforms brought in / suspended mid-crisis",
                    f"{sum(c.change == 'joined' for c in f.participation)}"
                    f" / {sum(c.change == 'suspended' for c in f.participation)}",
                ],
                ["items added", str(ids.items)],
                ["duplicates dropped", str(ids.duplicates)],
                ["low-quality hashes dropped", str(ids.low_quality)],
                [
                    "sightings reported (new items)",
                    f"{len(ids.sightings)} ({sum(len(s.new_items) for s in ids.sightings)})",
                ],
                ["tasks", str(len(f.tasks))],
                [
                    "legal deadlines missed (removal orders' hour, TCO Art. 3(3))",
                    str(sum(p.legal_deadlines_missed for p in f.platforms)),
                ],
                [
                    "targets missed (acknowledge, voluntary act-within)",
                    str(sum(p.targets_missed for p in f.platforms)),
                ],
                ["SLA backup contacts told", str(sum(p.backup_told for p in f.platforms))],
                ["SLA escalations", str(sum(p.escalations for p in f.platforms))],
                [
                    "removal orders (cross-border, found to infringe)",
                    f"{len(f.orders)} ({sum(o.cross_border for o in f.orders)},"
                    f" {sum(o.stage == 'infringes' for o in f.orders)})",
                ],
                ["review inputs", str(len(f.review_inputs))],
            ],
        ),
        Heading(2, "Activation"),
        Table(
            ["moment", "time"],
            [
                ["event started (as reported)", moment(a.event_started_at)],
                ["reported", moment(a.reported_at)],
                ["first assessment", moment(a.first_assessed_at)],
                [f"decision ({a.decision or 'none yet'})", moment(a.decided_at)],
                ["review started", moment(a.review_started_at)],
                ["closed", moment(a.closed_at)],
            ],
        ),
        Table(
            ["active period", "started by", "start", "renewals", "end", "ended", "length"],
            [
                [
                    str(n),
                    str(p.started_by),
                    moment(p.start),
                    str(len(p.renewals)),
                    moment(p.end) if p.end else "still active",
                    _ending(p),
                    duration(p.length),
                ]
                for n, p in enumerate(a.periods, 1)
            ],
        ),
        *_life_blocks(f),
        *_participation_blocks(f),
        *_clock_blocks(f),
        Heading(2, "Identifiers handled"),
        Table(
            ["identifiers", "count"],
            [
                *([f"items added by {kind}", str(n)] for kind, n in ids.by_decision.items()),
                ["items added", str(ids.items)],
                ["duplicates dropped", str(ids.duplicates)],
                ["low-quality hashes dropped", str(ids.low_quality)],
                ["item numbers withdrawn", ", ".join(map(str, ids.withdrawn_items)) or "none"],
                ["false positives reported", str(len(ids.false_positives))],
            ],
        ),
        Para(
            "Dropped identifiers are counted from the decisions that record them: "
            + (", ".join(map(str, ids.drops_recorded_by)) or "none in this incident")
            + "."
            + (
                f" Not recorded (so not counted) by: {', '.join(unrecorded)}."
                if (unrecorded := [k for k in ids.by_decision if k not in ids.drops_recorded_by])
                else ""
            )
        ),
    ]
    if ids.sightings:
        blocks += [
            Heading(3, "Sightings"),
            Table(
                ["seq", "at", "by", "new items", "duplicates", "low quality"],
                [
                    [
                        str(s.seq),
                        moment(s.at),
                        s.by,
                        ", ".join(map(str, s.new_items)) or "none",
                        str(s.duplicates),
                        str(s.low_quality),
                    ]
                    for s in ids.sightings
                ],
            ),
        ]
    if ids.false_positives:
        blocks += [
            Heading(3, "False positives"),
            Table(
                ["at", "by", "item", "reason"],
                [[moment(x.at), x.by, str(x.item), x.reason or ""] for x in ids.false_positives],
            ),
        ]
    blocks += _platform_blocks(f)
    blocks += _after_action_blocks(f)
    blocks += _order_blocks(f.orders)
    blocks += [Heading(2, "Review input")]
    blocks += [
        Quote(f"{r.actor_id} ({r.actor_kind}), {moment(r.at)}, row {r.seq}", r.text)
        for r in f.review_inputs
    ] or [Para("No review input recorded.")]
    blocks += [
        Heading(2, "Timeline"),
        Para(
            "Incident-level decisions, and each linked protocol's own activation at its time;"
            " task-level decisions are summed up per platform above."
        ),
        Table(
            ["seq", "at", "since report", "decision", "by", "reason", "what"],
            [
                [
                    str(t.seq),
                    moment(t.at),
                    duration(t.since_report),
                    t.event or str(t.kind),
                    f"{t.actor_id} ({t.actor_kind})",
                    t.reason or "",
                    t.summary,
                ]
                for t in f.timeline
            ],
        ),
        Heading(2, "Definitions"),
        Terms(list(DEFINITIONS.items())),
    ]
    return blocks


def _ending(p: ActivePeriod) -> str:
    """How an active period ended: lapsed unrenewed, or de-escalated by whom."""
    if p.end is None:
        return "-"
    if p.lapsed:
        return "lapsed unrenewed"
    return f"de-escalated by {p.ended_by}" if p.ended_by else "de-escalated"


def _life_blocks(f: ReviewFigures) -> list[Block]:
    """The activation's life: each period from its start to its lapse or de-escalation, with
    the override it rested on, its renewals and the reminders before it lapsed."""
    a = f.activation
    if not a.periods:
        return []
    events: list[list[str]] = []
    for p in a.periods:
        started = "activated" if p.started_by == "activated" else "re-escalated"
        detail = p.reason or ""
        if p.override:
            detail += f"; override (not all five criteria met): {p.override}"
        if p.expires:
            detail += f"; lapses at {moment(p.expires)} unless renewed"
        events.append([moment(p.start), started, p.by or "-", detail.removeprefix("; ")])
        between = [
            (r.at, ["renewed", r.by, _lapsing(r.reason, r.expires, " again")]) for r in p.renewals
        ]
        between += [
            (m.at, ["renewal reminder", "eucp", _lapsing(None, m.expires, "")]) for m in p.reminders
        ]
        events += [[moment(at), *row] for at, row in sorted(between, key=lambda x: x[0])]
        if p.end is None:
            continue
        lasted = f"{duration(p.length)} after it began"
        if p.lapsed:
            expired = f"expired at {moment(p.lapses_at)}, " if p.lapses_at else ""
            ended = [moment(p.end), "lapsed unrenewed", p.ended_by or "eucp", expired + lasted]
        else:
            said = f"{p.end_reason}; {lasted}" if p.end_reason else lasted
            ended = [moment(p.end), "de-escalated", p.ended_by or "-", said]
        events.append(ended)
    still = a.periods[-1].end is None
    return [
        Heading(3, "The activation's life"),
        Table(["at", "event", "by", "reasons, or what it set"], events),
        Para(
            f"Time active in all: {duration(a.time_active)}"
            + (" (an active period is still open)." if still else ".")
            + (f" Activated on an override of the criteria: {a.override}." if a.override else "")
        ),
    ]


def _lapsing(reason: str | None, expires: datetime | None, again: str) -> str:
    """`reason; lapses at TIME unless renewed[ again]`, leaving out what is not recorded."""
    later = f"lapses at {moment(expires)} unless renewed{again}" if expires else ""
    return "; ".join(t for t in (reason, later) if t)


def _participation_blocks(f: ReviewFigures) -> list[Block]:
    named = ", ".join(f.named_at_activation) or "none"
    changes = {
        "joined": "brought in mid-crisis",
        "back": "back from its suspension",
        "suspended": "suspended",
    }
    return [
        Heading(2, "Participation"),
        Para(f"Platforms named at the activation: {named}."),
        Table(
            ["at", "since report", "platform", "change", "by", "reason"],
            [
                [
                    moment(c.at),
                    duration(c.at - f.activation.reported_at),
                    c.platform_id,
                    changes.get(c.change, c.change),
                    c.by,
                    c.reason or "",
                ]
                for c in f.participation
            ],
        )
        if f.participation
        else Para("No platform was brought in or suspended after the activation."),
    ]


def _clock_blocks(f: ReviewFigures) -> list[Block]:
    """The clocks in force: at the report, and after each change (a changed clock marked)."""
    if not f.clocks:
        return [
            Heading(2, "Clocks in force"),
            Para(
                "Not recorded: the incident was reported before its clocks were recorded in the"
                " ledger."
            ),
        ]
    first = f.clocks[0]
    headers = [
        "clock",
        *(
            "at the report" if c is first and c.kind == "reported" else f"from {moment(c.at)}"
            for c in f.clocks
        ),
    ]
    names = [*CLOCKS, *sorted({n for c in f.clocks for n in c.clocks} - set(CLOCKS))]
    rows = [
        [
            name,
            *(
                duration(c.clocks.get(name)) + (" (changed)" if name in c.changed else "")
                for c in f.clocks
            ),
        ]
        for name in names
    ]
    changes = [c for c in f.clocks if c.kind == "clocks_set"]
    return [
        Heading(2, "Clocks in force"),
        Para(
            "The protocol's durations, as recorded at the report and set at each change; each"
            " holds from then on, for the crisis and for every open task's deadlines."
        ),
        Table(headers, rows),
        Table(
            ["at", "by", "changed", "reason"],
            [[moment(c.at), c.by, ", ".join(c.changed), c.reason or ""] for c in changes],
        )
        if changes
        else Para("The clocks did not change during the incident."),
    ]


def _after_action_blocks(f: ReviewFigures) -> list[Block]:
    """Each platform's response against the targets of the clocks in force: an exercise's
    after-action review; for a real incident the same figures, as a real incident's."""
    if f.exercise:
        head = "After-action: each platform against its targets (exercise)"
        intro = (
            "The exercise's after-action review: how fast each platform acknowledged and acted"
            " on its tasks, against the protocol's targets in force. These scores rate a"
            " rehearsal, not a response to a real crisis."
        )
    else:
        head = "Response times against the targets"
        intro = (
            "How fast each platform acknowledged and acted on its tasks, against the"
            " protocol's targets in force."
        )
    if not f.clocks:
        intro += " Not scored: the clocks in force were not recorded for this incident."
    elif len(f.clocks) > 1:
        intro += (
            " The clocks changed during the incident: each task is judged by the target in"
            " force when it was answered; the target shown is the last one."
        )
    return [
        Heading(2, head),
        Para(intro),
        Table(
            [
                *("platform", "acknowledge target", "acknowledged within", "ack median"),
                *("act target", "acted within", "act median", "verdict"),
            ],
            [
                [
                    s.platform_id,
                    duration(s.acknowledge.target),
                    within_target(s.acknowledge),
                    _median(s.acknowledge),
                    duration(s.act.target),
                    within_target(s.act),
                    _median(s.act),
                    verdict(s.meets_targets),
                ]
                for s in f.after_action
            ],
        )
        if f.after_action
        else Para("No platform took part."),
    ]


def _median(score: TargetScore) -> str:
    if not score.counted:
        return "-"
    return duration(score.median) if score.median is not None else "not answered"


def _platform_blocks(f: ReviewFigures) -> list[Block]:
    ps = f.platforms
    notes = [(p.platform_id, n) for p in ps for n in (*p.declines, *p.cannot_comply)]
    climbed = [(p.platform_id, e) for p in ps for e in p.sla_events if e.rung != "breached"]
    legal = [
        (p.platform_id, e)
        for p in ps
        for e in p.sla_events
        if e.rung == "breached" and e.deadline is Deadline.legal
    ]
    return [
        Heading(2, "Platforms"),
        Table(
            [
                *("platform", "tasks", "answered", "ack median", "ack p90", "ack max"),
                *("acted", "act median", "act p90", "act max", "acted within 1 h"),
            ],
            [
                [
                    p.platform_id,
                    str(p.tasks),
                    str(p.acknowledge.count),
                    duration(p.acknowledge.median),
                    duration(p.acknowledge.p90),
                    duration(p.acknowledge.max),
                    str(p.act.count),
                    duration(p.act.median),
                    duration(p.act.p90),
                    duration(p.act.max),
                    share(p),
                ]
                for p in ps
            ],
        ),
        Table(
            [
                *("platform", "tasks by state", "legal deadlines missed", "targets missed"),
                *("backup told", "escalations"),
                *("declined", "cannot comply", "resumed", "withdrawn", "sightings (items)"),
            ],
            [
                [
                    p.platform_id,
                    ", ".join(f"{state} {n}" for state, n in p.by_state.items()),
                    str(p.legal_deadlines_missed),
                    _by_clock(p.targets_missed_by_clock),
                    _by_clock(p.backup_told_by_clock),
                    _by_clock(p.escalations_by_clock),
                    str(len(p.declines)),
                    str(len(p.cannot_comply)),
                    str(p.resumed),
                    str(p.withdrawn),
                    f"{p.sightings_reported} ({p.sighted_items})",
                ]
                for p in ps
            ],
        ),
        Chart("takedown", "Takedown curve: tasks resolved (solid) and assigned (dashed)."),
        Chart("acknowledge", "Time to acknowledge per task; bars: median (solid), p90 (dashed)."),
        Heading(3, "Declines and cannot-comply"),
        Table(
            ["platform", "task", "at", "outcome", "Annex III reason", "reason"],
            [
                [pid, n.task_id, moment(n.at), n.outcome, n.annex_iii or "", n.reason or ""]
                for pid, n in notes
            ],
        )
        if notes
        else Para("None."),
        Heading(3, "Legal deadlines missed"),
        Para(
            "Removal orders whose hour to act (TCO Art. 3(3)) ran out before the task was"
            " resolved. Every other missed deadline is a target of the protocol, not a legal"
            " breach."
        ),
        Table(
            ["platform", "task", "due", "recorded"],
            [[pid, e.task_id, moment(e.due), moment(e.at)] for pid, e in legal],
        )
        if legal
        else Para("None: no removal order's hour was missed."),
        Heading(3, "Missed deadlines beyond the reminder"),
        Table(
            ["platform", "task", "clock", "deadline", "due", "rung", "at"],
            [
                [pid, e.task_id, e.clock, e.deadline.value, moment(e.due), e.rung, moment(e.at)]
                for pid, e in climbed
            ],
        )
        if climbed
        else Para("None: every missed deadline was met after the platform's reminder."),
    ]


def _issued_by(o: OrderFigures) -> str:
    """`FR, OCLCTIC (fr-police)`: the issuing Member State, authority and participant."""
    who = ", ".join(x for x in (o.issuing_member_state, o.issuing_authority) if x) or "-"
    return f"{who} ({o.issuer})" if o.issuer else who


def _order_events(o: OrderFigures) -> list[tuple[datetime, str, str, str]]:
    """What became of an order after its issue, in time order: (at, event, by, detail)."""
    events: list[tuple[datetime, str, str, str]] = []
    if o.cross_border:
        copy = ", ".join(o.copy_to) or "no authority of the host State takes part"
        until = f"; may scrutinise until {moment(o.scrutiny_until)}" if o.scrutiny_until else ""
        events.append((o.received_at, "copy to the host State", "eucp", copy + until))
    for c in o.clarifications:
        events.append((c.at, "clarified", c.by, c.text or ""))
    if (r := o.request) is not None:
        due = f" (decision due {moment(r.decide_by)})" if r.decide_by else ""
        events.append((r.at, "scrutiny requested", r.by, (r.reason or "") + due))
    if o.window_closed_at is not None:
        events.append((o.window_closed_at, "scrutiny window closed", "eucp", ""))
    if o.overdue_at is not None:
        events.append((o.overdue_at, "scrutiny overdue", "eucp", ""))
    for d in o.decisions:
        asked = " on request" if d.requested else ""
        events.append((d.at, f"scrutinised{asked}: {d.outcome}", d.by, d.reasons or ""))
    return sorted(events, key=lambda e: e[0])


def _order_blocks(orders: Sequence[OrderFigures]) -> list[Block]:
    if not orders:
        return [Heading(2, "Removal orders"), Para("No removal order was issued.")]
    events = [(o.reference, e) for o in orders for e in _order_events(o)]
    reinstating = [(o.reference, r) for o in orders for r in o.reinstatements]
    return [
        Heading(2, "Removal orders"),
        Para(
            "Orders of Member State authorities (TCO Regulation (EU) 2021/784), each received"
            " when its issue was recorded. Time to removal runs from receipt to the removal,"
            " the task's pauses for cannot-comply subtracted."
        ),
        Table(
            [
                *("order", "issued by", "addressee", "host State", "items", "received"),
                *("removed", "removal median", "removal max", "scrutiny", "clarifications"),
                "reinstated",
            ],
            [
                [
                    o.reference + (" (confidential)" if o.confidential else ""),
                    _issued_by(o),
                    o.platform or "-",
                    (o.host_member_state or "-") + (" (cross-border)" if o.cross_border else ""),
                    ", ".join(map(str, o.items)),
                    moment(o.received_at),
                    f"{o.removal.count}/{len(o.tasks)}",
                    duration(o.removal.median),
                    duration(o.removal.max),
                    str(o.stage),
                    str(len(o.clarifications)),
                    f"{o.reinstated}/{len(o.reinstatements)}" if o.reinstatements else "-",
                ]
                for o in orders
            ],
        ),
        Heading(3, "Time to removal per task"),
        Table(
            ["order", "task", "state", "removed", "pauses", "paused", "to removal"],
            [
                [
                    o.reference,
                    t.task_id,
                    t.state,
                    moment(t.removed_at),
                    str(t.pauses),
                    duration(t.paused),
                    duration(t.time_to_removal),
                ]
                for o in orders
                for t in o.tasks
            ],
        ),
        Heading(3, "Scrutiny and clarifications"),
        Table(
            ["order", "at", "event", "by", "reasons, or what it says"],
            [[ref, moment(at), what, by, detail] for ref, (at, what, by, detail) in events],
        )
        if events
        else Para("None: no order was cross-border or clarified."),
        Heading(3, "Reinstatements"),
        Table(
            ["order", "task", "reinstates", "state", "assigned", "reinstated", "time"],
            [
                [
                    ref,
                    r.task_id,
                    r.reinstates,
                    r.state,
                    moment(r.assigned_at),
                    moment(r.reinstated_at),
                    duration(r.time_to_reinstate),
                ]
                for ref, r in reinstating
            ],
        )
        if reinstating
        else Para("None: no removed content had to be put back."),
    ]


# ---- Markdown ------------------------------------------------------------------------------


def _md_cell(text: str) -> str:
    return " ".join(text.split()).replace("\\", "\\\\").replace("|", "\\|") or " "


def to_markdown(f: ReviewFigures) -> str:
    """The report as Markdown (charts are in the HTML page)."""
    out: list[str] = []
    for block in document(f):
        match block:
            case Heading(level, text):
                out.append(f"{'#' * level} {text}")
            case Para(text):
                out.append(text)
            case Table(headers, rows):
                if not rows:
                    continue
                lines = ["| " + " | ".join(map(_md_cell, headers)) + " |"]
                lines.append("|" + "---|" * len(headers))
                lines += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in rows]
                out.append("\n".join(lines))
            case Quote(by, text):
                quoted = "\n".join(f"> {line}".rstrip() for line in text.splitlines())
                out.append(f"**{by}**\n\n{quoted}")
            case Terms(items):
                out.append("\n".join(f"- **{term}**: {text}" for term, text in items))
            case Chart(_, caption):
                out.append(f"*Chart in report.html: {caption}*")
            case Banner(title, text):
                out.append(f"> **{title}**: {text}")
    return "\n\n".join(out) + "\n"


# ---- JSON ----------------------------------------------------------------------------------


def to_dict(f: ReviewFigures) -> dict[str, Any]:
    """Every figure as JSON-ready data: times ISO 8601 UTC, durations in seconds."""
    data = f.model_dump(mode="json")
    for p, out in zip(f.platforms, data["platforms"], strict=True):
        fraction = p.share_within_hour
        out["share_within_hour"] = None if fraction is None else float(fraction)
    for s, out in zip(f.after_action, data["after_action"], strict=True):
        out["meets_targets"] = s.meets_targets
        for name, score in (("acknowledge", s.acknowledge), ("act", s.act)):
            fraction = score.share
            out[name] |= {"share": None if fraction is None else float(fraction), "met": score.met}
    return {
        "report": "eucp post-incident review",
        "units": {"durations": "seconds", "times": "ISO 8601"},
        "definitions": DEFINITIONS,
        **data,
    }


def to_json(f: ReviewFigures) -> str:
    """The figures as indented JSON."""
    return json.dumps(to_dict(f), indent=2, ensure_ascii=False) + "\n"


# ---- HTML ----------------------------------------------------------------------------------

_CSS = """
body { font: 15px/1.45 system-ui, sans-serif; max-width: 72rem; margin: 2rem auto;
       padding: 0 1rem; color: #1d1d1f; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left;
         vertical-align: top; }
th { background: #f1f3f5; }
blockquote { border-left: 4px solid #9bb; margin: 0.4rem 0 1rem; padding: 0.2rem 0.8rem;
             white-space: pre-wrap; }
figure { margin: 1rem 0; }
figure svg { max-width: 100%; height: auto; }
figcaption { font-size: 0.85rem; color: #555; }
dt { font-weight: 600; margin-top: 0.5rem; }
.banner { border: 3px solid #b3261e; background: #fdecea; padding: 0.6rem 0.9rem;
          font-size: 1.1rem; }
"""


def to_html(f: ReviewFigures) -> str:
    """The report as one self-contained HTML page: inline CSS, inline SVG charts, no URLs."""
    e = html.escape
    charts = {"takedown": takedown_svg(f), "acknowledge": acknowledge_svg(f)}
    out: list[str] = []
    for block in document(f):
        match block:
            case Heading(level, text):
                out.append(f"<h{level}>{e(text)}</h{level}>")
            case Para(text):
                out.append(f"<p>{e(text)}</p>")
            case Table(headers, rows):
                if not rows:
                    continue
                head = "".join(f"<th>{e(h)}</th>" for h in headers)
                body = "".join(
                    "<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows
                )
                out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            case Quote(by, text):
                out.append(f"<p><strong>{e(by)}</strong></p><blockquote>{e(text)}</blockquote>")
            case Terms(items):
                terms = "".join(f"<dt>{e(t)}</dt><dd>{e(d)}</dd>" for t, d in items)
                out.append(f"<dl>{terms}</dl>")
            case Chart(name, caption):
                out.append(f"<figure>{charts[name]}<figcaption>{e(caption)}</figcaption></figure>")
            case Banner(title, text):
                out.append(f'<p class="banner"><strong>{e(title)}</strong>: {e(text)}</p>')
    title = e(f"{heading(f)} ({f.incident_id})")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{title}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(out)
        + "\n</body>\n</html>\n"
    )


# ---- charts --------------------------------------------------------------------------------


def _unit(span: timedelta) -> tuple[str, timedelta]:
    """Minutes for spans up to three hours, hours beyond."""
    return (
        ("minutes", timedelta(minutes=1))
        if span <= timedelta(hours=3)
        else ("hours", timedelta(hours=1))
    )


def _placeholder(text: str) -> str:
    e = html.escape(text)
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="480" height="40" role="img">'
        f'<text x="8" y="24" font-size="14">{e}</text></svg>'
    )


def takedown_svg(f: ReviewFigures) -> str:
    """Cumulative resolved (and assigned) tasks per platform since activation, as inline SVG."""
    start = f.activation.activated_at
    curves = [p for p in f.platforms if p.curve]
    if start is None or not curves:
        return _placeholder("No takedown: the incident was not activated or has no tasks.")
    label, unit = _unit(f.as_of - start)

    def x(at: datetime) -> float:
        return (at - start) / unit

    def draw(ax: Axes) -> None:
        for n, p in enumerate(curves):
            colour = f"C{n % 10}"
            xs = [x(c.at) for c in p.curve] + [x(f.as_of)]
            resolved = [c.resolved for c in p.curve] + [p.curve[-1].resolved]
            assigned = [c.assigned for c in p.curve] + [p.curve[-1].assigned]
            ax.step(xs, resolved, where="post", color=colour, label=p.platform_id)
            ax.step(xs, assigned, where="post", color=colour, linestyle="--", alpha=0.5)
        ax.set_xlabel(f"{label} since activation")
        ax.set_ylabel("tasks (cumulative)")
        ax.set_title("Takedown curve per platform (solid: resolved, dashed: assigned)")
        ax.set_ylim(bottom=0)
        ax.legend(loc="lower right")

    return _svg("takedown", draw)


def acknowledge_svg(f: ReviewFigures) -> str:
    """Time to acknowledge of every answered task, per platform (strip plot), as inline SVG."""
    platforms = [p for p in f.platforms if p.acknowledge_times]
    if not platforms:
        return _placeholder("No task was acknowledged.")
    label, unit = _unit(max(t for p in platforms for t in p.acknowledge_times))

    def draw(ax: Axes) -> None:
        for n, p in enumerate(platforms):
            colour = f"C{n % 10}"
            # deterministic spread (golden-ratio sequence), so the same ledger draws the same SVG
            xs = [n + ((i * 0.6180339887) % 1 - 0.5) * 0.5 for i in range(len(p.acknowledge_times))]
            ys = [t / unit for t in p.acknowledge_times]
            ax.scatter(xs, ys, s=14, color=colour, alpha=0.7, linewidths=0)
            if p.acknowledge.median is not None:
                ax.hlines(p.acknowledge.median / unit, n - 0.35, n + 0.35, colors="black")
            if p.acknowledge.p90 is not None:
                ax.hlines(p.acknowledge.p90 / unit, n - 0.35, n + 0.35, "black", "dashed")
        ax.set_xticks(range(len(platforms)), [p.platform_id for p in platforms])
        ax.set_xlim(-0.6, len(platforms) - 0.4)
        ax.set_ylim(bottom=0)
        ax.set_ylabel(f"{label} to acknowledge")
        ax.set_title("Time to acknowledge per platform")

    return _svg("acknowledge", draw)


def _svg(name: str, draw: Callable[[Axes], None]) -> str:
    """Draws on a fresh matplotlib Figure (no pyplot, no GUI) and returns the bare <svg>."""
    import matplotlib
    from matplotlib.figure import Figure

    with (
        _PLOT_LOCK,
        matplotlib.rc_context({"svg.hashsalt": f"eucp-{name}", "svg.fonttype": "none"}),
    ):
        fig = Figure(figsize=(8, 4), layout="constrained")
        draw(fig.add_subplot())
        buffer = io.StringIO()
        fig.savefig(
            buffer,
            format="svg",
            metadata={"Creator": None, "Date": None, "Format": None, "Type": None},
        )
    return _scope_ids(buffer.getvalue(), name)


def _scope_ids(svg: str, prefix: str) -> str:
    """Drops the XML prologue and prefixes every id, so two charts on a page never clash."""
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r'\bid="([^"]+)"', rf'id="{prefix}-\1"', svg)
    svg = re.sub(r'href="#([^"]+)"', rf'href="#{prefix}-\1"', svg)
    return re.sub(r"url\(#([^)]+)\)", rf"url(#{prefix}-\1)", svg)

"""The coordinator's actions as console forms: what each asks for, how a submitted form is read
(every pasted identifier checked on its own line), and how it is sent.

Every action of the table (`eucp.protocol.actions`) that a coordinator may take has a form; its
inputs follow from its command's fields. Which actions are offered now, and whether a reason is
required, is the table's answer; whether an action is accepted is decided by the workflow's
Update, whose answer the page shows. A submitted form is checked by the command itself before
anything is sent, so the console keeps no copy of the command's rules.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from eucp.api.wire import body_of
from eucp.console.views import CRITERIA
from eucp.protocol.actions import ACTIONS, Action, ActionRow, check
from eucp.protocol.clocks import parse_clock_change
from eucp.protocol.commands import MAX_BATCH
from eucp.protocol.identifiers import AnyIdentifier, lines_of, parse_identifier
from eucp.protocol.incident import (
    Assessment,
    Criterion,
    CriterionStatus,
    LinkedProtocol,
    LinkedProtocolKind,
)
from eucp.protocol.participants import Actor, ParticipantKind
from eucp.protocol.phases import Phase
from eucp.protocol.refusal import Refusal
from eucp.protocol.state import Answer, CrisisStatus
from eucp.service.incidents import Participation

TEXT_LABELS: dict[Action, str] = {
    Action.submit_review_input: "Your input for the review",
    Action.post_update: "Your update for the participants",
    Action.flag_threat: "What is known of the threat to life",
}
"""The label of a form's text, by action: the commands' `text` fields say nothing of it."""

LINK_FIELDS = frozenset(LinkedProtocol.model_fields)
"""A command with all these fields records another protocol's activation: protocol, reference,
activated at and name."""


@dataclass(frozen=True)
class ActionForm:
    """One action's form, read off its row of the table: its button, whether the reason is
    required, and which inputs its command asks for besides the reason (the command's fields
    of those names)."""

    action: Action
    label: str  # the button
    reason_required: bool
    source: str  # the grounds on which the reason is required
    assessment: bool  # the five criteria, each with its evidence
    identifiers: bool
    identifiers_required: bool
    items: bool
    text: bool
    text_label: str  # what the text is, for this action (TEXT_LABELS)
    withdraw_option: bool  # withdraw_open_tasks
    addressees: bool  # the platforms a referral is for
    override: bool  # why activate without all five criteria met
    clocks: bool  # the clocks to change, CLOCK=DURATION a line
    platform: bool  # the one platform the action is about (its id)
    member_states: bool  # the Member States concerned, by country code
    link: bool  # another protocol's activation (LINK_FIELDS)

    @classmethod
    def of(cls, row: ActionRow) -> ActionForm:
        # what a caller says, as in the API's body: neither the actor nor what the service
        # fills from the registry (a platform's entry)
        asked = body_of(row.command).model_fields
        return cls(
            action=row.action,
            label=row.title,
            reason_required=row.reason_required,
            source=row.source,
            assessment="assessment" in asked,
            identifiers="identifiers" in asked,
            identifiers_required="identifiers" in asked and asked["identifiers"].is_required(),
            items="items" in asked,
            text="text" in asked,
            text_label=TEXT_LABELS.get(row.action, "Text") if "text" in asked else "",
            withdraw_option="withdraw_open_tasks" in asked,
            addressees="addressees" in asked,
            override="override" in asked,
            clocks="changes" in asked,
            platform="platform" in asked,
            member_states="member_states" in asked,
            link=set(asked) >= LINK_FIELDS,
        )


FORMS: dict[Action, ActionForm] = {
    action: ActionForm.of(row)
    for action, row in ACTIONS.items()
    if ParticipantKind.coordinator in row.roles
}


def offered(allowed: list[Action]) -> list[ActionForm]:
    """The forms of the actions the phase machine allows now (a coordinator's)."""
    return [FORMS[a] for a in allowed if a in FORMS]


def platforms_offered(crisis: CrisisStatus) -> dict[Action, list[str]]:
    """What a form's platform field suggests (any id may be typed): a suspension, the platforms
    taking part and not suspended; bringing one in, those suspended, to bring back."""
    return {
        Action.suspend_platform: [p for p in crisis.platforms if p not in crisis.suspended],
        Action.join_platform: list(crisis.suspended),
    }


@dataclass(frozen=True)
class LineProblem:
    line: int
    text: str
    problem: str


@dataclass
class Submission:
    """A form as read: its inputs, and what is wrong with them (nothing is sent if anything is)."""

    form: ActionForm
    reason: str | None = None
    assessment: Assessment | None = None
    assessment_text: dict[str, str] = field(default_factory=dict)  # by input name
    identifiers: list[AnyIdentifier] = field(default_factory=list)
    identifiers_text: str = ""
    items: list[int] = field(default_factory=list)
    items_text: str = ""
    override: str | None = None
    changes: dict[str, timedelta] = field(default_factory=dict)
    changes_text: str = ""
    text: str = ""
    withdraw_open_tasks: bool = False
    addressees: list[str] = field(default_factory=list)
    platform: str = ""
    member_states: list[str] = field(default_factory=list)
    protocol: LinkedProtocolKind | None = None
    reference: str = ""
    activated_at: datetime | None = None
    activated_at_text: str = ""
    name: str | None = None
    problems: list[str] = field(default_factory=list)
    bad_lines: list[LineProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and not self.bad_lines

    def fields(self) -> dict[str, Any]:
        """The command's fields as submitted (the actor is the signed-in coordinator)."""
        form = self.form
        values: dict[str, Any] = {"reason": self.reason}
        if form.assessment:
            values["assessment"] = self.assessment
        if form.identifiers:
            values["identifiers"] = self.identifiers
        if form.items:
            values["items"] = self.items
        if form.text:
            values["text"] = self.text
        if form.withdraw_option:
            values["withdraw_open_tasks"] = self.withdraw_open_tasks
        if form.addressees:
            values["addressees"] = self.addressees or None  # none named: every platform
        if form.override:
            values["override"] = self.override
        if form.clocks:
            values["changes"] = self.changes
        if form.platform:
            values["platform"] = self.platform
        if form.member_states:
            values["member_states"] = self.member_states  # none: the affected ones
        if form.link:
            values["protocol"] = self.protocol
            values["reference"] = self.reference
            values["activated_at"] = self.activated_at
            values["name"] = self.name
        return values

    def echo(self) -> dict[str, str]:
        """The form's inputs as read, by input name: what the confirmation carries, and what
        its inputs show again when something is to be corrected."""
        form = self.form
        values = dict(self.assessment_text) if form.assessment else {}
        if form.identifiers:
            values["identifiers"] = self.identifiers_text
        if form.addressees:
            values["addressees"] = " ".join(self.addressees)
        if form.items:
            values["items"] = self.items_text
        if form.text:
            values["text"] = self.text
        if form.clocks:
            values["changes"] = self.changes_text
        if form.override:
            values["override"] = self.override or ""
        if form.withdraw_option and self.withdraw_open_tasks:
            values["withdraw_open_tasks"] = "on"
        if form.platform:
            values["platform"] = self.platform
        if form.member_states:
            values["member_states"] = " ".join(self.member_states)
        if form.link:
            values["protocol"] = self.protocol or ""
            values["reference"] = self.reference
            values["activated_at"] = (
                local_time(self.activated_at) if self.activated_at else self.activated_at_text
            )
            values["name"] = self.name or ""
        values["reason"] = self.reason or ""
        return values


def read_identifiers(text: str) -> tuple[list[AnyIdentifier], list[LineProblem]]:
    """One identifier per line (blank lines and `#` comments skipped), as the CLI reads them."""
    found: list[AnyIdentifier] = []
    bad: list[LineProblem] = []
    for n, line in lines_of(io.StringIO(text)):
        try:
            found.append(parse_identifier(line))
        except ValueError as err:
            bad.append(LineProblem(n, line[:200], str(err)))
    return found, bad


def read_items(text: str) -> list[int]:
    """Item numbers separated by spaces or commas; ValueError naming the first that is not."""
    numbers = []
    for word in re.split(r"[\s,]+", text.strip()):
        if not word.isdigit() or int(word) < 1:
            raise ValueError(f"{word!r} is not an item number (1, 2, ...)")
        numbers.append(int(word))
    return numbers


def read_words(text: str) -> list[str]:
    """Words separated by spaces or commas: platform ids, country codes."""
    return [word for word in re.split(r"[\s,]+", text.strip()) if word]


def read_time(text: str, now: datetime) -> datetime:
    """A time as a datetime-local input sends it (`2026-03-15T01:40`), read in UTC as every
    time the console shows; one with its offset (`...+01:00`, `...Z`) keeps it. Empty: now, as
    the CLI's default. To the second. ValueError if it is no time."""
    text = text.strip()
    if not text:
        return now.astimezone(UTC).replace(microsecond=0)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a time like 2026-03-15T01:40 (UTC)") from None
    aware = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed
    return aware.replace(microsecond=0)


def local_time(at: datetime) -> str:
    """A time as a datetime-local input shows it, in UTC: `2026-03-15T01:40:00`."""
    return f"{at.astimezone(UTC):%Y-%m-%dT%H:%M:%S}"


def read(
    form: ActionForm,
    data: Mapping[str, str],
    phase: Phase | None,
    actor: Actor,
    now: datetime | None = None,
) -> Submission:
    """The submitted form, checked by its command; with `phase`, also against the phase machine
    as the crisis stands (the confirmation step). Without it, the Update alone decides."""
    reason = data.get("reason", "").strip() or None
    sub = Submission(form=form, reason=reason)
    if form.assessment:
        sub.assessment_text = {
            f"{name}.{part}": data.get(f"{name}.{part}", default).strip()
            for name in CRITERIA
            for part, default in (("status", "unknown"), ("evidence", ""))
        }
        try:
            sub.assessment = Assessment(
                **{
                    name: Criterion(
                        status=CriterionStatus(sub.assessment_text[f"{name}.status"]),
                        evidence=sub.assessment_text[f"{name}.evidence"],
                    )
                    for name in CRITERIA
                }
            )
        except (ValueError, ValidationError) as err:
            sub.problems.append(f"assessment: {err}")
    if form.identifiers:
        sub.identifiers_text = data.get("identifiers", "")
        sub.identifiers, sub.bad_lines = read_identifiers(sub.identifiers_text)
        if form.identifiers_required and not sub.identifiers and not sub.bad_lines:
            sub.problems.append("identifiers: paste at least one URL or hash")
        if len(sub.identifiers) > MAX_BATCH:
            sub.problems.append(f"identifiers: at most {MAX_BATCH} at once")
    if form.items:
        sub.items_text = data.get("items", "")
        try:
            sub.items = read_items(sub.items_text)
        except ValueError as err:
            sub.problems.append(f"items: {err}")
    if form.text:
        sub.text = data.get("text", "").strip()
        if not sub.text:
            label = form.text_label
            sub.problems.append(f"text: write {label[:1].lower()}{label[1:]}")
    sub.withdraw_open_tasks = form.withdraw_option and data.get("withdraw_open_tasks") == "on"
    if form.addressees:
        sub.addressees = read_words(data.get("addressees", ""))
    if form.platform:
        sub.platform = data.get("platform", "").strip()
        if not sub.platform:
            sub.problems.append("platform: name the platform, by its participant id")
    if form.member_states:
        sub.member_states = [state.upper() for state in read_words(data.get("member_states", ""))]
    if form.link:
        protocol = data.get("protocol", "")
        try:
            sub.protocol = LinkedProtocolKind(protocol)
        except ValueError:
            kinds = ", ".join(LinkedProtocolKind)
            sub.problems.append(f"protocol: choose one of {kinds}, not {protocol!r}")
        sub.reference = data.get("reference", "").strip()
        if not sub.reference:
            sub.problems.append("reference: its id in that protocol")
        sub.activated_at_text = data.get("activated_at", "").strip()
        try:
            sub.activated_at = read_time(sub.activated_at_text, now or datetime.now(UTC))
        except ValueError as err:
            sub.problems.append(f"activated_at: {err}")
        sub.name = data.get("name", "").strip() or None
    if form.override:
        sub.override = data.get("override", "").strip() or None
    if form.clocks:
        sub.changes_text = data.get("changes", "")
        for n, line in lines_of(io.StringIO(sub.changes_text)):
            try:
                name, duration = parse_clock_change(line)
            except ValueError as err:
                sub.bad_lines.append(LineProblem(n, line[:200], str(err)))
            else:
                sub.changes[name] = duration
        if not sub.changes and not sub.bad_lines:
            sub.problems.append("changes: name at least one clock, e.g. act_within=45m")
    if sub.ok:  # what the command itself refuses, said before anything is sent
        try:
            ACTIONS[form.action].command(actor=actor, **sub.fields())
        except ValidationError as err:
            sub.problems += [f"{where(e['loc'])}: {e['msg']}" for e in err.errors()]
    try:
        if phase is not None:
            check(phase, form.action, actor.kind, reason)
    except Refusal as refused:
        sub.problems.append(f"{refused.field}: {refused.rule}")
    return sub


def where(loc: tuple[int | str, ...]) -> str:
    """A pydantic error's location as the form names it: `member_states.1`."""
    return ".".join(str(part) for part in loc) or "form"


async def execute(participation: Participation, sub: Submission) -> Answer:
    """Runs the action's Update through the service; a `Refusal` if the protocol refuses."""
    return await participation.act(sub.form.action, **sub.fields())

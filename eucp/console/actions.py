"""The coordinator's actions as console forms: what each asks for, how a submitted form is read
(every pasted identifier checked on its own line), and how it is sent.

Every action of the table (`eucp.protocol.actions`) that a coordinator may take has a form; its
inputs follow from its command's fields. Which actions are offered now, and whether a reason is
required, is the table's answer; whether an action is accepted is decided by the workflow's
Update, whose answer the page shows.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pydantic import ValidationError

from eucp.console.views import CRITERIA
from eucp.protocol.actions import ACTIONS, Action, ActionRow, check
from eucp.protocol.clocks import parse_clock_change
from eucp.protocol.commands import MAX_BATCH
from eucp.protocol.identifiers import AnyIdentifier, lines_of, parse_identifier
from eucp.protocol.incident import Assessment, Criterion, CriterionStatus
from eucp.protocol.participants import ParticipantKind
from eucp.protocol.phases import Phase
from eucp.protocol.refusal import Refusal
from eucp.protocol.state import Answer
from eucp.service.incidents import Participation


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
    withdraw_option: bool  # withdraw_open_tasks
    addressees: bool  # the platforms a referral is for
    override: bool  # why activate without all five criteria met
    clocks: bool  # the clocks to change, CLOCK=DURATION a line

    @classmethod
    def of(cls, row: ActionRow) -> ActionForm:
        asked = row.command.model_fields
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
            withdraw_option="withdraw_open_tasks" in asked,
            addressees="addressees" in asked,
            override="override" in asked,
            clocks="changes" in asked,
        )


FORMS: dict[Action, ActionForm] = {
    action: ActionForm.of(row)
    for action, row in ACTIONS.items()
    if ParticipantKind.coordinator in row.roles
}


def offered(allowed: list[Action]) -> list[ActionForm]:
    """The forms of the actions the phase machine allows now (a coordinator's)."""
    return [FORMS[a] for a in allowed if a in FORMS]


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


def read(
    form: ActionForm, data: Mapping[str, str], phase: Phase | None, actor_kind: ParticipantKind
) -> Submission:
    """The submitted form; with `phase`, also checked against the phase machine as the crisis
    stands (the confirmation step). Without it, the Update alone decides."""
    reason = data.get("reason", "").strip() or None
    sub = Submission(form=form, reason=reason)
    if form.assessment:
        try:
            sub.assessment = Assessment(
                **{
                    name: Criterion(
                        status=CriterionStatus(data.get(f"{name}.status", "unknown")),
                        evidence=data.get(f"{name}.evidence", "").strip(),
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
            sub.problems.append("text: write the input for the review")
    sub.withdraw_open_tasks = form.withdraw_option and data.get("withdraw_open_tasks") == "on"
    if form.addressees:
        named = data.get("addressees", "").strip()
        sub.addressees = re.split(r"[\s,]+", named) if named else []
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
    try:
        if phase is not None:
            check(phase, form.action, actor_kind, reason)
    except Refusal as refused:
        sub.problems.append(f"{refused.field}: {refused.rule}")
    return sub


async def execute(participation: Participation, sub: Submission) -> Answer:
    """Runs the action's Update through the service; a `Refusal` if the protocol refuses."""
    return await participation.act(sub.form.action, **sub.fields())

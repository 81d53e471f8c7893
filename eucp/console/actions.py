"""The coordinator's actions as console forms: what each asks for, how a submitted form is read
(every pasted identifier checked on its own line), and which service verb it calls.

Which actions are offered, and whether a reason is required, is asked of
`eucp.protocol.phases`; whether an action is accepted is decided by the workflow's Update,
whose answer the page shows.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import ValidationError

from eucp.console.views import CRITERIA
from eucp.protocol.commands import MAX_BATCH
from eucp.protocol.identifiers import AnyIdentifier, lines_of, parse_identifier
from eucp.protocol.incident import Assessment, Criterion, CriterionStatus
from eucp.protocol.participants import ParticipantKind
from eucp.protocol.phases import RULES, Action, Phase, ProtocolViolation, check
from eucp.protocol.state import Answer
from eucp.service.incidents import Session


@dataclass(frozen=True)
class ActionForm:
    """One action's form: its button, and the inputs it asks for besides the reason."""

    action: Action
    label: str
    assessment: bool = False
    identifiers: bool = False
    withdraw_option: bool = False

    @property
    def reason_required(self) -> bool:
        return RULES[self.action].reason_required

    @property
    def source(self) -> str:
        return RULES[self.action].source


FORMS: dict[Action, ActionForm] = {
    f.action: f
    for f in (
        ActionForm(Action.assess, "Record assessment", assessment=True),
        ActionForm(Action.activate, "Activate", identifiers=True),
        ActionForm(Action.decline, "Decline activation"),
        ActionForm(Action.add_content, "Add content", identifiers=True),
        ActionForm(Action.de_escalate, "De-escalate", withdraw_option=True),
        ActionForm(Action.re_escalate, "Re-escalate"),
        ActionForm(Action.start_review, "Start review"),
        ActionForm(Action.close, "Close review"),
    )
}


def offered(allowed: list[Action]) -> list[ActionForm]:
    """The forms of the actions the phase machine allows now (those the console has)."""
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
    withdraw_open_tasks: bool = False
    problems: list[str] = field(default_factory=list)
    bad_lines: list[LineProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and not self.bad_lines


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
        if form.action is Action.add_content and not sub.identifiers and not sub.bad_lines:
            sub.problems.append("identifiers: paste at least one URL or hash")
        if len(sub.identifiers) > MAX_BATCH:
            sub.problems.append(f"identifiers: at most {MAX_BATCH} at once")
    sub.withdraw_open_tasks = form.withdraw_option and data.get("withdraw_open_tasks") == "on"
    try:
        if phase is not None:
            check(phase, form.action, actor_kind, reason)
    except ProtocolViolation as refused:
        sub.problems.append(f"{refused.field}: {refused.rule}")
    return sub


async def execute(session: Session, sub: Submission) -> Answer:
    """Runs the action's Update through the service layer; `Rejected` if the protocol refuses."""
    match sub.form.action:
        case Action.assess:
            assert sub.assessment is not None
            return await session.assess(sub.assessment, sub.reason)
        case Action.activate:
            return await session.activate(sub.reason or "", identifiers=sub.identifiers)
        case Action.decline:
            return await session.decline(sub.reason)
        case Action.add_content:
            return await session.add_content(sub.identifiers)
        case Action.de_escalate:
            return await session.de_escalate(sub.reason, sub.withdraw_open_tasks)
        case Action.re_escalate:
            return await session.re_escalate(sub.reason)
        case Action.start_review:
            return await session.start_review(sub.reason)
        case Action.close:
            return await session.close(sub.reason)
    raise ValueError(f"the console has no form for {sub.form.action}")

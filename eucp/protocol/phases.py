"""The phase machine: which coordinator and participant actions are legal, when, and by whom.

One source of truth: the workflow validators, the CLI and the audit replay all ask `check`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from eucp.protocol.decisions import DecisionKind
from eucp.protocol.participants import ParticipantKind


class Phase(StrEnum):
    reported = "reported"
    assessing = "assessing"
    not_activated = "not_activated"
    active = "active"
    de_escalating = "de_escalating"
    review = "review"
    closed = "closed"


class Action(StrEnum):
    assess = "assess"
    activate = "activate"
    decline = "decline"
    add_content = "add_content"
    withdraw_content = "withdraw_content"
    report_sightings = "report_sightings"
    report_false_positive = "report_false_positive"
    de_escalate = "de_escalate"
    re_escalate = "re_escalate"
    start_review = "start_review"
    submit_review_input = "submit_review_input"
    close = "close"


P = ParticipantKind
COORDINATORS = frozenset({P.coordinator})
ANY_PARTICIPANT = frozenset({P.coordinator, P.member_state, P.platform, P.gifct})
TAKEDOWN = frozenset({Phase.active, Phase.de_escalating})
FINAL = frozenset({Phase.not_activated, Phase.closed})


@dataclass(frozen=True)
class Rule:
    """One legal action: the phases it starts from, where it leads, who may take it, and why."""

    action: Action
    from_phases: frozenset[Phase]
    to: Phase | None  # None: the phase stays
    roles: frozenset[ParticipantKind]
    reason_required: bool
    source: str


RULES: dict[Action, Rule] = {
    r.action: r
    for r in (
        Rule(
            Action.assess,
            frozenset({Phase.reported, Phase.assessing}),
            Phase.assessing,
            COORDINATORS,
            False,
            "Europol Reg. (EU) 2022/991: five criteria, with evidence",
        ),
        Rule(
            Action.activate,
            frozenset({Phase.assessing}),
            Phase.active,
            COORDINATORS,
            True,
            "EUCP 2019: the coordinator decides activation",
        ),
        Rule(
            Action.decline,
            frozenset({Phase.assessing}),
            Phase.not_activated,
            COORDINATORS,
            True,
            "GIFCT Conflans 2020: non-activation needs a reason",
        ),
        Rule(
            Action.add_content,
            TAKEDOWN,
            None,
            COORDINATORS,
            False,
            "EUCP: identifiers fanned out to every platform",
        ),
        Rule(
            Action.withdraw_content,
            TAKEDOWN | {Phase.review},
            None,
            COORDINATORS,
            True,
            "TCO Art. 4: an order found to infringe loses effect",
        ),
        Rule(
            Action.report_sightings,
            TAKEDOWN,
            None,
            frozenset({P.platform, P.coordinator, P.gifct}),
            False,
            "EUCP: platforms report new copies",
        ),
        Rule(
            Action.report_false_positive,
            TAKEDOWN | {Phase.review},
            None,
            frozenset({P.platform, P.gifct}),
            True,
            "GIFCT: false-positive feedback",
        ),
        Rule(
            Action.de_escalate,
            frozenset({Phase.active}),
            Phase.de_escalating,
            COORDINATORS,
            True,
            "GIFCT conclusion notices: de-escalation with a reason",
        ),
        Rule(
            Action.re_escalate,
            frozenset({Phase.de_escalating}),
            Phase.active,
            COORDINATORS,
            True,
            "EUCP: a de-escalating crisis can re-escalate",
        ),
        Rule(
            Action.start_review,
            frozenset({Phase.de_escalating}),
            Phase.review,
            COORDINATORS,
            False,
            "EUCP: post-incident review (debrief)",
        ),
        Rule(
            Action.submit_review_input,
            frozenset({Phase.review}),
            None,
            ANY_PARTICIPANT,
            False,
            "GIFCT debriefs: participants' lessons learned",
        ),
        Rule(
            Action.close,
            frozenset({Phase.review}),
            Phase.closed,
            frozenset({P.coordinator, P.system}),
            False,
            "EUCP: review closed by the coordinator or at its deadline; records kept for audit",
        ),
    )
}


# The decision each accepted action records in the ledger (the audit reads it back the same way).
DECISION_OF: dict[Action, DecisionKind] = {
    Action.assess: DecisionKind.assessed,
    Action.activate: DecisionKind.activated,
    Action.decline: DecisionKind.not_activated,
    Action.add_content: DecisionKind.content_added,
    Action.withdraw_content: DecisionKind.content_withdrawn,
    Action.report_sightings: DecisionKind.sighting_reported,
    Action.report_false_positive: DecisionKind.false_positive_reported,
    Action.de_escalate: DecisionKind.de_escalated,
    Action.re_escalate: DecisionKind.re_escalated,
    Action.start_review: DecisionKind.review_started,
    Action.submit_review_input: DecisionKind.review_input,
    Action.close: DecisionKind.closed,
}


class Refusal(StrEnum):
    """Why an action is refused: the HTTP API answers 422, 403, 404 and 409 from these."""

    invalid = "invalid"
    forbidden = "forbidden"
    not_found = "not_found"
    conflict = "conflict"


class ProtocolViolation(ValueError):
    """An action the protocol refuses; `field` names the input at fault, `rule` the rule."""

    def __init__(self, field: str, rule: str, refusal: Refusal = Refusal.conflict) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule
        self.refusal = refusal


def check(
    phase: Phase, action: Action, actor_kind: ParticipantKind, reason: str | None = None
) -> Phase:
    """The phase after `action`, or ProtocolViolation naming what is wrong."""
    rule = RULES[action]
    if actor_kind not in rule.roles:
        allowed = ", ".join(sorted(rule.roles))
        raise ProtocolViolation(
            "actor.kind", f"{action} may be taken by {allowed}, not {actor_kind}", Refusal.forbidden
        )
    if phase not in rule.from_phases:
        allowed = ", ".join(sorted(rule.from_phases))
        raise ProtocolViolation("phase", f"{action} is allowed in {allowed}, not in {phase}")
    if rule.reason_required and not (reason and reason.strip()):
        raise ProtocolViolation(
            "reason", f"{action} requires a reason ({rule.source})", Refusal.invalid
        )
    return rule.to or phase


def allowed_actions(phase: Phase, actor_kind: ParticipantKind) -> list[Action]:
    """What this role may do now: for the CLI's hints and the console's buttons."""
    return [a for a, r in RULES.items() if phase in r.from_phases and actor_kind in r.roles]

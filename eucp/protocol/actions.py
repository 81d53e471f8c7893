"""The table of actions: every coordinator decision and participant report on an incident, in
one row each, and the phase machine that reads it.

A row says where the action is sent (its HTTP path and the CLI command), what it carries (its
command model), which Update of the crisis workflow runs it, what it records in the ledger,
who may take it, from which phases, where it leads, whether a reason is required and on what
grounds. The workflow validators, the service, the HTTP API and its client, the CLI, the
console and the audit replay all ask this table: a new action is one row, its workflow
handler and its tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from eucp.protocol.commands import (
    Activate,
    AddContent,
    Assess,
    ClarifyOrder,
    Command,
    DecideScrutiny,
    DeEscalate,
    FlagThreat,
    IssueOrder,
    JoinPlatform,
    LinkProtocol,
    PostUpdate,
    ReportFalsePositive,
    ReportSightings,
    RequestScrutiny,
    SetClocks,
    SubmitReviewInput,
    SuspendPlatform,
    WithdrawContent,
)
from eucp.protocol.decisions import DecisionKind
from eucp.protocol.participants import ParticipantKind
from eucp.protocol.phases import FINAL, TAKEDOWN, Phase
from eucp.protocol.refusal import Refusal, RefusalKind


class Action(StrEnum):
    assess = "assess"
    activate = "activate"
    decline = "decline"
    renew_activation = "renew_activation"
    set_clocks = "set_clocks"
    join_platform = "join_platform"
    suspend_platform = "suspend_platform"
    flag_threat = "flag_threat"
    post_update = "post_update"
    link_protocol = "link_protocol"
    add_content = "add_content"
    issue_order = "issue_order"
    clarify_order = "clarify_order"
    request_scrutiny = "request_scrutiny"
    decide_scrutiny = "decide_scrutiny"
    withdraw_content = "withdraw_content"
    report_sightings = "report_sightings"
    report_false_positive = "report_false_positive"
    de_escalate = "de_escalate"
    re_escalate = "re_escalate"
    start_review = "start_review"
    submit_review_input = "submit_review_input"
    close = "close"


COORDINATORS = frozenset({ParticipantKind.coordinator})
OPEN = frozenset(Phase) - FINAL
# an order keeps its effect, and its redress, after the takedown winds down
ORDERS_IN_FORCE = TAKEDOWN | {Phase.review}
ANY_PARTICIPANT = frozenset(
    {
        ParticipantKind.coordinator,
        ParticipantKind.member_state,
        ParticipantKind.platform,
        ParticipantKind.gifct,
    }
)


@dataclass(frozen=True)
class ActionRow:
    """One action of the protocol, as every layer sees it."""

    action: Action
    title: str  # what a person calls it: the console's button, the CLI's help
    path: str  # POST /v1/incidents/{incident_id}/{path}
    cli: str  # eucp crisis {cli}
    command: type[Command]
    update: str  # the CrisisWorkflow Update that runs it
    decision: DecisionKind  # what an accepted action records in the ledger
    roles: frozenset[ParticipantKind]
    from_phases: frozenset[Phase]
    to: Phase | None  # None: the phase stays
    reason_required: bool
    source: str
    batched: bool = False  # its identifiers go in requests of at most MAX_BATCH


ACTIONS: dict[Action, ActionRow] = {
    row.action: row
    for row in (
        ActionRow(
            action=Action.assess,
            title="Record assessment",
            path="assessment",
            cli="assess",
            command=Assess,
            update="assess",
            decision=DecisionKind.assessed,
            roles=COORDINATORS,
            from_phases=frozenset({Phase.reported, Phase.assessing}),
            to=Phase.assessing,
            reason_required=False,
            source="Europol Reg. (EU) 2022/991: five criteria, with evidence",
        ),
        ActionRow(
            action=Action.activate,
            title="Activate",
            path="activation",
            cli="activate",
            command=Activate,
            update="activate",
            decision=DecisionKind.activated,
            roles=COORDINATORS,
            from_phases=frozenset({Phase.assessing}),
            to=Phase.active,
            reason_required=True,
            source="EUCP 2019: the coordinator decides activation",
        ),
        ActionRow(
            action=Action.decline,
            title="Decline activation",
            path="non-activation",
            cli="decline",
            command=Command,
            update="decline",
            decision=DecisionKind.not_activated,
            roles=COORDINATORS,
            from_phases=frozenset({Phase.assessing}),
            to=Phase.not_activated,
            reason_required=True,
            source="GIFCT Conflans 2020: non-activation needs a reason",
        ),
        ActionRow(
            action=Action.renew_activation,
            title="Renew the activation",
            path="renewals",
            cli="renew",
            command=Command,
            update="renew_activation",
            decision=DecisionKind.activation_renewed,
            roles=COORDINATORS,
            from_phases=frozenset({Phase.active}),
            to=None,
            reason_required=True,
            source="EUCP safeguards: an activation is limited in time and reviewed",
        ),
        ActionRow(
            action=Action.set_clocks,
            title="Set the clocks",
            path="clocks",
            cli="clocks",
            command=SetClocks,
            update="set_clocks",
            decision=DecisionKind.clocks_set,
            roles=COORDINATORS,
            from_phases=OPEN,
            to=None,
            reason_required=True,
            source="EUCP: the coordinator runs the crisis; the deadlines in force are recorded",
        ),
        ActionRow(
            action=Action.join_platform,
            title="Bring in a platform",
            path="participants",
            cli="join",
            command=JoinPlatform,
            update="join_platform",
            decision=DecisionKind.platform_joined,
            roles=COORDINATORS,
            from_phases=TAKEDOWN,
            to=None,
            reason_required=False,
            source="EUCP: copies move to services no one named at activation",
        ),
        ActionRow(
            action=Action.suspend_platform,
            title="Suspend a platform",
            path="suspensions",
            cli="suspend",
            command=SuspendPlatform,
            update="suspend_platform",
            decision=DecisionKind.platform_suspended,
            roles=COORDINATORS,
            from_phases=TAKEDOWN,
            to=None,
            reason_required=True,
            source="EUCP: participation is voluntary; a suspension says why",
        ),
        ActionRow(
            action=Action.flag_threat,
            title="Flag an imminent threat to life",
            path="imminent-threats",
            cli="threat",
            command=FlagThreat,
            update="flag_threat",
            decision=DecisionKind.imminent_threat_flagged,
            roles=ANY_PARTICIPANT,
            from_phases=OPEN,
            to=None,
            reason_required=False,
            source="TCO Art. 14(5): the Member States concerned and Europol are told at once",
        ),
        ActionRow(
            action=Action.post_update,
            title="Post a situational update",
            path="updates",
            cli="update",
            command=PostUpdate,
            update="post_update",
            decision=DecisionKind.situation_updated,
            roles=COORDINATORS,
            from_phases=OPEN,
            to=None,
            reason_required=False,
            source="EUCP: the coordinator keeps the participants informed",
        ),
        ActionRow(
            action=Action.link_protocol,
            title="Link another protocol",
            path="linked-protocols",
            cli="link",
            command=LinkProtocol,
            update="link_protocol",
            decision=DecisionKind.protocol_linked,
            roles=COORDINATORS,
            from_phases=OPEN,
            to=None,
            reason_required=False,
            source="EUCP 2019, GIFCT CIP, Christchurch Call: protocols run side by side",
        ),
        ActionRow(
            action=Action.add_content,
            title="Add content",
            path="content",
            cli="add-content",
            command=AddContent,
            update="add_content",
            decision=DecisionKind.content_added,
            roles=COORDINATORS,
            from_phases=TAKEDOWN,
            to=None,
            reason_required=False,
            source="EUCP: identifiers fanned out to every platform",
            batched=True,
        ),
        ActionRow(
            action=Action.issue_order,
            title="Issue a removal order",
            path="removal-orders",
            cli="order",
            command=IssueOrder,
            update="issue_order",
            decision=DecisionKind.removal_order_issued,
            roles=frozenset({ParticipantKind.member_state}),
            from_phases=TAKEDOWN,
            to=None,
            reason_required=False,
            source="TCO Art. 3: a Member State's competent authority issues removal orders",
        ),
        ActionRow(
            action=Action.clarify_order,
            title="Clarify an order",
            path="clarifications",
            cli="clarify",
            command=ClarifyOrder,
            update="clarify_order",
            decision=DecisionKind.order_clarified,
            roles=frozenset({ParticipantKind.member_state}),
            from_phases=ORDERS_IN_FORCE,
            to=None,
            reason_required=True,
            source="TCO Annex III, Art. 3(8): the issuer clarifies; the hour starts again",
        ),
        ActionRow(
            action=Action.request_scrutiny,
            title="Request scrutiny",
            path="scrutiny-requests",
            cli="request-scrutiny",
            command=RequestScrutiny,
            update="request_scrutiny",
            decision=DecisionKind.scrutiny_requested,
            roles=frozenset({ParticipantKind.platform}),
            from_phases=ORDERS_IN_FORCE,
            to=None,
            reason_required=True,
            source="TCO Art. 4(4): a reasoned request within 48 hours of receipt",
        ),
        ActionRow(
            action=Action.decide_scrutiny,
            title="Decide on scrutiny",
            path="scrutiny-decisions",
            cli="scrutinise",
            command=DecideScrutiny,
            update="decide_scrutiny",
            decision=DecisionKind.scrutiny_decided,
            roles=frozenset({ParticipantKind.member_state}),
            from_phases=ORDERS_IN_FORCE,
            to=None,
            reason_required=True,
            source="TCO Art. 4(3)-(6): the host State's reasoned decision within 72 hours",
        ),
        ActionRow(
            action=Action.withdraw_content,
            title="Withdraw content",
            path="withdrawals",
            cli="withdraw",
            command=WithdrawContent,
            update="withdraw_content",
            decision=DecisionKind.content_withdrawn,
            roles=COORDINATORS,
            from_phases=TAKEDOWN | {Phase.review},
            to=None,
            reason_required=True,
            source="TCO Art. 4: an order found to infringe loses effect",
        ),
        ActionRow(
            action=Action.report_sightings,
            title="Report sightings",
            path="sightings",
            cli="sightings",
            command=ReportSightings,
            update="report_sightings",
            decision=DecisionKind.sighting_reported,
            roles=frozenset(
                {
                    ParticipantKind.platform,
                    ParticipantKind.coordinator,
                    ParticipantKind.gifct,
                    ParticipantKind.member_state,
                }
            ),
            from_phases=TAKEDOWN,
            to=None,
            reason_required=False,
            source="EUCP: platforms, and the Member States concerned, report new copies",
            batched=True,
        ),
        ActionRow(
            action=Action.report_false_positive,
            title="Report a false positive",
            path="false-positives",
            cli="false-positive",
            command=ReportFalsePositive,
            update="report_false_positive",
            decision=DecisionKind.false_positive_reported,
            roles=frozenset({ParticipantKind.platform, ParticipantKind.gifct}),
            from_phases=TAKEDOWN | {Phase.review},
            to=None,
            reason_required=True,
            source="GIFCT: false-positive feedback",
        ),
        ActionRow(
            action=Action.de_escalate,
            title="De-escalate",
            path="de-escalation",
            cli="de-escalate",
            command=DeEscalate,
            update="de_escalate",
            decision=DecisionKind.de_escalated,
            roles=frozenset({ParticipantKind.coordinator, ParticipantKind.system}),
            from_phases=frozenset({Phase.active}),
            to=Phase.de_escalating,
            reason_required=True,
            source="GIFCT conclusion notices: de-escalation with a reason; eucp itself when "
            "an activation lapses unrenewed",
        ),
        ActionRow(
            action=Action.re_escalate,
            title="Re-escalate",
            path="re-escalation",
            cli="re-escalate",
            command=Command,
            update="re_escalate",
            decision=DecisionKind.re_escalated,
            roles=COORDINATORS,
            from_phases=frozenset({Phase.de_escalating}),
            to=Phase.active,
            reason_required=True,
            source="EUCP: a de-escalating crisis can re-escalate",
        ),
        ActionRow(
            action=Action.start_review,
            title="Start review",
            path="review",
            cli="review",
            command=Command,
            update="start_review",
            decision=DecisionKind.review_started,
            roles=COORDINATORS,
            from_phases=frozenset({Phase.de_escalating}),
            to=Phase.review,
            reason_required=False,
            source="EUCP: post-incident review (debrief)",
        ),
        ActionRow(
            action=Action.submit_review_input,
            title="Submit review input",
            path="review-input",
            cli="review-input",
            command=SubmitReviewInput,
            update="submit_review_input",
            decision=DecisionKind.review_input,
            roles=ANY_PARTICIPANT,
            from_phases=frozenset({Phase.review}),
            to=None,
            reason_required=False,
            source="GIFCT debriefs: participants' lessons learned",
        ),
        ActionRow(
            action=Action.close,
            title="Close review",
            path="closure",
            cli="close",
            command=Command,
            update="close",
            decision=DecisionKind.closed,
            roles=frozenset({ParticipantKind.coordinator, ParticipantKind.system}),
            from_phases=frozenset({Phase.review}),
            to=Phase.closed,
            reason_required=False,
            source=(
                "EUCP: review closed by the coordinator or at its deadline; records kept for audit"
            ),
        ),
    )
}


def check(
    phase: Phase, action: Action, actor_kind: ParticipantKind, reason: str | None = None
) -> Phase:
    """The phase after `action`, or the `Refusal` naming what is wrong: who may take it first,
    then when, then why."""
    row = ACTIONS[action]
    if actor_kind not in row.roles:
        allowed = ", ".join(sorted(row.roles))
        raise Refusal(
            "actor.kind",
            f"{action} may be taken by {allowed}, not {actor_kind}",
            RefusalKind.forbidden,
        )
    if phase not in row.from_phases:
        allowed = ", ".join(sorted(row.from_phases))
        raise Refusal("phase", f"{action} is allowed in {allowed}, not in {phase}")
    if row.reason_required and not (reason and reason.strip()):
        raise Refusal("reason", f"{action} requires a reason ({row.source})", RefusalKind.invalid)
    return row.to or phase


def allowed_actions(phase: Phase, actor_kind: ParticipantKind) -> list[Action]:
    """What this role may do now: for the CLI's hints and the console's buttons."""
    return [
        action
        for action, row in ACTIONS.items()
        if phase in row.from_phases and actor_kind in row.roles
    ]

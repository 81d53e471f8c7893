"""`eucp crisis`: report, steer and follow incidents over the HTTP API. Every action a
coordinator or platform takes on an incident is one command here, named by its row in the
table of actions and sent with `ApiClient.act`; the reading commands (`list`, `status`,
`decisions`) are here too.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import IO, Any

import click
from pydantic import ValidationError

from eucp.cli.framework import Call, Invalid, command
from eucp.cli.inputs import (
    AwareTime,
    identifiers_input,
    load_model,
    parse_clock,
    parse_criterion,
    read_text,
    reason_option,
    removal_order_option,
)
from eucp.cli.render import (
    show_answer,
    show_listings,
    show_orders,
    show_reported,
    show_rows,
    show_status,
)
from eucp.protocol.actions import ACTIONS, Action
from eucp.protocol.identifiers import AnyIdentifier, describe_invalid
from eucp.protocol.incident import Assessment, IncidentReport, LinkedProtocolKind
from eucp.protocol.orders import ScrutinyOutcome
from eucp.protocol.phases import Phase
from eucp.protocol.tasks import OrderDetails


@click.group()
def crisis() -> None:
    """Report, steer and follow incidents over the API (coordinators; platforms: sightings,
    false-positive, review-input). Every command takes --api, --token and --json."""


@command(crisis, "report", show_reported, incident=False, idempotent=True)
@click.option("--title", required=True, help="a short name of the event")
@click.option("--place", required=True, help="where the event takes place")
@click.option(
    "--event-started",
    type=AwareTime(),
    default="now",
    show_default=True,
    help="when the event began, ISO 8601 with its time zone",
)
@click.option("--description", default="", help="what is known so far")
@click.option("--member-state", multiple=True, metavar="CC", help="affected Member State (repeat)")
@click.option("--reporter", required=True, help="your participant id (the token's)")
@click.option("--incident-id", help="choose the incident id (default: one is made up)")
@click.option(
    "--exercise", is_flag=True, help="a rehearsal: said in every notice, out of real figures"
)
@identifiers_input(required=False)
def crisis_report(
    title: str,
    place: str,
    event_started: datetime,
    description: str,
    member_state: tuple[str, ...],
    reporter: str,
    incident_id: str | None,
    exercise: bool,
    identifiers: list[AnyIdentifier],
    idempotency_key: str | None,
) -> Call:
    """Report a potential crisis, with its first identifiers if any."""
    try:
        report = IncidentReport(
            title=title,
            event_place=place,
            event_started_at=event_started,
            description=description,
            affected_member_states=[state.upper() for state in member_state],
            reporter=reporter,
            first_identifiers=identifiers,
            exercise=exercise,
        )
    except ValidationError as err:
        raise Invalid(describe_invalid(err)) from None
    return lambda api: api.report(report, incident_id, idempotency_key=idempotency_key)


@command(crisis, "list", show_listings, incident=False)
@click.option("--phase", type=click.Choice([p.value for p in Phase]), help="in this phase")
@click.option("--platform", help="this platform was given a part (staff)")
@click.option("--reporter", help="reported by this participant (staff)")
@click.option("--exercise/--real", default=None, help="exercises only, or none")
def crisis_list(
    phase: str | None, platform: str | None, reporter: str | None, exercise: bool | None
) -> Call:
    """The incidents you may see, found by what they are (every filter given must hold)."""
    return lambda api: api.incidents(phase, platform, reporter, exercise)


@command(crisis, "status", show_status)
def crisis_status(incident_id: str) -> Call:
    """Where an incident stands: phase, items, each platform's tasks by state."""
    return lambda api: api.status(incident_id)


@command(crisis, "decisions", show_rows)
@click.option("--after", type=click.IntRange(min=0), default=0, help="after this ledger row")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--all", "every", is_flag=True, help="every row, page after page")
def crisis_decisions(incident_id: str, after: int, limit: int, every: bool) -> Call:
    """The incident's decisions as the ledger recorded them (coordinators, auditors)."""
    if every:
        return lambda api: api.all_decisions(incident_id)
    return lambda api: api.decisions(incident_id, after, limit)


@command(crisis, "orders", show_orders)
def crisis_orders(incident_id: str) -> Call:
    """The removal orders you may see, with their addressee and scrutiny: all for coordinators
    and auditors, your own for a platform, those you issued or your State hosts for an
    authority."""
    return lambda api: api.orders(incident_id)


def action_command(action: Action) -> Callable[[Callable[..., Call]], click.Command]:
    """`eucp crisis <the row's cli>`: an action of the table, answered with the API's Answer."""
    return command(crisis, ACTIONS[action].cli, show_answer, idempotent=True)


def act(incident_id: str, action: Action, idempotency_key: str | None, **fields: Any) -> Call:
    """The API call that takes `action` with its body `fields`."""
    return lambda api: api.act(incident_id, action, idempotency_key=idempotency_key, **fields)


def reason_only_command(action: Action, help_text: str) -> click.Command:
    """The command of an action whose body is its reason alone (required or not, as the table
    says): decline, re-escalate, review, close. `help_text` is the command's help."""

    def take(incident_id: str, reason: str | None, idempotency_key: str | None) -> Call:
        return act(incident_id, action, idempotency_key, reason=reason)

    take.__doc__ = help_text  # read as the help when the command is made
    return action_command(action)(reason_option(action)(take))


@action_command(Action.assess)
@click.option(
    "--criterion",
    "criteria",
    multiple=True,
    metavar="NAME=STATUS[:EVIDENCE]",
    help="e.g. real_world_event=met:'livestream seen on 3 services' (repeat for each)",
)
@click.option(
    "--file",
    "from_file",
    type=click.File("r"),
    help="the assessment as JSON ('-': stdin); --criterion overrides its entries",
)
@reason_option(Action.assess)
def crisis_assess(
    incident_id: str,
    criteria: tuple[str, ...],
    from_file: IO[str] | None,
    reason: str | None,
    idempotency_key: str | None,
) -> Call:
    """Record the five-criteria assessment (real_world_event, depicts_harm, intimidation,
    tve_link, multi_platform_virality: met, not_met or unknown, with evidence)."""
    if not criteria and from_file is None:
        raise Invalid("no assessment", "give --criterion NAME=STATUS[:EVIDENCE] or --file FILE")
    base = load_model(Assessment, from_file, "assessment") if from_file else Assessment()
    assessment = base.model_copy(update=dict(parse_criterion(criterion) for criterion in criteria))
    return act(incident_id, Action.assess, idempotency_key, assessment=assessment, reason=reason)


@action_command(Action.activate)
@identifiers_input(required=False)
@reason_option(Action.activate)
@click.option(
    "--override",
    help="activate although not all five criteria are met: why (recorded as an override)",
)
@click.option(
    "--platform", "platforms", multiple=True, help="a participating platform (repeat); all if none"
)
@removal_order_option
def crisis_activate(
    incident_id: str,
    identifiers: list[AnyIdentifier],
    reason: str,
    override: str | None,
    platforms: tuple[str, ...],
    basis: Any,
    idempotency_key: str | None,
) -> Call:
    """Activate the protocol: every platform gets a task per identifier. All five criteria
    must be met, each with its evidence, or an --override given."""
    return act(
        incident_id,
        Action.activate,
        idempotency_key,
        reason=reason,
        override=override,
        identifiers=identifiers,
        platforms=list(platforms) or None,
        basis=basis,
    )


crisis_decline = reason_only_command(Action.decline, "Decide not to activate (a final phase).")

crisis_renew = reason_only_command(
    Action.renew_activation,
    "Keep the activation for another period (activation_for, 48 h by default); unrenewed, "
    "it lapses and the crisis de-escalates by itself.",
)


@action_command(Action.join_platform)
@click.argument("platform")
@reason_option(Action.join_platform)
def crisis_join(
    incident_id: str, platform: str, reason: str | None, idempotency_key: str | None
) -> Call:
    """Bring a registered platform into the running incident (or back from a suspension): it
    is given the open content meant for it and told from then on."""
    return act(incident_id, Action.join_platform, idempotency_key, platform=platform, reason=reason)


@action_command(Action.suspend_platform)
@click.argument("platform")
@reason_option(Action.suspend_platform)
def crisis_suspend(
    incident_id: str, platform: str, reason: str, idempotency_key: str | None
) -> Call:
    """Suspend a platform's participation: its open tasks are withdrawn, and it is given and
    told nothing more until brought in again."""
    return act(
        incident_id, Action.suspend_platform, idempotency_key, platform=platform, reason=reason
    )


@action_command(Action.flag_threat)
@click.argument("text")
@click.option(
    "--member-state",
    "member_states",
    multiple=True,
    metavar="CC",
    help="a Member State concerned (repeat); the affected ones if none",
)
def crisis_threat(
    incident_id: str, text: str, member_states: tuple[str, ...], idempotency_key: str | None
) -> Call:
    """Flag information on an imminent threat to life (TCO Art. 14(5)): the Member States
    concerned and Europol are told at once (any participant)."""
    return act(
        incident_id,
        Action.flag_threat,
        idempotency_key,
        text=read_text(text),
        member_states=[state.upper() for state in member_states],
    )


@action_command(Action.post_update)
@click.argument("text")
def crisis_update(incident_id: str, text: str, idempotency_key: str | None) -> Call:
    """Post a situational update to the incident's participants ('-': from stdin)."""
    return act(incident_id, Action.post_update, idempotency_key, text=read_text(text))


@action_command(Action.link_protocol)
@click.option(
    "--protocol",
    type=click.Choice([kind.value for kind in LinkedProtocolKind]),
    required=True,
    help="gifct_cip (GIFCT's Content Incident Protocol), christchurch_call, or other",
)
@click.option("--reference", required=True, help="its id in that protocol")
@click.option("--activated-at", type=AwareTime(), default="now", show_default=True)
@click.option("--name", help="for other: which protocol")
def crisis_link(
    incident_id: str,
    protocol: str,
    reference: str,
    activated_at: datetime,
    name: str | None,
    idempotency_key: str | None,
) -> Call:
    """Record another protocol's activation for the same event."""
    return act(
        incident_id,
        Action.link_protocol,
        idempotency_key,
        protocol=LinkedProtocolKind(protocol),
        reference=reference,
        activated_at=activated_at,
        name=name,
    )


@action_command(Action.set_clocks)
@click.option(
    "--set",
    "changes",
    multiple=True,
    required=True,
    metavar="CLOCK=DURATION",
    help="e.g. act_within=45m, activation_for=36h (s, m, h or d; repeat for each clock)",
)
@reason_option(Action.set_clocks)
def crisis_clocks(
    incident_id: str, changes: tuple[str, ...], reason: str, idempotency_key: str | None
) -> Call:
    """Change some of the incident's clocks (coordinators); all those in force are recorded."""
    return act(
        incident_id,
        Action.set_clocks,
        idempotency_key,
        changes=dict(parse_clock(change) for change in changes),
        reason=reason,
    )


@action_command(Action.add_content)
@identifiers_input(required=True)
@removal_order_option
@click.option(
    "--platform",
    "addressees",
    multiple=True,
    help="a participating platform the referral is for (repeat); all if none",
)
def crisis_add_content(
    incident_id: str,
    identifiers: list[AnyIdentifier],
    basis: Any,
    addressees: tuple[str, ...],
    idempotency_key: str | None,
) -> Call:
    """New identifiers (1,000 per request): tasks for every participating platform, or for the
    ones named; an identifier bound to a platform, or under a removal order, is a task for
    that platform alone."""
    return act(
        incident_id,
        Action.add_content,
        idempotency_key,
        identifiers=identifiers,
        basis=basis,
        addressees=list(addressees) or None,
    )


@action_command(Action.issue_order)
@identifiers_input(required=True)
@click.option(
    "--order",
    "order_file",
    type=click.File("r"),
    required=True,
    help="JSON file of the order's Annex I fields ('-': stdin): issuing_authority, addressee,"
    " platform (the addressee's participant id), contact_point, host_member_state, issued_at,"
    " reference, reasons, confidential; the issuing Member State is your own",
)
def crisis_order(
    incident_id: str,
    identifiers: list[AnyIdentifier],
    order_file: IO[str],
    idempotency_key: str | None,
) -> Call:
    """Issue a removal order (TCO Art. 3, Member State authorities): the content becomes a
    task for the order's addressee alone, to be removed within the hour."""
    order = load_model(OrderDetails, order_file, "removal order")
    return act(
        incident_id, Action.issue_order, idempotency_key, identifiers=identifiers, order=order
    )


def reference_option(command: Callable[..., Call]) -> Callable[..., Call]:
    return click.option("--reference", required=True, help="the removal order's reference")(command)


@action_command(Action.clarify_order)
@reference_option
@reason_option(Action.clarify_order)
def crisis_clarify(
    incident_id: str, reference: str, reason: str, idempotency_key: str | None
) -> Call:
    """Clarify your removal order (issuing authority, TCO Annex III): the --reason is the
    clarification; the addressee's paused hour starts again in full (Art. 3(8))."""
    return act(
        incident_id, Action.clarify_order, idempotency_key, reference=reference, reason=reason
    )


@action_command(Action.request_scrutiny)
@reference_option
@reason_option(Action.request_scrutiny)
def crisis_request_scrutiny(
    incident_id: str, reference: str, reason: str, idempotency_key: str | None
) -> Call:
    """Ask the host Member State to scrutinise a cross-border order addressed to you, within
    48 hours of receiving it (platforms, TCO Art. 4(4)); --reason says why it may infringe."""
    return act(
        incident_id, Action.request_scrutiny, idempotency_key, reference=reference, reason=reason
    )


@action_command(Action.decide_scrutiny)
@reference_option
@click.option(
    "--outcome",
    type=click.Choice([o.value for o in ScrutinyOutcome]),
    required=True,
    help="upheld, or infringes: the order loses effect and removed content is reinstated",
)
@reason_option(Action.decide_scrutiny)
def crisis_scrutinise(
    incident_id: str, reference: str, outcome: str, reason: str, idempotency_key: str | None
) -> Call:
    """Decide on a cross-border order your Member State hosts (its competent authority, TCO
    Art. 4): within 72 hours of the copy, or of the addressee's request; --reason gives the
    decision's reasons."""
    return act(
        incident_id,
        Action.decide_scrutiny,
        idempotency_key,
        reference=reference,
        outcome=ScrutinyOutcome(outcome),
        reason=reason,
    )


@action_command(Action.withdraw_content)
@click.argument("items", nargs=-1, required=True, type=click.IntRange(min=1))
@reason_option(Action.withdraw_content)
def crisis_withdraw(
    incident_id: str, items: tuple[int, ...], reason: str, idempotency_key: str | None
) -> Call:
    """Withdraw content items (by number): their open tasks are withdrawn."""
    return act(
        incident_id, Action.withdraw_content, idempotency_key, items=list(items), reason=reason
    )


@action_command(Action.de_escalate)
@reason_option(Action.de_escalate)
@click.option("--withdraw-open-tasks", is_flag=True, help="withdraw every task still open")
def crisis_de_escalate(
    incident_id: str, reason: str, withdraw_open_tasks: bool, idempotency_key: str | None
) -> Call:
    """Move the crisis to de-escalation."""
    return act(
        incident_id,
        Action.de_escalate,
        idempotency_key,
        reason=reason,
        withdraw_open_tasks=withdraw_open_tasks,
    )


crisis_re_escalate = reason_only_command(Action.re_escalate, "Back from de-escalation to active.")


crisis_review = reason_only_command(Action.start_review, "Start the post-incident review.")


crisis_close = reason_only_command(Action.close, "Close the review and the incident.")


@action_command(Action.submit_review_input)
@click.argument("text")
def crisis_review_input(incident_id: str, text: str, idempotency_key: str | None) -> Call:
    """Submit lessons learned during the review (TEXT, or '-' to read stdin)."""
    body = read_text(text)
    return act(incident_id, Action.submit_review_input, idempotency_key, text=body)


@action_command(Action.report_sightings)
@identifiers_input(required=True)
def crisis_sightings(
    incident_id: str, identifiers: list[AnyIdentifier], idempotency_key: str | None
) -> Call:
    """Report new copies seen (they become tasks for the other platforms)."""
    return act(incident_id, Action.report_sightings, idempotency_key, identifiers=identifiers)


@action_command(Action.report_false_positive)
@click.argument("item", type=click.IntRange(min=1))
@reason_option(Action.report_false_positive)
def crisis_false_positive(
    incident_id: str, item: int, reason: str, idempotency_key: str | None
) -> Call:
    """Report a content item as a false positive."""
    return act(incident_id, Action.report_false_positive, idempotency_key, item=item, reason=reason)

"""The table of actions is the protocol: every action, from every phase, by every role, with and
without a reason, gets the answer the protocol says, through the HTTP API on a real server; and
every row of `eucp.protocol.actions.ACTIONS` can be reached from the CLI and from the console.

The protocol is written out below (`PROTOCOL`), apart from the code's table, as
`../shared/domain.md` and docs/protocol.md state it, so that a wrong row fails here. From it: a
role the action is not for is refused (403, `actor.kind`), then a phase it does not start from
(409, `phase`), then a missing required reason (422, `reason`); anything else is accepted,
leads to the action's phase and records its decision. An incident that has ended (not
activated, closed) takes no action at all: 409 on `incident` to those who took part, 404 (as
if it did not exist) to anyone else.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from temporalio import workflow

from eucp.cli import main
from eucp.console.actions import FORMS, Submission
from eucp.protocol.actions import ACTIONS, Action, ActionRow
from eucp.protocol.decisions import DecisionKind
from eucp.protocol.identifiers import UrlIdentifier
from eucp.protocol.participants import Actor, Contact, ParticipantKind
from eucp.protocol.phases import FINAL, Phase
from eucp.protocol.refusal import HTTP_STATUS, RefusalKind
from eucp.protocol.state import Answer
from eucp.runtime.registry import Registry
from eucp.runtime.tokens import TokenStore
from tests.conftest import (
    AUDITOR,
    CHOOSY,
    COORDINATOR,
    FASTBOOK,
    MEMBER_STATE,
    Protocol,
    a_report,
)
from tests.http_steps import Api, serving
from tests.protocol_steps import ALL_MET
from workflows.crisis import CrisisWorkflow

GIFCT = Actor(id="gifct", kind=ParticipantKind.gifct)
CALLERS = [COORDINATOR, MEMBER_STATE, FASTBOOK, GIFCT, AUDITOR]  # one of each role that calls
STAFF = {ParticipantKind.coordinator, ParticipantKind.auditor}
ITEMS = 5  # identifiers at activation: items 1-5 in every incident past assessing
# the way from a report to each phase: the actions a coordinator takes, in order
ROUTE: dict[Phase, list[Action]] = {
    Phase.reported: [],
    Phase.assessing: [Action.assess],
    Phase.not_activated: [Action.assess, Action.decline],
    Phase.active: [Action.assess, Action.activate],
    Phase.de_escalating: [Action.assess, Action.activate, Action.de_escalate],
    Phase.review: [Action.assess, Action.activate, Action.de_escalate, Action.start_review],
    Phase.closed: [
        *[Action.assess, Action.activate, Action.de_escalate, Action.start_review],
        Action.close,
    ],
}


C, M, P, G, S = "coordinator", "member_state", "platform", "gifct", "system"
TAKEDOWN = "active de_escalating"
OPEN = "reported assessing active de_escalating review"


@dataclass(frozen=True)
class Rule:
    """One action as the protocol states it."""

    roles: frozenset[ParticipantKind]
    from_phases: frozenset[Phase]
    to: Phase | None
    reason_required: bool
    decision: DecisionKind

    @classmethod
    def of(cls, roles: str, phases: str, to: str, reason: str, decision: str) -> Rule:
        return cls(
            frozenset(ParticipantKind(r) for r in roles.split()),
            frozenset(Phase(p) for p in phases.split()),
            Phase(to) if to != "-" else None,
            reason == "reason",
            DecisionKind(decision),
        )


# action: who may take it, from which phases, to which phase (- stays), reason, decision recorded
PROTOCOL: dict[Action, Rule] = {
    Action.assess: Rule.of(C, "reported assessing", "assessing", "-", "assessed"),
    Action.activate: Rule.of(C, "assessing", "active", "reason", "activated"),
    Action.decline: Rule.of(C, "assessing", "not_activated", "reason", "not_activated"),
    Action.renew_activation: Rule.of(C, "active", "-", "reason", "activation_renewed"),
    Action.set_clocks: Rule.of(C, OPEN, "-", "reason", "clocks_set"),
    Action.join_platform: Rule.of(C, TAKEDOWN, "-", "-", "platform_joined"),
    Action.suspend_platform: Rule.of(C, TAKEDOWN, "-", "reason", "platform_suspended"),
    Action.flag_threat: Rule.of(f"{C} {M} {P} {G}", OPEN, "-", "-", "imminent_threat_flagged"),
    Action.post_update: Rule.of(C, OPEN, "-", "-", "situation_updated"),
    Action.link_protocol: Rule.of(C, OPEN, "-", "-", "protocol_linked"),
    Action.add_content: Rule.of(C, TAKEDOWN, "-", "-", "content_added"),
    Action.issue_order: Rule.of(M, TAKEDOWN, "-", "-", "removal_order_issued"),
    Action.clarify_order: Rule.of(M, f"{TAKEDOWN} review", "-", "reason", "order_clarified"),
    Action.request_scrutiny: Rule.of(P, f"{TAKEDOWN} review", "-", "reason", "scrutiny_requested"),
    Action.decide_scrutiny: Rule.of(M, f"{TAKEDOWN} review", "-", "reason", "scrutiny_decided"),
    Action.withdraw_content: Rule.of(C, f"{TAKEDOWN} review", "-", "reason", "content_withdrawn"),
    Action.report_sightings: Rule.of(f"{P} {C} {G} {M}", TAKEDOWN, "-", "-", "sighting_reported"),
    Action.report_false_positive: Rule.of(
        f"{P} {G}", f"{TAKEDOWN} review", "-", "reason", "false_positive_reported"
    ),
    Action.de_escalate: Rule.of(f"{C} {S}", "active", "de_escalating", "reason", "de_escalated"),
    Action.re_escalate: Rule.of(C, "de_escalating", "active", "reason", "re_escalated"),
    Action.start_review: Rule.of(C, "de_escalating", "review", "-", "review_started"),
    Action.submit_review_input: Rule.of(f"{C} {M} {P} {G}", "review", "-", "-", "review_input"),
    Action.close: Rule.of(f"{C} {S}", "review", "closed", "-", "closed"),
}


ORDER = {  # the Annex I fields of a removal order to fastbook, as its authority sends them
    "issuing_authority": "OCLCTIC",
    "addressee": "Fastbook Ltd",
    "platform": FASTBOOK.id,
    "contact_point": "legal@fastbook.example.test",
    "host_member_state": "IE",
    "issued_at": "2026-03-15T02:00:00+00:00",
    "reference": "FR-2026-0042",
    "reasons": "terrorist content within the meaning of Art. 2(7)",
}


# actions on an order already issued: here they name none, so past the table's rules they are
# refused as about an unknown order; tests/test_orders.py has them accepted, order by order
ABOUT_AN_ORDER = {Action.clarify_order, Action.request_scrutiny, Action.decide_scrutiny}
# every registered platform takes part from the activation here, so past the table's rules a
# platform brought in takes part already; tests/test_participation.py brings one in
ALREADY_IN = {Action.join_platform}


@dataclass(frozen=True)
class Expected:
    """The answer the table gives: a status, and for a refusal the field and the rule's words."""

    status: int
    field: str = ""
    rule: str = ""
    phase: Phase | None = None  # where an accepted action leads


def expected(row: ActionRow, phase: Phase, caller: Actor, with_reason: bool) -> Expected:
    """What the protocol says `caller` gets for `row`'s action in `phase`."""
    rule = PROTOCOL[row.action]
    if phase in FINAL:
        took_part = caller.kind in STAFF or (
            caller.kind is ParticipantKind.platform and phase is Phase.closed
        )
        if took_part:
            return Expected(409, "incident", "the incident is closed")
        return Expected(404, "incident_id", "no such incident")
    if caller.kind not in rule.roles:
        return Expected(HTTP_STATUS[RefusalKind.forbidden], "actor.kind", "may be taken by")
    if phase not in rule.from_phases:
        return Expected(HTTP_STATUS[RefusalKind.conflict], "phase", "is allowed in")
    if rule.reason_required and not with_reason:
        return Expected(HTTP_STATUS[RefusalKind.invalid], "reason", "requires a reason")
    if row.action in ABOUT_AN_ORDER:
        return Expected(HTTP_STATUS[RefusalKind.not_found], "reference", "removal order")
    if row.action in ALREADY_IN:
        return Expected(HTTP_STATUS[RefusalKind.conflict], "platform", "takes part already")
    return Expected(200, phase=rule.to or phase)


def uuid4_ref() -> str:
    return f"FR-2026-{uuid.uuid4().hex[:8]}"


def body(row: ActionRow, caller: Actor, with_reason: bool) -> dict[str, Any]:
    """A body the row's command takes: new identifiers, an item the incident has."""
    fresh = [{"kind": "url", "value": f"https://copies.example/{uuid.uuid4().hex}"}]
    fields: dict[str, Any] = {
        Action.assess: {"assessment": ALL_MET.model_dump(mode="json")},
        Action.activate: {"identifiers": fresh},
        Action.add_content: {"identifiers": fresh},
        Action.report_sightings: {"identifiers": fresh},
        # each order its own reference, as an authority gives it
        Action.issue_order: {"identifiers": fresh, "order": ORDER | {"reference": uuid4_ref()}},
        Action.withdraw_content: {"items": [1]},
        Action.set_clocks: {"changes": {"act_within": "PT45M"}},
        Action.flag_threat: {"text": "a second attack announced", "member_states": ["FR"]},
        Action.join_platform: {"platform": FASTBOOK.id},
        Action.suspend_platform: {"platform": "slowtube"},
        Action.post_update: {"text": "the attacker is in custody"},
        Action.link_protocol: {
            "protocol": "gifct_cip",
            "reference": f"CIP-{uuid.uuid4().hex[:6]}",
            "activated_at": "2026-03-15T02:10:00+00:00",
        },
        **{key: {"reference": "NO-SUCH-ORDER"} for key in ABOUT_AN_ORDER},
        Action.decide_scrutiny: {"reference": "NO-SUCH-ORDER", "outcome": "upheld"},
        # each reporter its own item, so that no report repeats another
        Action.report_false_positive: {"item": 2 if caller.kind is ParticipantKind.platform else 3},
        Action.submit_review_input: {"text": f"lessons learned by {caller.id}"},
    }.get(row.action, {})
    return fields | ({"reason": "the criteria and the evidence say so"} if with_reason else {})


def cases() -> Iterator[tuple[ActionRow, Phase, Actor, bool]]:
    for row in ACTIONS.values():
        for phase in Phase:
            for caller in CALLERS:
                for with_reason in (True, False):
                    yield row, phase, caller, with_reason


def moves(case: tuple[ActionRow, Phase, Actor, bool]) -> bool:
    """Whether the case, accepted, moves its incident to another phase (it needs its own)."""
    row, phase, caller, with_reason = case
    answer = expected(row, phase, caller, with_reason)
    return answer.status == 200 and answer.phase is not phase


class Crises:
    """Incidents brought to a phase through the service, as a coordinator would."""

    def __init__(self, eucp: Protocol, registry: Registry) -> None:
        self.eucp = eucp
        self.registry = registry

    async def in_phase(self, phase: Phase) -> str:
        incident = f"inc-table-{uuid.uuid4().hex[:10]}"
        await self.eucp.incidents.report(incident, a_report(), self.registry.public())
        coordinator = self.eucp.incidents.as_participant(incident, COORDINATOR)
        first = [UrlIdentifier(value=f"https://first.example/{n}") for n in range(1, ITEMS + 1)]
        fields: dict[Action, dict[str, Any]] = {
            Action.assess: {"assessment": ALL_MET},
            Action.activate: {"reason": "criteria met", "identifiers": first},
        }
        for action in ROUTE[phase]:
            await coordinator.act(action, **({"reason": "as planned"} | fields.get(action, {})))
        if phase in FINAL:  # its workflow has ended, not only reached its last phase
            await self.eucp.incidents.result(incident)
        return incident


@pytest.fixture
async def api(eucp: Protocol) -> AsyncIterator[Api]:
    """The API on loopback, with a GIFCT participant beside the conftest's registry."""
    registry = Registry.load(eucp.settings.registry_path)
    gifct = Contact(id=GIFCT.id, kind=GIFCT.kind, name="GIFCT")
    Registry(participants=[*registry.participants, gifct]).save(eucp.settings.registry_path)
    store = TokenStore(eucp.settings.tokens_path)
    tokens = {caller.id: store.issue(caller.id) for caller in CALLERS}
    async with serving(eucp.settings, eucp.env.client) as base:
        client = Api(base, tokens)
        try:
            yield client
        finally:
            await client.close()


async def test_every_action_from_every_phase_by_every_role_gets_the_tables_answer(
    eucp: Protocol, api: Api
) -> None:
    crises = Crises(eucp, Registry.load(eucp.settings.registry_path))
    shared = dict(
        zip(Phase, await asyncio.gather(*(crises.in_phase(p) for p in Phase)), strict=True)
    )
    all_cases = list(cases())
    own = [case for case in all_cases if moves(case)]
    incidents = await asyncio.gather(*(crises.in_phase(phase) for _, phase, _, _ in own))
    incident_of = {case: incident for case, incident in zip(own, incidents, strict=True)}
    limit = asyncio.Semaphore(8)
    wrong: list[str] = []
    recorded: dict[str, tuple[str, Action]] = {}  # decision id -> (incident, action)

    async def probe(case: tuple[ActionRow, Phase, Actor, bool]) -> None:
        row, phase, caller, with_reason = case
        want = expected(*case)
        incident = incident_of.get(case, shared[phase])
        said = f"{row.action} in {phase} by {caller.kind}, reason {with_reason}"
        async with limit:
            try:
                answer = await api.as_(caller.id).post(
                    f"/v1/incidents/{incident}/{row.path}", json=body(row, caller, with_reason)
                )
            except httpx.TimeoutException:
                wrong.append(f"{said}: no answer in time")
                return
        if answer.status_code != want.status:
            wrong.append(f"{said}: {answer.status_code} {answer.text[:200]}, not {want.status}")
        elif want.status == 200:
            if answer.json()["phase"] != want.phase:
                wrong.append(f"{said}: led to {answer.json()['phase']}, not {want.phase}")
            recorded.update({d: (incident, row.action) for d in answer.json()["decisions"]})
        else:
            error = answer.json()["error"]
            kind = {404: "not_found", 409: "conflict", 403: "forbidden", 422: "invalid"}
            if (error["field"], error["refusal"]) != (want.field, kind[want.status]) or (
                want.rule not in error["rule"]
            ):
                wrong.append(f"{said}: {error}, not {want}")

    await asyncio.gather(*(probe(case) for case in all_cases))
    kinds = {
        row.decision.decision_id: row.decision.kind
        for incident in {incident for incident, _ in recorded.values()}
        for row in eucp.ledger.rows(incident)
    }
    for decision_id, (_, action) in recorded.items():
        if kinds.get(decision_id) is not PROTOCOL[action].decision:
            wrong.append(f"{action} recorded {kinds.get(decision_id)} as {decision_id}")
    assert not wrong, f"{len(wrong)} of {len(all_cases)} answers differ from the table:\n" + (
        "\n".join(wrong[:40])
    )
    # every action was accepted somewhere, and recorded
    assert {action for _, action in recorded.values()} == set(
        PROTOCOL
    ) - ABOUT_AN_ORDER - ALREADY_IN


def test_every_row_names_an_update_that_takes_its_command() -> None:
    updates = workflow._Definition.must_from_class(CrisisWorkflow).updates
    for row in ACTIONS.values():
        update = updates[row.update]
        assert (update.arg_types, update.ret_type) == ([row.command], Answer), row.action


def test_every_row_has_its_cli_command_and_its_console_form() -> None:
    crisis = main.commands["crisis"]
    assert isinstance(crisis, type(main))
    for row in ACTIONS.values():
        assert row.cli in crisis.commands, f"eucp crisis {row.cli} is missing ({row.action})"
        usage = CliRunner().invoke(main, ["crisis", row.cli, "--help"])
        assert usage.exit_code == 0, usage.output
        if ParticipantKind.coordinator in row.roles:  # the console is the coordinators'
            form = FORMS[row.action]
            asked = {"actor", *Submission(form).fields()}
            required = {name for name, f in row.command.model_fields.items() if f.is_required()}
            assert required <= asked, f"the {row.action} form cannot send {required - asked}"
        else:
            assert row.action not in FORMS


async def test_each_cli_command_reaches_its_rows_update(
    eucp: Protocol, api: Api, tmp_path: Path
) -> None:
    """As an auditor, every action is refused by the workflow with a rule that names it: the
    command reached its own row, through the API and the service."""
    incident = await Crises(eucp, Registry.load(eucp.settings.registry_path)).in_phase(Phase.active)
    env = {"EUCP_API_URL": api.base, "EUCP_TOKEN": api.tokens[AUDITOR.id]}
    order_file = tmp_path / "order.json"
    order_file.write_text(json.dumps(ORDER))
    arguments: dict[Action, list[str]] = {
        Action.assess: ["--criterion", "real_world_event=met:the attack is under way"],
        Action.activate: [],
        Action.add_content: ["https://copies.example/cli"],
        Action.issue_order: ["https://copies.example/cli", "--order", str(order_file)],
        Action.report_sightings: ["https://copies.example/cli"],
        Action.withdraw_content: ["1"],
        Action.report_false_positive: ["1"],
        Action.submit_review_input: ["lessons"],
        Action.set_clocks: ["--set", "act_within=45m"],
        Action.join_platform: [CHOOSY.id],
        Action.suspend_platform: [CHOOSY.id],
        Action.flag_threat: ["a second attack announced"],
        Action.post_update: ["the attacker is in custody"],
        Action.link_protocol: ["--protocol", "gifct_cip", "--reference", "CIP-1"],
        **{key: ["--reference", "FR-2026-0042"] for key in ABOUT_AN_ORDER},
        Action.decide_scrutiny: ["--reference", "FR-2026-0042", "--outcome", "upheld"],
    }
    for row in ACTIONS.values():
        reason = ["--reason", "because"] if "--reason" in _options(row.cli) else []
        args = ["crisis", row.cli, incident, *arguments.get(row.action, []), *reason]
        result = await asyncio.to_thread(CliRunner().invoke, main, args, env=env)
        assert result.exit_code != 0, (row.cli, result.output)
        assert f"{row.action} may be taken by" in result.output + result.stderr, (
            row.cli,
            result.output,
            result.stderr,
        )


def _options(command: str) -> str:
    return CliRunner().invoke(main, ["crisis", command, "--help"]).output


async def test_each_console_form_reaches_its_rows_update(eucp: Protocol, api: Api) -> None:
    """A coordinator's confirmed form, sent where its action is not allowed: the Update refuses
    it, and the page names the action's own rule, so the form reached its row. An action open
    in every phase of a running crisis (setting the clocks) is accepted and recorded instead."""
    crises = Crises(eucp, Registry.load(eucp.settings.registry_path))
    assessing, active = await asyncio.gather(
        crises.in_phase(Phase.assessing), crises.in_phase(Phase.active)
    )
    async with httpx.AsyncClient(base_url=api.base, follow_redirects=True) as browser:
        sign_in = await browser.get("/console/sign-in")
        await browser.post(
            "/console/sign-in",
            data={"csrf": _csrf(sign_in.text), "token": api.tokens[COORDINATOR.id]},
        )
        for action, form in FORMS.items():
            allowed = ACTIONS[action].from_phases
            incident = active if Phase.assessing in allowed else assessing
            page = await browser.get(f"/console/incidents/{incident}")
            data = {
                "csrf": _csrf(page.text),
                "confirmed": "yes",
                "nonce": uuid.uuid4().hex,
                "reason": "because",
                "identifiers": "https://copies.example/console",
                "items": "1",
                "text": "lessons",
                "changes": "act_within=45m",
                "platform": CHOOSY.id,
                "protocol": "gifct_cip",
                "reference": "CIP-1",
            }
            answer = await browser.post(
                f"/console/incidents/{incident}/actions/{action}", data=data
            )
            if {Phase.assessing, Phase.active} <= allowed:
                kinds = [row.decision.kind for row in eucp.ledger.rows(incident)]
                assert ACTIONS[action].decision in kinds, (action, answer.text[-2000:])
                continue
            assert f"Refused: {form.label}" in answer.text, (action, answer.text[-2000:])
            assert f"{action} is allowed in" in answer.text, action


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)

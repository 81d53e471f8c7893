"""CrisisWorkflow: one incident from report to closed review.

Coordinator decisions and participant reports are Updates whose validators ask the phase
machine; a rejected Update never enters history. Takedown tasks live in one
PlatformTasksWorkflow per platform, so this history stays small at any crisis size.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar, cast

from temporalio import workflow
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.platforms import PlatformActivities, StartPlatforms
    from eucp.protocol.actions import ACTIONS, Action, check
    from eucp.protocol.clocks import moment_in_words, spoken
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
        OrderChange,
        PostUpdate,
        ReportFalsePositive,
        ReportSightings,
        RequestScrutiny,
        SetClocks,
        SightingRequest,
        SightingsBatch,
        SubmitReviewInput,
        SuspendPlatform,
        WithdrawContent,
        WithdrawTasks,
    )
    from eucp.protocol.decisions import DecisionKind
    from eucp.protocol.identifiers import AnyIdentifier, HashIdentifier, IdentifierIndex, Verdict
    from eucp.protocol.incident import check_grounds
    from eucp.protocol.notifications import NotificationKind
    from eucp.protocol.orders import (
        SCRUTINY_WINDOW,
        OrderRecord,
        ScrutinyDecision,
        ScrutinyOutcome,
        ScrutinyRequest,
        check_decision,
        check_request,
        issued_order,
        orders_seen_by,
        your_order,
    )
    from eucp.protocol.participants import SYSTEM, Actor, Participant, ParticipantKind
    from eucp.protocol.phases import FINAL, Phase
    from eucp.protocol.refusal import Refusal, RefusalKind
    from eucp.protocol.state import (
        Answer,
        CrisisResult,
        CrisisState,
        CrisisStatus,
        PhaseChange,
        PlatformStart,
        PlatformState,
        PlatformSummary,
        Rejection,
        SightingAnswers,
        SightingOutcome,
    )
    from eucp.protocol.tasks import (
        ContentItem,
        LegalBasis,
        OrderDetails,
        RemovalOrder,
        Stage,
        addressees_of,
    )

from workflows.answers import remember, request_key
from workflows.effects import LEDGER_RETRY, Draft, Effects, sleep_until
from workflows.errors import as_update_errors, moving
from workflows.outbox import BYTES_BOUNDED, Outbox, size_of
from workflows.platform import PlatformTasksWorkflow, platform_workflow_id
from workflows.search import changes

REVIEW_REPORT = "review-report"
FAN_OUT_BESIDE = "fan-out-beside-the-protocol"
ITEMS_BY_REFERENCE = "items-by-reference"
TASKS_ADDRESSED = "tasks-addressed"  # orders, bound and named identifiers go to their platforms
ORDERS_KEPT = "tco-orders-kept"  # orders kept for scrutiny (Art. 4) and clarification
ON_EVIDENCE = "activation-on-evidence"  # met needs evidence; activation all met or overridden
LAPSES = "activation-lapses"  # an activation lasts `activation_for` unless renewed
CLOCKS_RECORDED = "clocks-recorded"  # the clocks in force are in the ledger
PARTICIPANTS_ONLY = "told-are-the-incidents-participants"  # not every registered participant
ANSWERS_ACROSS_RUNS = "answers-across-runs"  # an Update's answer kept by its request id
SEARCHABLE = "search-attributes"  # phase, platforms, reporter and exercise kept in visibility
# more items than this go to a platform by reference (the ledger), fewer in the signal itself
INLINE_ITEMS = 100
# and an activation whose platforms would get more item copies than this in all (items x
# platforms) sends them all by reference: 200 platforms x 100 items inline passed the 4 MB
# that Temporal takes of one workflow task's completion, and the crisis failed
INLINE_COPIES = 2000
COPIES_BOUNDED = "activation-copies-bounded"
# nor more bytes of items than this in all (`BYTES_BOUNDED`): Temporal takes 2 MB of one
# payload, and 60 URLs of 2,048 characters to 30 platforms are 3.9 MB
INLINE_BYTES = 1_000_000
# an activation's platform workflows started together by one activity, not as children one by
# one (`activities.platforms`)
PLATFORMS_STARTED_TOGETHER = "activation-platforms-started-together"
EXERCISE = "exercise"  # the memo key that marks an exercise's runs
ANSWERS_KEPT = 1000  # request ids remembered across runs for retried merged calls
FORBIDDEN, INVALID, NOT_FOUND = RefusalKind.forbidden, RefusalKind.invalid, RefusalKind.not_found
Check = TypeVar("Check", bound=Callable[..., None])


Handler = TypeVar("Handler", bound=Callable[..., Awaitable[Answer]])


def _answered_once(handler: Handler) -> Handler:
    """Gives an Update retried with its request id the first answer again, with no second
    effect, also when the retry reaches the next run: Temporal dedupes Update ids within one
    run only, so the answers travel in the state (`answered`) across continue-as-new."""

    @functools.wraps(handler)
    async def answer(crisis: CrisisWorkflow, *arguments: Any) -> Answer:
        key = request_key()
        if key is not None and key in crisis.state.answered:
            return crisis.state.answered[key].model_copy()
        given = await handler(crisis, *arguments)
        if key is not None and workflow.patched(ANSWERS_ACROSS_RUNS):
            remember(crisis.state.answered, key, given, ANSWERS_KEPT)
        return given

    return cast(Handler, answer)


def _as_validator(check: Check) -> Check:
    """Makes a check of an Update's argument its validator: refused at once while the run
    drains for continue-as-new, and a `Refusal` leaves as the Update's error, so a refused
    Update never enters history. The validator keeps the check's signature, which Temporal
    compares with the Update's."""

    @functools.wraps(check)
    def validate(crisis: CrisisWorkflow, *arguments: Any) -> None:
        key = request_key()
        if key is not None and key in crisis.state.answered:
            return  # answered in an earlier run: its answer is given again, nothing checked
        with as_update_errors():
            crisis._open()
            check(crisis, *arguments)

    return cast(Check, validate)


@workflow.defn
class CrisisWorkflow:
    @workflow.init
    def __init__(self, state: CrisisState) -> None:
        self.state = state
        self.effects = Effects(
            state.incident_id,
            "crisis",
            state.counters,
            state.sla.deliver_within,
            exercise=state.report.exercise,
        )
        self.outbox = Outbox(
            state.incident_id, self.effects, merge_up_to=INLINE_ITEMS, inline_bytes=INLINE_BYTES
        )
        self.index = IdentifierIndex.restore(
            state.index, state.pdq_match_distance, state.pdq_min_quality
        )
        self.lock = asyncio.Lock()
        self.changed = False
        self.moving = False

    @workflow.run
    async def run(self, state: CrisisState) -> CrisisResult:
        async with self._turn():
            pass  # the report is recorded before anything else happens
        while self.state.phase not in FINAL:
            self.changed = False
            await sleep_until(self._next_deadline(), lambda: self.changed)
            async with self._turn():
                await self._on_deadlines()
            if workflow.info().is_continue_as_new_suggested():
                await self._continue_as_new()
        await workflow.wait_condition(lambda: set(self.state.finals) >= set(self.state.platforms))
        await self.effects.settle()
        return CrisisResult(
            incident_id=self.state.incident_id,
            phase=self.state.phase,
            phases=self.state.phases,
            items=self.state.items,
            decisions=self.state.counters.decisions,
            platforms=self.state.finals,
        )

    # ---- coordinator decisions -------------------------------------------------------------

    @workflow.update
    @_answered_once
    async def assess(self, cmd: Assess) -> Answer:
        async with self._turn():
            self._check_assess(cmd, on_evidence=workflow.patched(ON_EVIDENCE))
            answer = await self._act(
                Action.assess,
                cmd,
                assessment=cmd.assessment.model_dump(mode="json"),
                all_met=cmd.assessment.all_met(),
            )
            self.state.assessment = cmd.assessment
            return answer

    @assess.validator
    @_as_validator
    def _validate_assess(self, cmd: Assess) -> None:
        self._check_assess(cmd)

    def _check_assess(self, cmd: Assess, on_evidence: bool = True) -> None:
        self._check(Action.assess, cmd)
        if on_evidence:
            cmd.assessment.check_evidence()

    @workflow.update
    @_answered_once
    async def activate(self, cmd: Activate) -> Answer:
        async with self._turn():
            self._check_activate(
                cmd,
                addressing=workflow.patched(TASKS_ADDRESSED),
                on_evidence=workflow.patched(ON_EVIDENCE),
            )
            platforms = cmd.platforms or self.state.ids_of(ParticipantKind.platform)
            content = [*self.state.report.first_identifiers, *cmd.identifiers]
            items, answer = self._admit(content, cmd.basis, cmd.actor.id)
            self.state.platforms = platforms  # they take part, and are told, from here
            answer = await self._act(
                Action.activate,
                cmd,
                answer,
                platforms=platforms,
                items=[i.model_dump(mode="json") for i in items],
                duplicates=answer.duplicates,
                low_quality=answer.low_quality,
                **self._grounds(cmd),
                **self._lasting(),
            )
            recorded: list[str] = []
            if workflow.patched(ITEMS_BY_REFERENCE) and (
                len(items) > INLINE_ITEMS
                or (
                    len(items) * len(platforms) > INLINE_COPIES and workflow.patched(COPIES_BOUNDED)
                )
                or (
                    size_of(items) * len(platforms) > INLINE_BYTES
                    and workflow.patched(BYTES_BOUNDED)
                )
            ):
                items, recorded = [], answer.decisions  # as `_fan_out` does
            starts = {
                platform_workflow_id(self.state.incident_id, p): self._platform_start(
                    p, [i for i in items if i.addressed_to(p)], recorded
                )
                for p in platforms
            }
            if workflow.patched(PLATFORMS_STARTED_TOGETHER):
                await workflow.execute_activity_method(
                    PlatformActivities.start_platforms,
                    StartPlatforms(task_queue=workflow.info().task_queue, starts=starts),
                    start_to_close_timeout=timedelta(minutes=2),
                    retry_policy=LEDGER_RETRY,  # the platforms must start: retry, backing off
                )
            else:
                await asyncio.gather(*(self._start_child(wid, s) for wid, s in starts.items()))
            return answer

    @activate.validator
    @_as_validator
    def _validate_activate(self, cmd: Activate) -> None:
        self._check_activate(cmd)

    def _grounds(self, cmd: Activate) -> dict[str, Any]:
        """What an activation rests on, for its decision: an override is recorded as one."""
        if not workflow.patched(ON_EVIDENCE):
            return {}
        if cmd.override and cmd.override.strip():
            return {"override": cmd.override}
        return {"override": None}

    def _lasting(self) -> dict[str, Any]:
        """Starts the activation's period (LAPSES) and says when it ends, for its decision."""
        if not workflow.patched(LAPSES):
            return {}
        self.state.activation_expires = workflow.now() + self.state.sla.activation_for
        self.state.lapse_reminded = False
        return {"expires": self.state.activation_expires.isoformat()}

    def _check_activate(
        self, cmd: Activate, addressing: bool = True, on_evidence: bool = True
    ) -> None:
        self._check(Action.activate, cmd)
        if on_evidence:
            check_grounds(self.state.assessment, cmd.override)
        for i, platform in enumerate(cmd.platforms or []):
            if platform not in self.state.ids_of(ParticipantKind.platform):
                raise Refusal(
                    f"platforms[{i}]", f"{platform!r} is not a registered platform", INVALID
                )
        if cmd.platforms == [] or not self.state.ids_of(ParticipantKind.platform):
            raise Refusal(
                "platforms", "an activation needs at least one participating platform", INVALID
            )
        if addressing:
            self._check_referral(cmd.basis)

    @workflow.update
    @_answered_once
    async def decline(self, cmd: Command) -> Answer:
        async with self._turn():
            self._check(Action.decline, cmd)
            return await self._act(Action.decline, cmd)

    @decline.validator
    @_as_validator
    def _validate_decline(self, cmd: Command) -> None:
        self._check(Action.decline, cmd)

    @workflow.update
    @_answered_once
    async def add_content(self, cmd: AddContent) -> Answer:
        async with self._turn():
            self._check(Action.add_content, cmd)
            if workflow.patched(TASKS_ADDRESSED):
                self._check_referral(cmd.basis)
                self._check_named(cmd.addressees, self.state.taking_part)
            items, answer = self._admit(cmd.identifiers, cmd.basis, cmd.actor.id, cmd.addressees)
            answer = await self._act(
                Action.add_content,
                cmd,
                answer,
                items=[i.model_dump(mode="json") for i in items],
                duplicates=answer.duplicates,
                low_quality=answer.low_quality,
            )
            await self._fan_out([(answer.decisions[0], items)])
            return answer

    @add_content.validator
    @_as_validator
    def _validate_add_content(self, cmd: AddContent) -> None:
        self._check(Action.add_content, cmd)
        self._check_referral(cmd.basis)
        self._check_named(cmd.addressees, self.state.taking_part)

    @workflow.update
    @_answered_once
    async def issue_order(self, cmd: IssueOrder) -> Answer:
        """A Member State authority's removal order: in its own name and State, a task for its
        addressee alone, with the one-hour clock of TCO Art. 3(3)."""
        async with self._turn():
            keeping = workflow.patched(ORDERS_KEPT)
            order = self._check_order(cmd, keeping)
            # an order is its own legal act: content seen before is its item all the same
            items, answer = self._admit(cmd.identifiers, order, cmd.actor.id, every=True)
            kept = OrderRecord.of(order, [i.no for i in items], workflow.now())
            if kept.cross_border:  # a copy to the host State at once (TCO Art. 4(1))
                kept.copy_to = self._authorities_of(kept.host_member_state)
            answer = await self._act(
                Action.issue_order,
                cmd,
                answer,
                order=order.model_dump(mode="json"),
                items=[i.model_dump(mode="json") for i in items],
                **(
                    {"copy_to": kept.copy_to, "scrutiny_until": kept.window_closes.isoformat()}
                    if keeping and kept.cross_border
                    else {}
                ),
            )
            await self._fan_out([(answer.decisions[0], items)])
            if keeping:
                self.state.orders[kept.reference] = kept
                self.changed = True  # its scrutiny window is a clock of the crisis
                self._send_copy(kept, order, items)
            return answer

    @issue_order.validator
    @_as_validator
    def _validate_issue_order(self, cmd: IssueOrder) -> None:
        self._check_order(cmd)

    def _send_copy(self, kept: OrderRecord, order: RemovalOrder, items: list[ContentItem]) -> None:
        """A cross-border order goes to the host Member State's authorities as it is issued,
        with the 72 hours they have to scrutinise it (TCO Art. 4(1)-(2))."""
        if not kept.copy_to:
            return
        self.effects.notify(
            kept.copy_to,
            NotificationKind.scrutiny_copy,
            f"Removal order {kept.reference} from {kept.issuing_member_state} to {kept.platform}, "
            f"established in {kept.host_member_state}: you may scrutinise it within 72 hours",
            {
                "order": order.model_dump(mode="json"),
                "identifiers": [i.identifier.model_dump(mode="json") for i in items],
                "scrutiny_until": kept.window_closes,
            },
        )

    def _check_order(self, cmd: IssueOrder, keeping: bool = True) -> RemovalOrder:
        """The order as issued: by the authority's own Member State, to a platform that takes
        part, for content that platform hosts, under a reference of its own."""
        self._check(Action.issue_order, cmd)
        if keeping and (same := self.state.orders.get(cmd.order.reference)) is not None:
            rule = (
                f"order {same.reference} was issued already, by {same.issuer} at "
                f"{moment_in_words(same.received_at)}: give each order its own reference"
            )
            raise Refusal("order.reference", rule)
        country = next(p.country for p in self.state.participants if p.id == cmd.actor.id)
        if country is None:
            rule = (
                f"{cmd.actor.id} has no country in the registry: a competent authority issues "
                "orders as its Member State (TCO Art. 3)"
            )
            raise Refusal("actor", rule, FORBIDDEN)
        self._check_addressee(cmd.identifiers, cmd.order)
        return cmd.order.issued_by(country, cmd.actor.id)

    @workflow.update
    @_answered_once
    async def withdraw_content(self, cmd: WithdrawContent) -> Answer:
        async with self._turn():
            self._check_withdraw(cmd)
            answer = await self._act(Action.withdraw_content, cmd, items=cmd.items)
            await self._tell_platforms(
                WithdrawTasks(actor=cmd.actor, reason=cmd.reason or "", items=cmd.items)
            )
            return answer

    @withdraw_content.validator
    @_as_validator
    def _validate_withdraw(self, cmd: WithdrawContent) -> None:
        self._check_withdraw(cmd)

    def _check_withdraw(self, cmd: WithdrawContent) -> None:
        self._check(Action.withdraw_content, cmd)
        self._check_items("items", cmd.items)

    # ---- who takes part, and what they are told ---------------------------------------------

    @workflow.update
    @_answered_once
    async def join_platform(self, cmd: JoinPlatform) -> Answer:
        """A platform brought in mid-crisis (or back from a suspension) is given the open
        content meant for it, and told from then on; nothing from before is sent to it."""
        async with self._turn():
            entry = self._check_join(cmd)
            back = entry.id in self.state.platforms
            answer = await self._act(Action.join_platform, cmd, platform=entry.id, back=back)
            others = [p for p in self.state.participants if p.id != entry.id]
            self.state.participants = [*others, entry]  # as the registry has it now
            if back:
                self.state.suspended.remove(entry.id)
                self.outbox.rejoin(entry.id)
            else:
                self.state.platforms.append(entry.id)
                await self._start_child(
                    platform_workflow_id(self.state.incident_id, entry.id),
                    self._platform_start(entry.id, [], [], joined=True),
                )
            return answer

    @join_platform.validator
    @_as_validator
    def _validate_join(self, cmd: JoinPlatform) -> None:
        self._check_join(cmd)

    def _check_join(self, cmd: JoinPlatform) -> Participant:
        self._check(Action.join_platform, cmd)
        entry = cmd.registered
        if entry is None or entry.id != cmd.platform or entry.kind is not ParticipantKind.platform:
            raise Refusal("platform", f"{cmd.platform!r} is not a registered platform", INVALID)
        if cmd.platform in self.state.platforms and cmd.platform not in self.state.suspended:
            raise Refusal("platform", f"{cmd.platform} takes part already")
        return entry

    @workflow.update
    @_answered_once
    async def suspend_platform(self, cmd: SuspendPlatform) -> Answer:
        """A platform's participation suspended: its open tasks withdrawn, nothing more given
        or told to it until a coordinator brings it in again."""
        async with self._turn():
            self._check_suspend(cmd)
            answer = await self._act(Action.suspend_platform, cmd, platform=cmd.platform)
            self.state.suspended.append(cmd.platform)
            reason = f"participation suspended: {cmd.reason}"
            self.outbox.withdraw(cmd.platform, WithdrawTasks(actor=cmd.actor, reason=reason))
            return answer

    @suspend_platform.validator
    @_as_validator
    def _validate_suspend(self, cmd: SuspendPlatform) -> None:
        self._check_suspend(cmd)

    def _check_suspend(self, cmd: SuspendPlatform) -> None:
        self._check(Action.suspend_platform, cmd)
        if cmd.platform not in self.state.platforms:
            rule = f"{cmd.platform} does not take part in this takedown"
            raise Refusal("platform", rule, NOT_FOUND)
        if cmd.platform in self.state.suspended:
            raise Refusal("platform", f"{cmd.platform} is suspended already")

    @workflow.update
    @_answered_once
    async def flag_threat(self, cmd: FlagThreat) -> Answer:
        """Information on an imminent threat to life goes at once to the authorities of the
        Member States concerned (the affected ones if none is named) and to the coordinators,
        the EU IRU at Europol (TCO Art. 14(5))."""
        async with self._turn():
            self._check(Action.flag_threat, cmd)
            concerned = cmd.member_states or self.state.report.affected_member_states
            answer = await self._act(
                Action.flag_threat, cmd, member_states=concerned, text=cmd.text
            )
            # the States concerned read the incident from now on
            self.state.threatened += [s for s in concerned if s not in self.state.threatened]
            authorities = [a for country in concerned for a in self._authorities_of(country)]
            self.effects.notify(
                [*authorities, *self.state.ids_of(ParticipantKind.coordinator)],
                NotificationKind.imminent_threat,
                f"Imminent threat to life, reported by {cmd.actor.id}: {cmd.text}",
                {"member_states": concerned, "text": cmd.text, "by": cmd.actor.id},
            )
            return answer

    @flag_threat.validator
    @_as_validator
    def _validate_flag_threat(self, cmd: FlagThreat) -> None:
        self._check(Action.flag_threat, cmd)

    @workflow.update
    @_answered_once
    async def post_update(self, cmd: PostUpdate) -> Answer:
        """A coordinator's situational update, recorded and sent to the participants."""
        async with self._turn():
            self._check(Action.post_update, cmd)
            answer = await self._act(Action.post_update, cmd, text=cmd.text)
            self.effects.notify(
                self._told(),
                NotificationKind.situation_update,
                f"{self.state.report.title}: {cmd.text}",
                {"text": cmd.text, "by": cmd.actor.id},
            )
            return answer

    @post_update.validator
    @_as_validator
    def _validate_post_update(self, cmd: PostUpdate) -> None:
        self._check(Action.post_update, cmd)

    @workflow.update
    @_answered_once
    async def link_protocol(self, cmd: LinkProtocol) -> Answer:
        """Another protocol's activation for the same event, kept beside this one."""
        async with self._turn():
            self._check_link(cmd)
            answer = await self._act(
                Action.link_protocol, cmd, link=cmd.link.model_dump(mode="json")
            )
            self.state.linked.append(cmd.link)
            return answer

    @link_protocol.validator
    @_as_validator
    def _validate_link_protocol(self, cmd: LinkProtocol) -> None:
        self._check_link(cmd)

    def _check_link(self, cmd: LinkProtocol) -> None:
        self._check(Action.link_protocol, cmd)
        for linked in self.state.linked:
            if (linked.protocol, linked.reference) == (cmd.protocol, cmd.reference):
                rule = f"{cmd.protocol} {cmd.reference} is linked already"
                raise Refusal("reference", rule)

    # ---- removal orders after their issue ---------------------------------------------------

    @workflow.update
    @_answered_once
    async def clarify_order(self, cmd: ClarifyOrder) -> Answer:
        """The issuing authority answers its addressee's Annex III request: the paused hour
        starts again, in full, as the clarification arrives (TCO Art. 3(8))."""
        async with self._turn():
            order = self._check_clarify(cmd)
            answer = await self._act(Action.clarify_order, cmd, order=order.reference)
            order.clarifications += 1
            self._tell_addressee(order, cmd, "clarified")
            return answer

    @clarify_order.validator
    @_as_validator
    def _validate_clarify_order(self, cmd: ClarifyOrder) -> None:
        self._check_clarify(cmd)

    def _check_clarify(self, cmd: ClarifyOrder) -> OrderRecord:
        self._check(Action.clarify_order, cmd)
        return issued_order(self.state.orders, cmd.reference, cmd.actor.id)

    @workflow.update
    @_answered_once
    async def request_scrutiny(self, cmd: RequestScrutiny) -> Answer:
        """The addressee asks the host Member State to scrutinise a cross-border order, which
        must then decide within 72 hours (TCO Art. 4(4))."""
        async with self._turn():
            order = self._check_request(cmd)
            decide_by = workflow.now() + SCRUTINY_WINDOW
            answer = await self._act(
                Action.request_scrutiny,
                cmd,
                order=order.reference,
                decide_by=decide_by.isoformat(),
            )
            order.request = ScrutinyRequest(
                by=cmd.actor.id, at=workflow.now(), reason=cmd.reason or "", decide_by=decide_by
            )
            self.changed = True  # a new clock
            self.effects.notify(
                [*self._authorities_of(order.host_member_state), order.issuer],
                NotificationKind.scrutiny_requested,
                f"{cmd.actor.id} asks for scrutiny of removal order {order.reference}; "
                f"{order.host_member_state} decides within 72 hours",
                {"order": order.reference, "reason": cmd.reason, "decide_by": decide_by},
            )
            return answer

    @request_scrutiny.validator
    @_as_validator
    def _validate_request_scrutiny(self, cmd: RequestScrutiny) -> None:
        self._check_request(cmd)

    def _check_request(self, cmd: RequestScrutiny) -> OrderRecord:
        self._check(Action.request_scrutiny, cmd)
        order = your_order(self.state.orders, cmd.reference, cmd.actor.id)
        check_request(order, workflow.now())
        return order

    @workflow.update
    @_answered_once
    async def decide_scrutiny(self, cmd: DecideScrutiny) -> Answer:
        """The host Member State's reasoned decision. An order found to infringe loses its
        effect: its open tasks are withdrawn and removed content is reinstated (Art. 4)."""
        async with self._turn():
            order = self._check_decision(cmd)
            answer = await self._act(
                Action.decide_scrutiny,
                cmd,
                order=order.reference,
                outcome=cmd.outcome,
                requested=order.request is not None,
            )
            order.decision = ScrutinyDecision(
                by=cmd.actor.id, at=workflow.now(), outcome=cmd.outcome, reasons=cmd.reason or ""
            )
            self.changed = True  # its clocks stop
            lost = cmd.outcome is ScrutinyOutcome.infringes
            self.effects.notify(
                [order.issuer, order.platform, *self.state.ids_of(ParticipantKind.coordinator)],
                NotificationKind.scrutiny_decided,
                f"Removal order {order.reference}: {cmd.outcome} ({order.host_member_state})"
                + ("; it no longer has legal effect" if lost else ""),
                {"order": order.reference, "outcome": cmd.outcome, "reasons": cmd.reason},
            )
            if lost:
                self._tell_addressee(order, cmd, "lost_effect")
            return answer

    @decide_scrutiny.validator
    @_as_validator
    def _validate_decide_scrutiny(self, cmd: DecideScrutiny) -> None:
        self._check_decision(cmd)

    def _tell_addressee(
        self, order: OrderRecord, cmd: Command, change: Literal["clarified", "lost_effect"]
    ) -> None:
        """The addressee's workflow applies what became of the order to its tasks."""
        self.outbox.order_changed(
            order.platform,
            OrderChange(
                actor=cmd.actor,
                reference=order.reference,
                items=order.items,
                change=change,
                text=cmd.reason or "",
            ),
        )

    def _check_decision(self, cmd: DecideScrutiny) -> OrderRecord:
        self._check(Action.decide_scrutiny, cmd)
        country = next(p.country for p in self.state.participants if p.id == cmd.actor.id)
        order = self.state.orders.get(cmd.reference)
        return check_decision(order, cmd.reference, cmd.actor.id, country, workflow.now())

    @workflow.update
    @_answered_once
    async def de_escalate(self, cmd: DeEscalate) -> Answer:
        async with self._turn():
            self._check(Action.de_escalate, cmd)
            answer = await self._act(
                Action.de_escalate, cmd, withdraw_open_tasks=cmd.withdraw_open_tasks
            )
            if cmd.withdraw_open_tasks:
                await self._tell_platforms(WithdrawTasks(actor=cmd.actor, reason=cmd.reason or ""))
            return answer

    @de_escalate.validator
    @_as_validator
    def _validate_de_escalate(self, cmd: DeEscalate) -> None:
        self._check(Action.de_escalate, cmd)

    @workflow.update
    @_answered_once
    async def re_escalate(self, cmd: Command) -> Answer:
        async with self._turn():
            self._check(Action.re_escalate, cmd)
            return await self._act(Action.re_escalate, cmd, **self._lasting())

    @re_escalate.validator
    @_as_validator
    def _validate_re_escalate(self, cmd: Command) -> None:
        self._check(Action.re_escalate, cmd)

    @workflow.update
    @_answered_once
    async def renew_activation(self, cmd: Command) -> Answer:
        """The coordinators keep the activation for another period, with a reason."""
        async with self._turn():
            self._check(Action.renew_activation, cmd)
            return await self._act(Action.renew_activation, cmd, **self._lasting())

    @renew_activation.validator
    @_as_validator
    def _validate_renew(self, cmd: Command) -> None:
        self._check(Action.renew_activation, cmd)

    @workflow.update
    @_answered_once
    async def set_clocks(self, cmd: SetClocks) -> Answer:
        """New clocks for the crisis and its platforms' tasks from now on, recorded in full."""
        async with self._turn():
            self._check(Action.set_clocks, cmd)
            sla = cmd.applied_to(self.state.sla)
            answer = await self._act(
                Action.set_clocks,
                cmd,
                changes={name: spoken(d) for name, d in cmd.changes.items()},
                clocks=sla.model_dump(mode="json"),
            )
            self.state.sla = sla
            self.effects.deliver_within = sla.deliver_within
            self.changed = True
            for platform in self.state.platforms:
                self.outbox.set_clocks(platform, sla)
            return answer

    @set_clocks.validator
    @_as_validator
    def _validate_set_clocks(self, cmd: SetClocks) -> None:
        self._check(Action.set_clocks, cmd)

    @workflow.update
    @_answered_once
    async def start_review(self, cmd: Command) -> Answer:
        async with self._turn():
            self._check(Action.start_review, cmd)
            self.state.review_due = workflow.now() + self.state.sla.review_within
            answer = await self._act(
                Action.start_review, cmd, review_due=self.state.review_due.isoformat()
            )
            if workflow.patched(REVIEW_REPORT):
                self.effects.report()
            return answer

    @start_review.validator
    @_as_validator
    def _validate_start_review(self, cmd: Command) -> None:
        self._check(Action.start_review, cmd)

    @workflow.update
    @_answered_once
    async def close(self, cmd: Command) -> Answer:
        async with self._turn():
            self._check(Action.close, cmd)
            return await self._close(cmd.actor, cmd.reason)

    @close.validator
    @_as_validator
    def _validate_close(self, cmd: Command) -> None:
        self._check(Action.close, cmd)

    # ---- participant reports --------------------------------------------------------------

    @workflow.update
    @_answered_once
    async def report_sightings(self, cmd: ReportSightings) -> Answer:
        async with self._turn():
            [outcome] = await self._sightings([SightingRequest(cmd=cmd)])
            if outcome.rejection is not None:
                raise outcome.rejection.as_refusal()
            assert outcome.answer is not None
            return outcome.answer

    @report_sightings.validator
    @_as_validator
    def _validate_sightings(self, cmd: ReportSightings) -> None:
        self._check_sightings(cmd)

    def _check_sightings(self, cmd: ReportSightings) -> None:
        self._check(Action.report_sightings, cmd)
        if (
            cmd.actor.kind is ParticipantKind.platform
            and cmd.actor.id not in self.state.taking_part
        ):
            raise Refusal(
                "actor.id", f"{cmd.actor.id} does not take part in this takedown", FORBIDDEN
            )

    @workflow.update
    async def report_sightings_batch(self, batch: SightingsBatch) -> SightingAnswers:
        """Sighting calls the API merged: a decision and an answer for each, one ledger batch
        and one fan-out for all. A request id answered before gets that answer again."""
        async with self._turn():
            return SightingAnswers(outcomes=await self._sightings(batch.requests))

    @report_sightings_batch.validator
    @_as_validator
    def _check_sightings_batch(self, batch: SightingsBatch) -> None:
        """Refuses the batch if any call in it would be refused, so the API can send each
        alone and give every caller its own rejection, with no trace in history."""
        for req in batch.requests:
            if req.request_id not in self.state.answered:
                self._check_sightings(req.cmd)

    @workflow.update
    @_answered_once
    async def report_false_positive(self, cmd: ReportFalsePositive) -> Answer:
        async with self._turn():
            self._check_false_positive(cmd, addressing=workflow.patched(TASKS_ADDRESSED))
            answer = await self._act(Action.report_false_positive, cmd, item=cmd.item)
            self.state.false_positives.append(cmd.item)
            self.effects.notify(
                self.state.ids_of(ParticipantKind.coordinator),
                NotificationKind.false_positive,
                f"{cmd.actor.id} reports item {cmd.item} as a false positive; "
                "a coordinator may withdraw it from every platform",
                {"item": cmd.item, "reason": cmd.reason, "by": cmd.actor.id},
            )
            return answer

    @report_false_positive.validator
    @_as_validator
    def _validate_false_positive(self, cmd: ReportFalsePositive) -> None:
        self._check_false_positive(cmd)

    def _check_false_positive(self, cmd: ReportFalsePositive, addressing: bool = True) -> None:
        self._check(Action.report_false_positive, cmd)
        if not addressing or cmd.actor.kind is not ParticipantKind.platform:
            self._check_items("item", [cmd.item])
            return
        # a platform names one of its own items: another's, or none, get the same answer
        meant_for = self.state.restricted.get(cmd.item, [cmd.actor.id])
        if not 1 <= cmd.item <= self.state.items or cmd.actor.id not in meant_for:
            raise Refusal("item", f"no item {cmd.item} among your tasks", NOT_FOUND)

    @workflow.update
    @_answered_once
    async def submit_review_input(self, cmd: SubmitReviewInput) -> Answer:
        async with self._turn():
            self._check(Action.submit_review_input, cmd)
            answer = await self._act(Action.submit_review_input, cmd, text=cmd.text)
            self.state.review_inputs += 1
            return answer

    @submit_review_input.validator
    @_as_validator
    def _validate_review_input(self, cmd: SubmitReviewInput) -> None:
        self._check(Action.submit_review_input, cmd)

    @workflow.signal
    def platform_final(self, summary: PlatformSummary) -> None:
        """A platform's workflow reports its final figures as it ends."""
        self.state.finals[summary.platform_id] = summary

    @workflow.query
    def status(self) -> CrisisStatus:
        return CrisisStatus(
            incident_id=self.state.incident_id,
            title=self.state.report.title,
            phase=self.state.phase,
            phases=self.state.phases,
            assessment=self.state.assessment,
            assessment_overdue=self.state.assessment_stage is not Stage.on_time
            and self.state.phase in (Phase.reported, Phase.assessing),
            platforms=self.state.platforms,
            items=self.state.items,
            false_positives=self.state.false_positives,
            review_inputs=self.state.review_inputs,
            decisions=self.state.counters.decisions,
            finals=self.state.finals,
            orders=list(self.state.orders.values()),
            suspended=self.state.suspended,
            linked=self.state.linked,
            exercise=self.state.report.exercise,
            activation_expires=self.state.activation_expires
            if self.state.phase is Phase.active
            else None,
        )

    @workflow.query
    def view(self, viewer: Actor) -> CrisisStatus | None:
        """The status as a Member State's authority may read it, if the incident concerns it
        (`concerns`): every order but those it issued or hosts left out; None otherwise."""
        for participant in self.state.participants:
            if participant.id == viewer.id and self.state.concerns(participant):
                seen = orders_seen_by(self.state.orders, participant)
                return self.status().model_copy(update={"orders": seen})
        return None

    @workflow.query
    def orders(self, viewer: Actor) -> list[OrderRecord]:
        """The orders `viewer` may see (`orders_seen_by`); none for an unknown participant."""
        for participant in self.state.participants:
            if participant.id == viewer.id and participant.kind is viewer.kind:
                return orders_seen_by(self.state.orders, participant)
        return []

    @asynccontextmanager
    async def _turn(self) -> AsyncIterator[None]:
        """One handler at a time, and never before the report itself is in the ledger."""
        async with self.lock:
            if not self.state.phases:
                reporter = self._actor_of(self.state.report.reporter)
                await self._decide(
                    reporter,
                    DecisionKind.reported,
                    None,
                    Phase.reported,
                    report=self.state.report.model_dump(mode="json"),
                    **(
                        {"clocks": self.state.sla.model_dump(mode="json")}
                        if workflow.patched(CLOCKS_RECORDED)
                        else {}
                    ),
                )
            try:
                with as_update_errors():  # a refusal under the lock leaves the handler as it may
                    yield
            finally:
                self._index()

    def _index(self) -> None:
        """Brings the run's search attributes up to date with its state, after each turn: the
        list of incidents finds it by them (`workflows.search`). Nothing is written when they
        agree, as they do from the start for a run the service started with them."""
        if not workflow.patched(SEARCHABLE):
            return
        updates = changes(workflow.info().typed_search_attributes, self.state)
        if updates:
            workflow.upsert_search_attributes(updates)

    # ---- the rules ------------------------------------------------------------------------

    def _open(self) -> None:
        """Refuses new Updates while this run drains for continue-as-new (the service sends
        them again; the next run takes them), so that a steady stream cannot hold it open."""
        if self.moving:
            raise moving()

    def _check(self, action: Action, cmd: Command) -> None:
        """Raises the refusal a participant sees; runs in validators and again under the lock."""
        self._check_actor(cmd.actor)
        check(self.state.phase, action, cmd.actor.kind, cmd.reason)

    def _check_actor(self, actor: Actor) -> None:
        for p in self.state.participants:
            if p.id == actor.id:
                if p.kind is not actor.kind:
                    raise Refusal("actor.kind", f"{actor.id} is registered as {p.kind}", FORBIDDEN)
                return
        raise Refusal("actor.id", f"{actor.id!r} is not a participant of this incident", FORBIDDEN)

    def _check_items(self, field: str, items: list[int]) -> None:
        for no in items:
            if not 1 <= no <= self.state.items:
                raise Refusal(
                    field,
                    f"no item {no}: this incident has items 1 to {self.state.items}",
                    NOT_FOUND,
                )

    def _check_referral(self, basis: LegalBasis) -> None:
        """The coordinator refers content voluntarily; removal orders are a Member State
        authority's (`issue_order`), never the EU IRU's (domain.md; TCO Art. 3)."""
        if isinstance(basis, RemovalOrder):
            rule = (
                "the coordinator refers content voluntarily; a removal order is issued by a "
                "Member State's competent authority (POST .../removal-orders, TCO Art. 3)"
            )
            raise Refusal("basis", rule, FORBIDDEN)

    def _check_named(self, named: list[str] | None, participating: Collection[str]) -> None:
        """A voluntary referral may name the platforms it is for: each must take part. An
        identifier bound to a platform needs no check: it waits for its platform."""
        for i, platform in enumerate(named or []):
            self._check_taking_part(f"addressees[{i}]", platform, participating)

    def _check_addressee(self, identifiers: list[AnyIdentifier], order: OrderDetails) -> None:
        """A removal order binds the one platform it names, which takes part, for content that
        platform hosts (TCO Art. 3)."""
        self._check_taking_part("order.platform", order.platform, self.state.taking_part)
        for i, identifier in enumerate(identifiers):
            bound = None if isinstance(identifier, HashIdentifier) else identifier.platform
            if bound not in (None, order.platform):
                rule = f"hosted by {bound}, but the order is addressed to {order.platform}"
                raise Refusal(f"identifiers[{i}].platform", rule, INVALID)

    def _check_taking_part(self, field: str, platform: str, participating: Collection[str]) -> None:
        if platform not in self.state.ids_of(ParticipantKind.platform):
            raise Refusal(field, f"{platform!r} is not a registered platform", INVALID)
        if platform not in participating:
            raise Refusal(field, f"{platform} does not take part in this takedown")

    def _told(self) -> list[str]:
        """Who hears of the incident's course: its coordinators, GIFCT, the platforms taking
        part (a suspended one is not) and the Member States it concerns (`concerns`)."""
        platforms = set(self.state.taking_part)
        return [
            p.id
            for p in self.state.participants
            if p.kind in (ParticipantKind.coordinator, ParticipantKind.gifct)
            or p.id in platforms
            or (p.kind is ParticipantKind.member_state and self.state.concerns(p))
        ]

    def _authorities_of(self, country: str) -> list[str]:
        """The competent authorities of a Member State that take part."""
        return [
            p.id
            for p in self.state.participants
            if p.kind is ParticipantKind.member_state and p.country == country
        ]

    def _actor_of(self, participant_id: str) -> Actor:
        kinds = {p.id: p.kind for p in self.state.participants}
        return Actor(
            id=participant_id, kind=kinds.get(participant_id, ParticipantKind.member_state)
        )

    # ---- effects --------------------------------------------------------------------------

    def _admit(
        self,
        identifiers: list[AnyIdentifier],
        basis: LegalBasis | None,
        source: str,
        named: list[str] | None = None,
        every: bool = False,
    ) -> tuple[list[ContentItem], Answer]:
        """Numbers the identifiers this incident has not seen (with `every`, all of them),
        each with the platforms it is a task for (`addressees_of`); counts repeats and
        discards."""
        items: list[ContentItem] = []
        answer = Answer(phase=self.state.phase)
        addressing = workflow.patched(TASKS_ADDRESSED)
        for identifier in identifiers:
            verdict = self.index.classify(identifier)
            if every or verdict is Verdict.new:
                self.state.items += 1
                item = ContentItem(no=self.state.items, identifier=identifier, source=source)
                if basis is not None:
                    item = item.model_copy(update={"basis": basis})
                if addressing:
                    addressees = addressees_of(identifier, basis, named)
                    item = item.model_copy(update={"addressees": addressees})
                    if addressees is not None:
                        self.state.restricted[item.no] = addressees
                items.append(item)
            elif verdict is Verdict.duplicate:
                answer.duplicates += 1
            else:
                answer.low_quality += 1
        answer.accepted_items = [i.no for i in items]
        return items, answer

    async def _sightings(self, requests: list[SightingRequest]) -> list[SightingOutcome]:
        """Sighting reports, under the lock: each checked again (an Update before may have
        moved the phase) and answered, or refused, on its own; one ledger batch and one
        fan-out for all of them."""
        outcomes: list[SightingOutcome] = []
        fresh: list[tuple[str | None, Answer, list[ContentItem]]] = []
        drafts: list[Draft] = []
        this_batch: dict[str, SightingOutcome] = {}
        for req in requests:
            rid = req.request_id
            if rid is not None and (rid in self.state.answered or rid in this_batch):
                earlier = this_batch.get(rid) or SightingOutcome(answer=self.state.answered[rid])
                outcomes.append(earlier)
                continue
            try:
                self._check_sightings(req.cmd)
            except Refusal as refusal:
                outcomes.append(SightingOutcome(rejection=Rejection(**refusal.details())))
                continue
            items, answer = self._admit(req.cmd.identifiers, None, req.cmd.actor.id)
            drafts.append(self._sighting_draft(req.cmd, items, answer))
            outcomes.append(SightingOutcome(answer=answer))
            fresh.append((rid, answer, items))
            if rid is not None:
                this_batch[rid] = outcomes[-1]
        decisions = await self.effects.record(drafts)
        for (rid, answer, _), decision in zip(fresh, decisions, strict=True):
            answer.decisions = [decision.decision_id]
            if rid is not None:
                remember(self.state.answered, rid, answer, ANSWERS_KEPT)
        await self._fan_out(
            [(d.decision_id, items) for (_, _, items), d in zip(fresh, decisions, strict=True)]
        )
        return outcomes

    def _sighting_draft(
        self, cmd: ReportSightings, items: list[ContentItem], answer: Answer
    ) -> Draft:
        """The decision a sighting report records: the same inputs alone or merged."""
        assert ACTIONS[Action.report_sightings].to is None  # a report never moves the phase
        return Draft(
            cmd.actor,
            ACTIONS[Action.report_sightings].decision,
            cmd.reason,
            items=[i.model_dump(mode="json") for i in items],
            duplicates=answer.duplicates,
            low_quality=answer.low_quality,
        )

    async def _act(
        self, action: Action, cmd: Command, answer: Answer | None = None, **inputs: Any
    ) -> Answer:
        to = ACTIONS[action].to or self.state.phase
        decision = await self._decide(cmd.actor, ACTIONS[action].decision, cmd.reason, to, **inputs)
        answer = answer or Answer(phase=to)
        answer.phase = to
        answer.decisions = [decision]
        return answer

    async def _decide(
        self, actor: Actor, kind: DecisionKind, reason: str | None, to: Phase, **inputs: Any
    ) -> str:
        """Records the decision, then (only then) moves the phase and tells the participants."""
        [decision] = await self.effects.record([Draft(actor, kind, reason, **inputs)])
        if to is not self.state.phase or not self.state.phases:
            self.state.phase = to
            self.state.phases.append(
                PhaseChange(phase=to, at=decision.at, by=actor.id, reason=reason)
            )
            self.changed = True
            workflow.logger.info("phase changed", extra={"phase": str(to), "by": actor.id})
            self.effects.notify(
                self._told()
                if workflow.patched(PARTICIPANTS_ONLY)
                else [
                    p.id for p in self.state.participants if p.kind is not ParticipantKind.auditor
                ],
                NotificationKind.review_requested
                if to is Phase.review
                else NotificationKind.phase_changed,
                f"{self.state.report.title}: {to}",
                {"phase": to, "reason": reason, "by": actor.id},
            )
        return decision.decision_id

    async def _close(self, actor: Actor, reason: str | None) -> Answer:
        answer = await self._act(Action.close, Command(actor=actor, reason=reason))
        await self._tell_platforms(None)
        if workflow.patched(REVIEW_REPORT):
            self.effects.report()  # again, now with the review input
        return answer

    def _platform_start(
        self,
        platform_id: str,
        items: list[ContentItem],
        decisions: list[str],
        joined: bool = False,
    ) -> PlatformStart:
        """A platform workflow's input: its first items, given or by reference; one brought
        in mid-crisis (`joined`) reads the open content itself."""
        state = PlatformState(
            incident_id=self.state.incident_id,
            platform_id=platform_id,
            coordinators=self.state.ids_of(ParticipantKind.coordinator),
            sla=self.state.sla,
            exercise=self.state.report.exercise,
        )
        return PlatformStart(state=state, items=items, decisions=decisions, joined=joined)

    async def _start_child(self, workflow_id: str, start: PlatformStart) -> None:
        """A platform workflow started as a child (which outlives the crisis): a platform
        brought in, and every platform of an activation before `PLATFORMS_STARTED_TOGETHER`."""
        await workflow.start_child_workflow(
            PlatformTasksWorkflow.run,
            start,
            id=workflow_id,
            parent_close_policy=ParentClosePolicy.ABANDON,
        )

    async def _fan_out(self, recorded: list[tuple[str, list[ContentItem]]]) -> None:
        """New items become tasks on every participating platform but the one that found them.

        `recorded` pairs each decision id with the items it admitted. A few items travel in
        the signal (a sighting reaches the others without another read); more go as the
        decision ids, and the platform reads them from the ledger, so neither this history nor
        one workflow task carries a thousand items to every platform (first versions did)."""
        items = [i for _, admitted in recorded for i in admitted]
        if not items:  # nothing new (repeats only, or refused): no signal, no patch marker
            return
        for_each = {
            p: [i for i in items if i.addressed_to(p)]
            for p in self.state.platforms
            if p not in self.state.suspended  # given nothing until brought in again
        }
        if workflow.patched(ITEMS_BY_REFERENCE):
            sizes = {i.no: len(i.model_dump_json()) for i in items}
            read_sizes = {d: sum(sizes[i.no] for i in admitted) for d, admitted in recorded}
            for p, mine in for_each.items():
                if not mine:
                    continue
                ids = [d for d, admitted in recorded if any(i.addressed_to(p) for i in admitted)]
                if len(mine) > INLINE_ITEMS:
                    self.outbox.assign_recorded(p, ids, sum(read_sizes[d] for d in ids))
                else:
                    self.outbox.assign(p, mine, ids, sum(sizes[i.no] for i in mine))
            return
        if workflow.patched(FAN_OUT_BESIDE):  # the answer no longer waits for the signals
            for p, mine in for_each.items():
                if mine:  # inline whatever its size, as this version did (never by reference)
                    self.outbox.assign(p, mine, [], 0)
            return
        await asyncio.gather(
            *(
                self._platform(p).signal(PlatformTasksWorkflow.assign, mine)
                for p, mine in for_each.items()
                if mine
            )
        )

    async def _tell_platforms(self, withdraw: WithdrawTasks | None) -> None:
        """Withdraws tasks on every platform, or (None) tells them the incident is closed."""
        if workflow.patched(FAN_OUT_BESIDE):  # after any assignment still in the outbox
            for p in self.state.platforms:
                if withdraw is not None:
                    self.outbox.withdraw(p, withdraw)
                else:
                    self.outbox.finish(p)
            return
        await asyncio.gather(
            *(
                self._platform(p).signal(PlatformTasksWorkflow.withdraw, withdraw)
                if withdraw is not None
                else self._platform(p).signal(PlatformTasksWorkflow.finish)
                for p in self.state.platforms
            )
        )

    def _platform(self, platform_id: str) -> workflow.ExternalWorkflowHandle[PlatformTasksWorkflow]:
        return workflow.get_external_workflow_handle_for(
            PlatformTasksWorkflow.run, platform_workflow_id(self.state.incident_id, platform_id)
        )

    # ---- deadlines ------------------------------------------------------------------------

    def _next_deadline(self) -> datetime | None:
        """The earliest clock of the crisis: its phase's, or an order's scrutiny."""
        dues = [self._phase_deadline(), *(o.next_due() for o in self.state.orders.values())]
        return min((d for d in dues if d is not None), default=None)

    def _phase_deadline(self) -> datetime | None:
        if self.state.phase in (Phase.reported, Phase.assessing):
            due = self.state.reported_at + self.state.sla.assessment_within
            if self.state.assessment_stage is Stage.on_time:
                return due
            if self.state.assessment_stage is Stage.reminded:
                return due + self.state.sla.escalate_after
        if self.state.phase is Phase.review:
            return self.state.review_due
        if self.state.phase is Phase.active and self.state.activation_expires is not None:
            if self.state.lapse_reminded:
                return self.state.activation_expires
            return self.state.activation_expires - self.state.sla.renewal_reminder
        return None

    async def _on_deadlines(self) -> None:
        await self._on_scrutiny_deadlines()
        due = self._phase_deadline()
        if due is None or workflow.now() < due:
            return
        if self.state.phase is Phase.review:
            await self._close(SYSTEM, "review deadline passed")
            return
        if self.state.phase is Phase.active:
            await self._on_activation_ending()
            return
        late = self.state.assessment_stage is Stage.reminded
        await self.effects.record(
            [
                Draft(
                    SYSTEM,
                    DecisionKind.assessment_escalated if late else DecisionKind.assessment_reminder,
                    "assessment overdue" if late else "assessment due",
                    due=due.isoformat(),
                )
            ]
        )
        self.state.assessment_stage = Stage.escalated if late else Stage.reminded
        self.effects.notify(
            self.state.ids_of(ParticipantKind.coordinator),
            NotificationKind.escalation if late else NotificationKind.reminder,
            f"{self.state.report.title}: activation decision {'overdue' if late else 'due'}",
        )

    async def _on_activation_ending(self) -> None:
        """Reminds the coordinators before the activation lapses; at its end, unrenewed, eucp
        de-escalates the crisis itself (the safeguards: an activation is limited in time)."""
        expires = self.state.activation_expires
        assert expires is not None
        if workflow.now() >= expires:
            reason = f"the activation lapsed at {moment_in_words(expires)}, unrenewed"
            check(self.state.phase, Action.de_escalate, SYSTEM.kind, reason)
            await self._decide(
                SYSTEM,
                ACTIONS[Action.de_escalate].decision,
                reason,
                Phase.de_escalating,
                lapsed=True,
                withdraw_open_tasks=False,
            )
            self.state.activation_expires = None
            return
        await self.effects.record(
            [
                Draft(
                    SYSTEM,
                    DecisionKind.activation_expiring,
                    f"the activation lapses at {moment_in_words(expires)} unless renewed",
                    expires=expires.isoformat(),
                )
            ]
        )
        self.state.lapse_reminded = True
        self.effects.notify(
            self.state.ids_of(ParticipantKind.coordinator),
            NotificationKind.reminder,
            f"{self.state.report.title}: the activation lapses at {moment_in_words(expires)} "
            "unless a coordinator renews it",
            {"expires": expires},
        )

    async def _on_scrutiny_deadlines(self) -> None:
        """Records each scrutiny window that closed undecided (the order stands) and each
        requested decision that fell due (its requester, the host State and the coordinators
        are told: the law gives the authority 72 hours, TCO Art. 4(4))."""
        now = workflow.now()
        due = [o for o in self.state.orders.values() if (d := o.next_due()) and d <= now]
        closing = [o for o in due if not o.window_closed and o.window_closes <= now]
        overdue = [
            o for o in due if o.request and not o.request.overdue and o.request.decide_by <= now
        ]
        if not closing and not overdue:
            return
        await self.effects.record(
            [
                *(
                    Draft(
                        SYSTEM,
                        DecisionKind.scrutiny_window_closed,
                        "72 hours from the copy passed without a scrutiny decision"
                        + ("; a requested one is still due" if o.request else ": the order stands"),
                        order=o.reference,
                    )
                    for o in closing
                ),
                *(
                    Draft(
                        SYSTEM,
                        DecisionKind.scrutiny_overdue,
                        "no scrutiny decision 72 hours after the request (TCO Art. 4(4))",
                        order=o.reference,
                        due=o.request.decide_by.isoformat(),
                    )
                    for o in overdue
                    if o.request
                ),
            ]
        )
        for o in closing:
            o.window_closed = True
        for o in overdue:
            assert o.request is not None
            o.request.overdue = True
            self.effects.notify(
                [
                    *self._authorities_of(o.host_member_state),
                    o.platform,
                    o.issuer,
                    *self.state.ids_of(ParticipantKind.coordinator),
                ],
                NotificationKind.scrutiny_overdue,
                f"Scrutiny of removal order {o.reference} is overdue: requested by {o.platform}, "
                f"due from {o.host_member_state} by {moment_in_words(o.request.decide_by)}",
                {"order": o.reference, "due": o.request.decide_by},
            )

    async def _continue_as_new(self) -> None:
        self.moving = True
        await self.effects.settle()
        self.state.index = self.index.snapshot()
        # an exercise keeps its memo, which the incident lists read
        memo = {EXERCISE: True} if self.state.report.exercise else None
        workflow.continue_as_new(self.state, memo=memo)

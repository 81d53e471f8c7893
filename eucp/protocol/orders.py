"""Removal orders after their issue: the host Member State's scrutiny of a cross-border order
(TCO Regulation (EU) 2021/784, Art. 4) and the issuing authority's clarification (Annex III,
Art. 3(8)).

An order issued in one Member State to a provider established in another is copied to the host
State's competent authority at once; that authority may scrutinise it within 72 hours of the
copy. The addressee may ask it to, within 48 hours of receiving the order; the authority then
decides within 72 hours of the request. An order found to infringe the Regulation or
fundamental rights loses its legal effect: its open tasks are withdrawn and removed content is
reinstated. The windows are the law's, not settings. Pure: no I/O, no clock reads.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, Field

from eucp.protocol.clocks import moment_in_words
from eucp.protocol.participants import Participant, ParticipantKind
from eucp.protocol.refusal import Refusal, RefusalKind
from eucp.protocol.tasks import RemovalOrder

SCRUTINY_WINDOW = timedelta(hours=72)
"""Art. 4(3): the host State's authority may scrutinise within 72 hours of receiving the copy;
Art. 4(4): it decides within 72 hours of a request."""
REQUEST_WINDOW = timedelta(hours=48)
"""Art. 4(4): the addressee may ask for scrutiny within 48 hours of receiving the order."""


class ScrutinyOutcome(StrEnum):
    """The host State authority's reasoned decision on a cross-border order (Art. 4(6))."""

    upheld = "upheld"
    infringes = "infringes"  # the order loses its legal effect; the content is reinstated


class ScrutinyStage(StrEnum):
    """Where an order's scrutiny stands, as the console and the CLI say it."""

    domestic = "domestic"  # issued by the host Member State: no Art. 4 scrutiny
    open = "open"  # the host State may scrutinise it until the window closes
    requested = "requested"  # the addressee asked; a decision is due
    overdue = "overdue"  # asked, and the 72 hours passed with no decision
    stands = "stands"  # the window closed with no scrutiny and no request
    upheld = "upheld"
    infringes = "infringes"  # no legal effect any more


class ScrutinyRequest(BaseModel):
    """The addressee's reasoned request for scrutiny (Art. 4(4))."""

    by: str
    at: datetime
    reason: str
    decide_by: datetime
    overdue: bool = Field(default=False, description="its 72 hours passed with no decision")


class ScrutinyDecision(BaseModel):
    by: str
    at: datetime
    outcome: ScrutinyOutcome
    reasons: str


class OrderRecord(BaseModel):
    """An order the crisis keeps after issuing it: whom it binds, its items and its scrutiny."""

    reference: str
    issuer: str
    issuing_member_state: str
    host_member_state: str
    platform: str
    items: list[int]
    received_at: datetime = Field(description="when eucp delivered it to its addressee")
    confidential: bool = False
    copy_to: list[str] = Field(
        default_factory=list, description="the host State's authorities sent a copy (Art. 4(1))"
    )
    window_closed: bool = Field(default=False, description="72 hours from the copy have passed")
    request: ScrutinyRequest | None = None
    decision: ScrutinyDecision | None = None
    clarifications: int = 0

    @classmethod
    def of(cls, order: RemovalOrder, items: list[int], at: datetime) -> OrderRecord:
        assert order.platform is not None and order.issuer is not None  # issued by an authority
        return cls(
            reference=order.reference,
            issuer=order.issuer,
            issuing_member_state=order.issuing_member_state,
            host_member_state=order.host_member_state,
            platform=order.platform,
            items=items,
            received_at=at,
            confidential=order.confidential,
        )

    @property
    def cross_border(self) -> bool:
        """Art. 4 applies when the host Member State is not the issuing one."""
        return self.host_member_state != self.issuing_member_state

    @property
    def in_effect(self) -> bool:
        return self.decision is None or self.decision.outcome is ScrutinyOutcome.upheld

    @property
    def window_closes(self) -> datetime:
        return self.received_at + SCRUTINY_WINDOW

    @property
    def request_closes(self) -> datetime:
        return self.received_at + REQUEST_WINDOW

    @property
    def awaits_decision(self) -> bool:
        """A request not yet answered: an order the host State upheld of its own motion may
        still be questioned by its addressee, and must then be decided on again."""
        return self.request is not None and (
            self.decision is None or self.decision.at < self.request.at
        )

    @property
    def stage(self) -> ScrutinyStage:
        if not self.cross_border:
            return ScrutinyStage.domestic
        if self.awaits_decision:
            assert self.request is not None
            return ScrutinyStage.overdue if self.request.overdue else ScrutinyStage.requested
        if self.decision is not None:
            return ScrutinyStage(self.decision.outcome.value)
        return ScrutinyStage.stands if self.window_closed else ScrutinyStage.open

    def next_due(self) -> datetime | None:
        """When the crisis must next look at this order: its scrutiny window closing, or a
        requested decision falling due; None when nothing is left to watch."""
        if not self.cross_border:
            return None
        dues = []
        if self.decision is None and not self.window_closed:
            dues.append(self.window_closes)
        if self.awaits_decision and self.request is not None and not self.request.overdue:
            dues.append(self.request.decide_by)
        return min(dues, default=None)


SCRUTINY_IN_WORDS = {
    ScrutinyStage.domestic: "not cross-border",
    ScrutinyStage.open: "host State may scrutinise until {until}",
    ScrutinyStage.requested: "requested; decision due by {due}",
    ScrutinyStage.overdue: "requested; decision overdue since {due}",
    ScrutinyStage.stands: "not scrutinised; stands",
    ScrutinyStage.upheld: "upheld",
    ScrutinyStage.infringes: "infringes: no legal effect",
}
"""Where an order's scrutiny (TCO Art. 4) stands, in words."""


def in_words(order: OrderRecord, moment: Callable[[datetime], str]) -> str:
    """The order's scrutiny in words, its times as `moment` writes them (each reader's own)."""
    due = moment(order.request.decide_by) if order.request else ""
    return SCRUTINY_IN_WORDS[order.stage].format(until=moment(order.window_closes), due=due)


def orders_seen_by(orders: dict[str, OrderRecord], viewer: Participant) -> list[OrderRecord]:
    """The orders a participant may see: all for coordinators and auditors; its own for a
    platform (never another's, Art. 3 binds the addressee alone); for an authority, those it
    issued and the cross-border ones its Member State hosts (it scrutinises them)."""
    if viewer.kind in (ParticipantKind.coordinator, ParticipantKind.auditor):
        return list(orders.values())
    if viewer.kind is ParticipantKind.platform:
        return [o for o in orders.values() if o.platform == viewer.id]
    if viewer.kind is ParticipantKind.member_state:
        return [
            o
            for o in orders.values()
            if o.issuer == viewer.id or (o.cross_border and o.host_member_state == viewer.country)
        ]
    return []


def your_order(orders: dict[str, OrderRecord], reference: str, platform_id: str) -> OrderRecord:
    """The order `reference` addressed to `platform_id`; another platform's order, and one that
    does not exist, get the same refusal, so a platform learns nothing of others' orders."""
    order = orders.get(reference)
    if order is None or order.platform != platform_id:
        # the reference is not said again: the answer is the same whoever's order it names
        rule = "no removal order of that reference among your tasks"
        raise Refusal("reference", rule, RefusalKind.not_found)
    return order


def issued_order(orders: dict[str, OrderRecord], reference: str, issuer: str) -> OrderRecord:
    """The order `reference` issued by `issuer`, for its clarification (Annex III)."""
    order = orders.get(reference)
    if order is None or order.issuer != issuer:
        rule = f"no removal order {reference!r} issued by {issuer}"
        raise Refusal("reference", rule, RefusalKind.not_found)
    if not order.in_effect:
        raise Refusal("reference", f"order {reference} has lost its legal effect (TCO Art. 4)")
    return order


def check_request(order: OrderRecord, now: datetime) -> None:
    """A request for scrutiny: for a cross-border order, once, within 48 hours of receipt."""
    if not order.cross_border:
        rule = (
            f"order {order.reference} was issued by {order.host_member_state}, the host Member "
            "State itself: Art. 4 scrutiny is for cross-border orders; challenge it before "
            f"the courts of {order.issuing_member_state} (Art. 9)"
        )
        raise Refusal("reference", rule)
    if not order.in_effect:
        rule = f"order {order.reference} has no legal effect any more: {_said(order)}"
        raise Refusal("reference", rule)
    if order.request is not None:
        at = moment_in_words(order.request.at)
        raise Refusal("reference", f"scrutiny of order {order.reference} was requested at {at}")
    if now > order.request_closes:
        rule = (
            f"the 48 hours to ask for scrutiny of order {order.reference} ended at "
            f"{moment_in_words(order.request_closes)} (TCO Art. 4(4))"
        )
        raise Refusal("reference", rule)


def check_decision(
    order: OrderRecord | None, reference: str, actor_id: str, country: str | None, now: datetime
) -> OrderRecord:
    """A scrutiny decision: by the host Member State's authority, once, within 72 hours of
    the copy or while a request awaits it. An authority that neither issued nor hosts the
    order hears what it would of an order that does not exist."""
    hosts = order is not None and order.cross_border and country == order.host_member_state
    if order is None or not (hosts or order.issuer == actor_id):
        rule = f"no cross-border removal order {reference!r} hosted by your Member State"
        raise Refusal("reference", rule, RefusalKind.not_found)
    if not hosts:
        rule = (
            f"order {reference} is scrutinised by the competent authority of its host Member "
            f"State ({order.host_member_state}) when it is cross-border (TCO Art. 4)"
        )
        raise Refusal("actor", rule, RefusalKind.forbidden)
    if order.decision is not None and not order.awaits_decision:
        raise Refusal("reference", f"order {reference} was scrutinised already: {_said(order)}")
    # the window is [copy, copy + 72 h): at its last instant the crisis records it closed
    if now >= order.window_closes and not order.awaits_decision:
        rule = (
            f"the 72 hours to scrutinise order {reference} ended at "
            f"{moment_in_words(order.window_closes)} and its addressee asked for no scrutiny "
            "(TCO Art. 4(3)-(4))"
        )
        raise Refusal("reference", rule)
    return order


def _said(order: OrderRecord) -> str:
    assert order.decision is not None
    return f"{order.decision.outcome} on {moment_in_words(order.decision.at)}"

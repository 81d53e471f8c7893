"""Which rule a task's clock stands for: the law's deadline, or the protocol's own target.

The one legal deadline on a task is the removal order's hour: its addressee removes the content
within one hour of receipt (TCO Regulation (EU) 2021/784, Art. 3(3)). A voluntary referral's
act-within time, and every acknowledge-within time, are the protocol's targets: missing one is
not a legal breach, and an auditor or a platform's legal team must be able to tell the two
apart. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

REMOVAL_ORDER = "removal_order"
"""`kind` of a removal order's legal basis (`eucp.protocol.tasks.RemovalOrder`)."""


class Deadline(StrEnum):
    """What a missed task clock was: a legal deadline, or a target of the protocol."""

    legal = "legal"
    """A removal order's act hour (TCO Art. 3(3))."""
    target = "target"
    """An acknowledge-within time, or a voluntary referral's act-within time."""


MISSED: dict[Deadline, str] = {
    Deadline.legal: "legal deadline missed",
    Deadline.target: "target missed",
}
"""What a missed clock is called where people read it."""


def deadline_of(clock: str, basis_kind: str | None) -> Deadline:
    """The deadline a task clock (`acknowledge` or `act`) stands for, given the `kind` of the
    task's legal basis (None when unknown): legal only for a removal order's act clock."""
    return Deadline.legal if clock == "act" and basis_kind == REMOVAL_ORDER else Deadline.target


def recorded_deadline(inputs: Mapping[str, Any], basis_kind: str | None) -> Deadline:
    """The deadline of a recorded ladder decision (`sla_breached`, `sla_backup_told`,
    `sla_escalated`): its `deadline` input when it has one. Rows recorded before that input
    existed are read from their `clock` and the task's basis when known, else as a target: a
    legal breach is never claimed without the removal order to show for it."""
    marked = inputs.get("deadline")
    if marked in (Deadline.legal.value, Deadline.target.value):
        return Deadline(marked)
    return deadline_of(str(inputs.get("clock", "")), basis_kind)


def missed_in_words(legal: int, targets: int) -> str:
    """`1 legal deadline missed, 2 targets missed`, leaving out a kind with none."""
    parts = []
    if legal:
        parts.append(f"{legal} legal deadline{'s' if legal != 1 else ''} missed")
    if targets:
        parts.append(f"{targets} target{'s' if targets != 1 else ''} missed")
    return ", ".join(parts) or "nothing missed"


def missed_reason(clock: str, deadline: Deadline) -> str:
    """The reason a ladder decision records for a missed clock, in words."""
    if deadline is Deadline.legal:
        return "legal deadline missed: the removal order's hour (TCO Art. 3(3))"
    return f"{clock} target missed"

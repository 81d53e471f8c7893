"""The phases of an incident, from report to closed review, and the groups the rules use.

Which action moves an incident from one phase to another, who may take it and why is the
table of actions (`eucp.protocol.actions`), which every layer asks.
"""

from __future__ import annotations

from enum import StrEnum


class Phase(StrEnum):
    reported = "reported"
    assessing = "assessing"
    not_activated = "not_activated"
    active = "active"
    de_escalating = "de_escalating"
    review = "review"
    closed = "closed"


TAKEDOWN = frozenset({Phase.active, Phase.de_escalating})
FINAL = frozenset({Phase.not_activated, Phase.closed})

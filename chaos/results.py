"""A scenario's result, the table the suite prints and the JSON it writes. Pure: no I/O."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from chaos.tally import Tally

NO_TALLY = Tally(accepted=0, in_ledger=0, lost=[], duplicated=[], gaps=[], unanswered=[])


@dataclass(frozen=True)
class Result:
    """One scenario: the ledger tally, the problems found (none: it passed), what it did."""

    scenario: str
    tally: Tally = NO_TALLY
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        t = self.tally
        return not (self.problems or t.lost or t.duplicated or t.gaps or t.unanswered) and (
            t.in_ledger > 0
        )

    def why(self) -> list[str]:
        """Everything that makes it fail, the tally's findings included."""
        t = self.tally
        found = list(self.problems)
        if t.in_ledger == 0 and not found:
            found.append("no decision reached the ledger")
        found += [f"lost: {x}" for x in t.lost[:10]]
        found += [f"duplicated: {x}" for x in t.duplicated[:10]]
        found += [f"gap in the decision numbers: {x}" for x in t.gaps[:10]]
        found += [f"recorded but never accepted: {x}" for x in t.unanswered[:10]]
        return found


HEADERS = ("scenario", "accepted", "in ledger", "lost", "duplicated", "result", "seconds")


def table(results: list[Result]) -> str:
    """The results as an aligned text table, failures explained under it."""
    rows = [
        (
            r.scenario,
            str(r.tally.accepted),
            str(r.tally.in_ledger),
            str(len(r.tally.lost)),
            str(len(r.tally.duplicated)),
            "pass" if r.ok else "FAIL",
            f"{r.seconds:.0f}",
        )
        for r in results
    ]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(HEADERS)]
    numeric = range(1, len(HEADERS))

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c.rjust(w) if i in numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [line(HEADERS), line(tuple("-" * w for w in widths)), *map(line, rows)]
    for r in results:
        if not r.ok:
            out += [f"{r.scenario}: {problem}" for problem in r.why()]
    return "\n".join(out)


def markdown(results: list[Result]) -> str:
    """The table as Markdown, for docs/operations.md."""
    out = ["| " + " | ".join(HEADERS) + " |", "|" + " --- |" * len(HEADERS)]
    for r in results:
        t = r.tally
        cells = [r.scenario, t.accepted, t.in_ledger, len(t.lost), len(t.duplicated)]
        out.append(
            "| " + " | ".join(map(str, [*cells, "pass" if r.ok else "FAIL", f"{r.seconds:.0f}"]))
        )
        out[-1] += " |"
    return "\n".join(out)


def as_json(results: list[Result], seconds: float) -> dict[str, Any]:
    return {
        "ok": all(r.ok for r in results),
        "seconds": round(seconds, 1),
        "scenarios": [
            {**asdict(r), "ok": r.ok, "seconds": round(r.seconds, 1), "why": r.why()}
            for r in results
        ],
    }

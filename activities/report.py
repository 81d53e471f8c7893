"""The `write_report` activity: an incident's post-incident review report, from its ledger.

Reads the incident's decisions, computes the figures (`eucp.review.figures`) and writes
report.md, report.json and report.html (`eucp.review.render`). Each file is written to a
temporary name and renamed, so a retried attempt never leaves half a report behind.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import structlog
from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from eucp.review import figures, render
from eucp.runtime.ledger import Ledger

DEFAULT_REPORTS_DIR = Path("var/reports")


class WriteReport(BaseModel):
    """Which incident, and where to write; by default `<reports dir>/<incident id>`."""

    incident_id: str = Field(min_length=1)
    output_dir: str | None = None


class ReportFiles(BaseModel):
    """The paths written, and the ledger rows the report was computed from."""

    markdown_path: str
    json_path: str
    html_path: str
    rows: int
    head_hash: str
    chain_ok: bool


class ReportActivities:
    """Report writing, bound to one open ledger (sync: the worker runs it in a thread pool)."""

    def __init__(self, ledger: Ledger, reports_dir: Path = DEFAULT_REPORTS_DIR) -> None:
        self._ledger = ledger
        self._reports_dir = reports_dir

    @activity.defn(name="write_report")
    def write_report(self, request: WriteReport) -> ReportFiles:
        """Computes the incident's figures from its ledger rows and writes the three files."""
        rows = self._ledger.rows(request.incident_id)
        if not rows:
            raise ApplicationError(
                f"no decisions recorded for {request.incident_id}",
                type="UnknownIncident",
                non_retryable=True,
            )
        computed = figures.compute(rows)
        folder = (
            Path(request.output_dir)
            if request.output_dir
            else self._reports_dir / request.incident_id
        )
        folder.mkdir(parents=True, exist_ok=True)
        paths = {
            "report.md": render.to_markdown(computed),
            "report.json": render.to_json(computed),
            "report.html": render.to_html(computed),
        }
        with _WRITING:
            # the review-start report may finish after the one started at close: the report
            # from more of the ledger stays
            newer = _rows_in(folder / "report.json")
            if newer <= len(rows):
                for name, text in paths.items():
                    _write_atomically(folder / name, text)
        structlog.get_logger().info(
            "review report written" if newer <= len(rows) else "newer review report kept",
            incident_id=request.incident_id,
            folder=str(folder),
            rows=len(rows),
            chain_ok=computed.ledger.chain_ok,
        )
        return ReportFiles(
            markdown_path=str(folder / "report.md"),
            json_path=str(folder / "report.json"),
            html_path=str(folder / "report.html"),
            rows=computed.ledger.rows,
            head_hash=computed.ledger.head_hash,
            chain_ok=computed.ledger.chain_ok,
        )


_WRITING = threading.Lock()  # one check-and-write at a time in this worker


def _rows_in(report_json: Path) -> int:
    """How many ledger rows an existing report was computed from (0 for none or unreadable)."""
    try:
        return int(json.loads(report_json.read_text(encoding="utf-8"))["ledger"]["rows"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def _write_atomically(path: Path, text: str) -> None:
    """Writes `text` next to `path`, then renames it into place."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)

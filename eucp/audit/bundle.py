"""The audit bundle: one zip file that replays and verifies offline, after Temporal's retention
has deleted the histories.

    manifest.json             format, incident, the histories in order, SHA-256 of each member
    histories/{workflow_id}/{k}-{run_id}.json   a run's history (`WorkflowHistory.to_json_dict()`)
    ledger.jsonl              the incident's ledger rows, one JSON object per line
    report/{name}             optional report files (Markdown, JSON, HTML), as given

Reading checks every member against the manifest; the manifest's own SHA-256 (printed by export)
can be kept elsewhere and checked too, since whoever alters a member could also rewrite the sums.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError
from temporalio.client import WorkflowHistory

from eucp.audit.events import run_info
from eucp.audit.history import assemble
from eucp.audit.models import Check, Evidence, ExportReport, Finding, UnreadableRow
from eucp.protocol.decisions import LedgerRow, canonical_json

FORMAT: Literal["eucp-audit-bundle"] = "eucp-audit-bundle"
VERSION = 1
MANIFEST = "manifest.json"
LEDGER = "ledger.jsonl"
REPORT_DIR = "report/"
_REPORT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}$")
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed member times: the same content makes the same zip


class BundleError(Exception):
    """A file that is not a readable bundle at all (the checks cannot even start)."""


class HistoryMember(BaseModel):
    path: str
    workflow_id: str
    run_id: str


class MemberSum(BaseModel):
    sha256: str
    bytes: int


class Manifest(BaseModel):
    format: Literal["eucp-audit-bundle"] = FORMAT
    version: int = VERSION
    incident_id: str
    exported_at: datetime
    histories: list[HistoryMember] = Field(description="every run, in audit order")
    ledger: str = LEDGER
    report: list[str] = Field(default_factory=list)
    members: dict[str, MemberSum]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_bundle(
    path: Path,
    incident_id: str,
    histories: Sequence[WorkflowHistory],
    rows: Sequence[LedgerRow],
    report: Mapping[str, bytes] | None = None,
    exported_at: datetime | None = None,
) -> tuple[Manifest, str]:
    """Write the bundle (atomically: a temporary file renamed into place); returns the manifest
    and the manifest's own SHA-256. `report` maps file names to contents, stored under report/."""
    members: dict[str, bytes] = {}
    listed: list[HistoryMember] = []
    for k, history in enumerate(histories, start=1):
        run_id = run_info(history).run_id
        name = f"histories/{history.workflow_id}/{k:03d}-{run_id}.json"
        members[name] = json.dumps(history.to_json_dict(), separators=(",", ":")).encode()
        listed.append(HistoryMember(path=name, workflow_id=history.workflow_id, run_id=run_id))
    members[LEDGER] = "".join(
        canonical_json(row.model_dump(mode="json")) + "\n" for row in rows
    ).encode()
    for name, content in (report or {}).items():
        if not _REPORT_NAME.match(name):
            raise ValueError(f"report file name {name!r}: use letters, digits, . _ -")
        members[REPORT_DIR + name] = content
    manifest = Manifest(
        incident_id=incident_id,
        exported_at=exported_at or datetime.now(UTC),
        histories=listed,
        report=[REPORT_DIR + name for name in (report or {})],
        members={n: MemberSum(sha256=sha256(c), bytes=len(c)) for n, c in members.items()},
    )
    manifest_bytes = manifest.model_dump_json(indent=1).encode()
    _write_zip(path, {MANIFEST: manifest_bytes, **members})
    return manifest, sha256(manifest_bytes)


def _write_zip(path: Path, members: Mapping[str, bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, content in members.items():
                zf.writestr(zipfile.ZipInfo(name, _ZIP_TIME), content, zipfile.ZIP_DEFLATED)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_bundle(path: Path, manifest_sha256: str | None = None) -> tuple[Evidence, Manifest]:
    """The bundle's evidence, with a finding for every member that is missing, unlisted or not
    as the manifest says, and for a manifest that is not the one expected. Members that fail
    their sum are still read, so the replay and the chain can say more about them."""
    try:
        with zipfile.ZipFile(path) as zf:
            contents = {name: zf.read(name) for name in zf.namelist()}
    except (OSError, zipfile.BadZipFile) as err:
        raise BundleError(f"{path}: not a readable bundle ({err})") from err
    raw = contents.pop(MANIFEST, None)
    if raw is None:
        raise BundleError(f"{path}: no {MANIFEST}: not an audit bundle")
    try:
        manifest = Manifest.model_validate_json(raw)
    except ValidationError as err:
        raise BundleError(f"{path}: {MANIFEST} is not a bundle manifest: {err}") from err
    evidence = Evidence(incident_id=manifest.incident_id, source=f"bundle {path}")
    evidence.findings += _check_members(raw, manifest, contents, manifest_sha256)
    histories = [_history(member, contents, evidence.findings) for member in manifest.histories]
    evidence.histories, problems = assemble(manifest.incident_id, [h for h in histories if h])
    evidence.findings += problems
    evidence.rows, evidence.unreadable = _rows(contents.get(manifest.ledger, b""), manifest.ledger)
    return evidence, manifest


def _check_members(
    raw_manifest: bytes,
    manifest: Manifest,
    contents: Mapping[str, bytes],
    expected: str | None,
) -> list[Finding]:
    findings: list[Finding] = []

    def problem(member: str, text: str) -> None:
        findings.append(Finding(check=Check.bundle, subject=member, problem=text))

    if expected is not None and sha256(raw_manifest) != expected.lower():
        problem(MANIFEST, f"SHA-256 is {sha256(raw_manifest)}, not the expected {expected}")
    for name, listed in manifest.members.items():
        content = contents.get(name)
        if content is None:
            problem(name, "listed in the manifest but missing from the bundle")
        elif sha256(content) != listed.sha256:
            problem(
                name,
                f"SHA-256 {sha256(content)} does not match the manifest's {listed.sha256}: "
                "altered after export (or the manifest was)",
            )
    for name in sorted(contents.keys() - manifest.members.keys()):
        problem(name, "in the bundle but not listed in the manifest")
    referenced = [m.path for m in manifest.histories] + [manifest.ledger, *manifest.report]
    for name in referenced:
        if name not in manifest.members:
            problem(name, "referenced by the manifest but without a SHA-256 sum")
    return findings


def _history(
    member: HistoryMember, contents: Mapping[str, bytes], findings: list[Finding]
) -> WorkflowHistory | None:
    """One history member, or None with a finding if it cannot be read as the manifest says."""
    content = contents.get(member.path)
    if content is None:
        return None  # already a finding: listed but missing
    try:
        history = WorkflowHistory.from_json(member.workflow_id, content.decode())
        run_id = run_info(history).run_id
    except Exception as err:  # protobuf's parse errors share no base class with the others
        findings.append(
            Finding(
                check=Check.bundle, subject=member.path, problem=f"not a workflow history: {err}"
            )
        )
        return None
    if run_id != member.run_id:
        findings.append(
            Finding(
                check=Check.bundle,
                subject=member.path,
                problem=f"holds run {run_id}, but the manifest says run {member.run_id}",
            )
        )
    return history


def _rows(content: bytes, name: str) -> tuple[list[LedgerRow], list[UnreadableRow]]:
    rows: list[LedgerRow] = []
    unreadable: list[UnreadableRow] = []
    for number, line in enumerate(content.decode(errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(LedgerRow.model_validate_json(line))
        except ValidationError as err:
            unreadable.append(UnreadableRow.of(len(rows), f"{name} line {number}", err))
    return rows, unreadable


def export_evidence(
    evidence: Evidence, path: Path, report: Mapping[str, bytes] | None = None
) -> ExportReport:
    """Write the evidence as a bundle; what could not be collected (a missing history, a row
    that no longer decodes) is a finding, and the bundle is written all the same."""
    manifest, digest = write_bundle(
        path, evidence.incident_id, evidence.histories, evidence.rows, report
    )
    findings = list(evidence.findings) + [
        Finding(check=Check.ledger, subject=u.where, problem=f"cannot be read, left out: {u.error}")
        for u in evidence.unreadable
    ]
    return ExportReport(
        incident_id=evidence.incident_id,
        source=evidence.source,
        findings=findings,
        path=str(path),
        manifest_sha256=digest,
        histories=len(manifest.histories),
        rows=len(evidence.rows),
        members=len(manifest.members) + 1,
    )

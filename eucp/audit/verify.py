"""Verify: recompute the ledger's hash chain from the rows alone
(`eucp.runtime.ledger.verify_chain`)."""

from __future__ import annotations

from eucp.audit.models import Check, Evidence, Finding, VerifyReport
from eucp.runtime.ledger import ChainReport, verify_chain


def verify_evidence(evidence: Evidence) -> VerifyReport:
    """The chain report, with the evidence's own findings (e.g. a bundle's manifest)."""
    chain = chain_report(evidence)
    findings = list(evidence.findings)
    if not chain.ok:
        findings.append(
            Finding(
                check=Check.ledger,
                subject=evidence.incident_id,
                problem=chain.problem or f"chain broken at row {chain.first_bad_seq}",
            )
        )
    return VerifyReport(
        incident_id=evidence.incident_id, source=evidence.source, findings=findings, chain=chain
    )


def chain_report(evidence: Evidence) -> ChainReport:
    """`verify_chain` over the rows; a row that no longer decodes breaks the chain where it
    stands, unless the chain broke earlier."""
    incident_id, rows = evidence.incident_id, evidence.rows
    if not evidence.unreadable:
        return verify_chain(incident_id, rows)
    bad = evidence.unreadable[0]
    before = rows[: bad.position]
    report = verify_chain(incident_id, before) if before else None
    if report is not None and not report.ok:
        return report
    seq = before[-1].seq + 1 if before else 1
    return ChainReport(
        incident_id=incident_id,
        ok=False,
        rows_checked=len(before) + 1,
        head_hash=report.head_hash if report is not None else None,
        first_bad_seq=seq,
        problem=f"row {seq} ({bad.where}): stored content is not a valid row (edited?): "
        f"{bad.error}",
    )

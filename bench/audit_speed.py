"""Benchmark 5: how fast an auditor replays an incident's histories (as `eucp audit replay`
does) and verifies its ledger."""

from __future__ import annotations

import time
from dataclasses import dataclass

from temporalio.client import WorkflowHistory

from eucp.audit.replay import replay_histories
from eucp.runtime.ledger import open_ledger, verify_chain


@dataclass
class AuditSpeed:
    histories: int
    events: int
    replay_seconds: float
    replay_failures: int
    rows: int
    read_seconds: float
    verify_seconds: float
    chain_ok: bool

    @property
    def events_per_s(self) -> float:
        return self.events / self.replay_seconds if self.replay_seconds else 0.0

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.verify_seconds if self.verify_seconds else 0.0


async def measure(
    histories: list[WorkflowHistory], ledger_url: str, incident_id: str
) -> AuditSpeed:
    start = time.perf_counter()
    runs = await replay_histories(histories)
    replay_seconds = time.perf_counter() - start
    failures = sum(run.divergence is not None for run in runs)
    with open_ledger(ledger_url) as ledger:
        start = time.perf_counter()
        rows = ledger.rows(incident_id)
        read_seconds = time.perf_counter() - start
    start = time.perf_counter()
    chain = verify_chain(incident_id, rows)
    verify_seconds = time.perf_counter() - start
    return AuditSpeed(
        histories=len(histories),
        events=sum(len(h.events) for h in histories),
        replay_seconds=replay_seconds,
        replay_failures=failures,
        rows=chain.rows_checked,
        read_seconds=read_seconds,
        verify_seconds=verify_seconds,
        chain_ok=chain.ok,
    )

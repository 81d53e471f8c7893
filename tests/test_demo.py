"""`make demo` as a newcomer runs it: the whole crisis over HTTP between separate processes."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from eucp.runtime.stack import EUCP


async def test_the_demo_runs_a_crisis_end_to_end_over_http(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "EUCP_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "EUCP_VAR_DIR": str(tmp_path),
        "EUCP_LEDGER_URL": f"sqlite:///{tmp_path / 'ledger.sqlite3'}",
        "EUCP_REPORTS_DIR": str(tmp_path / "reports"),
    }
    proc = await asyncio.create_subprocess_exec(
        EUCP, "demo", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=240)
    text = out.decode()
    assert proc.returncode == 0, text[-3000:]

    assert re.search(r"LEDGER \d+ decisions, hash chain verified", text), text[-2000:]
    for phase in ("reported", "active", "closed"):
        assert f"PHASE  {phase}" in text
    assert "SLA    justpasteit still silent: escalated to the coordinators" in text
    # one removal order, to one platform, among the voluntary referrals
    assert "ORDER  OCLCTIC (Pharos) (FR): removal order FR-2019-0315-01 to facebook" in text
    # copied to the platform's host State, which scrutinises and upholds it (TCO Art. 4)
    assert "SCRUTINY Coimisiún na Meán (IE), the host State: order FR-2019-0315-01 upheld" in text
    # JustPaste.it, not named at activation, is brought in once copies are found there
    joined = re.search(r"JOIN   justpasteit brought in: (\d+) open items", text)
    assert joined and int(joined.group(1)) > 0, text[-2000:]
    assert "(copies found on JustPaste.it)" in text
    snap = re.search(r"TASKS  snap: (\d+) declined", text)
    assert snap and int(snap.group(1)) > 0, text[-2000:]
    assert re.search(r"TASKS  facebook: \d+ removed; 0 missed deadlines", text)
    [incident] = re.findall(r"incident (inc-[0-9a-f]+)", text)
    assert (tmp_path / "reports" / incident / "report.html").exists()
    assert started_with(str(tmp_path)) == [], "the demo left processes running"


def started_with(marker: str) -> list[int]:
    """Processes whose environment mentions `marker`: what the demo started and left behind."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker.encode() in environ.read_bytes():
                found.append(int(environ.parent.name))
        except OSError:
            continue
    return found

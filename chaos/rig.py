"""One scenario's eucp, every piece a real process: the Temporal dev server on a SQLite file of
its own (so it can be killed and restarted on it), worker processes (`eucp worker`) and the HTTP
API (`eucp api`), on free loopback ports and a task queue of its own. Built on `eucp.runtime.stack`;
everything started is stopped on exit, whatever happened.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import TracebackType

from eucp.client import ApiClient
from eucp.runtime.devserver import dev_server_args, wait_for_port
from eucp.runtime.registry import Registry
from eucp.runtime.stack import EUCP, Stack, free_port
from eucp.runtime.tokens import TokenStore

REPO = Path(__file__).resolve().parent.parent  # where `python -m chaos.audit` is found
STARTUP = 60.0  # seconds a process may take to listen or poll (2 busy cores)
CLIENT_TIMEOUT = 5.0  # seconds a client waits for an answer before it resends (same key)


class Rig:
    """The processes of one scenario, with its folder, registry, tokens and ledger."""

    def __init__(
        self,
        folder: Path,
        registry: Registry,
        ledger_url: str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        self.folder = folder.resolve()
        self.temporal = f"127.0.0.1:{free_port()}"
        self.ui_port = free_port()
        self.api_port = free_port()
        self.api = f"http://127.0.0.1:{self.api_port}"
        self.ledger_url = ledger_url or f"sqlite:///{self.folder / 'ledger.sqlite3'}"
        registry.save(self.folder / "participants.json")
        store = TokenStore(self.folder / "tokens.json")
        self.tokens = {p.id: store.issue(p.id) for p in registry.participants}
        self.env = {
            "EUCP_TEMPORAL_ADDRESS": self.temporal,
            "EUCP_TASK_QUEUE": f"eucp-chaos-{secrets.token_hex(4)}",
            "EUCP_LEDGER_URL": self.ledger_url,
            "EUCP_REGISTRY_PATH": str(self.folder / "participants.json"),
            "EUCP_TOKENS_PATH": str(self.folder / "tokens.json"),
            "EUCP_REPORTS_DIR": str(self.folder / "reports"),
            "EUCP_VAR_DIR": str(self.folder),
            "EUCP_API_PORT": str(self.api_port),
            "EUCP_LOG_JSON": "true",
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        self.stack = Stack(self.folder / "logs", self.env)
        self.workers = 0
        self._clients: list[ApiClient] = []

    # ---- processes -----------------------------------------------------------------------

    async def start(self) -> None:
        """The dev server, one worker and the API."""
        await self.start_temporal()
        await asyncio.gather(self.start_api(), self.start_worker())

    async def start_api(self) -> None:
        """An `eucp api` process on the rig's port: new, or in place of a killed one."""
        self.stack.start("api", [EUCP, "api"])
        await wait_for_port("127.0.0.1", self.api_port, STARTUP)

    async def start_temporal(self) -> None:
        """The dev server on the rig's SQLite file: new, or as a killed one left it."""
        host, _, port = self.temporal.rpartition(":")
        db = self.folder / "temporal.db"
        self.stack.start("temporal", dev_server_args(db, int(port), self.ui_port))
        await wait_for_port(host, int(port), STARTUP)

    async def start_worker(self, role: str = "all") -> str:
        """A new worker process; returns once it polls its task queue. Its name is its log's."""
        self.workers += 1
        name = f"worker-{self.workers}"
        self.stack.start(name, [EUCP, "worker"], {"EUCP_WORKER_ROLE": role})
        await self.logged(name, "worker started")
        return name

    async def replace_worker(self) -> str:
        """The latest worker SIGKILLed and a new one started; returns the evidence."""
        killed = self.kill(f"worker-{self.workers}")
        return f"{killed}; {await self.start_worker()} started"

    async def replace_api(self) -> str:
        """The API SIGKILLed and started again on its port; returns the evidence."""
        killed = self.kill("api")
        await self.start_api()
        return f"{killed}; api started again as pid {self.process('api').pid}"

    def process(self, name: str) -> subprocess.Popen[bytes]:
        """The latest process started under `name`."""
        return next(p for n, p in reversed(self.stack.procs) if n == name)

    def kill(self, name: str) -> str:
        """SIGKILL, by pid: no graceful shutdown, nothing in flight gets to finish. Returns the
        evidence that the fault happened; raises if the process was not running, or survived."""
        proc = self.process(name)
        if proc.poll() is not None:
            raise RuntimeError(f"{name} (pid {proc.pid}) had exited with {proc.returncode}")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        if proc.returncode != -signal.SIGKILL or Path(f"/proc/{proc.pid}").exists():
            raise RuntimeError(f"{name} (pid {proc.pid}) survived SIGKILL: {proc.returncode}")
        return f"{name} (pid {proc.pid}) SIGKILLed: exit {proc.returncode}, pid gone"

    def dead(self) -> list[str]:
        """Processes that died without being killed on purpose (their latest run)."""
        latest = {name: proc for name, proc in self.stack.procs}
        return [
            f"{name} exited with {proc.returncode} (see {self.stack.logs / name}.log)"
            for name, proc in latest.items()
            if proc.returncode not in (None, -signal.SIGKILL)
        ]

    def answered(self, name: str, route: str) -> dict[int, int]:
        """How many requests to `route` (a route template) each run of API process `name`
        answered, by pid: from its JSON access log, one line per answer with its pid."""
        counts = Counter({proc.pid: 0 for n, proc in self.stack.procs if n == name})
        for line in (self.stack.logs / f"{name}.log").read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:  # another line, or the one a killed process left half-written
                continue
            if entry.get("event") == "request" and entry.get("route") == route:
                counts[entry["process"]] += 1
        return dict(counts)

    async def logged(self, name: str, text: str, within: float = STARTUP) -> None:
        """Waits until process `name`'s log holds `text`; raises if it dies or takes too long."""
        log = self.stack.logs / f"{name}.log"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while text not in (log.read_text(errors="replace") if log.exists() else ""):
            if self.process(name).poll() is not None or loop.time() > deadline:
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise RuntimeError(f"{name} did not log {text!r}:\n{tail}")
            await asyncio.sleep(0.1)

    # ---- clients and audit ---------------------------------------------------------------

    def client(self, participant_id: str, timeout: float = CLIENT_TIMEOUT) -> ApiClient:
        """An API client holding the participant's token; closed with the rig."""
        client = ApiClient(self.api, self.tokens[participant_id], timeout=timeout)
        self._clients.append(client)
        return client

    async def audit(self, incident_id: str) -> list[str]:
        """`eucp audit verify`, `replay` and `timeline` as an auditor runs them (`chaos.audit`,
        one process): a problem for each that does not pass, with its findings."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "chaos.audit",
            incident_id,
            cwd=REPO,
            env=self.stack.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        lines = out.decode(errors="replace").splitlines()
        (self.stack.logs / f"audit-{incident_id}.log").write_text("\n".join(lines) + "\n")
        if proc.returncode == 0:
            return []
        findings = [line.strip() for line in lines if "FINDING" in line or "FAILED" in line]
        return [
            f"{line} (see {self.stack.logs}/audit-{incident_id}.log)"
            for line in findings or lines[-5:]
        ][:10]

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()
        await asyncio.to_thread(self.stack.stop)

    async def __aenter__(self) -> Rig:
        try:
            await self.start()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

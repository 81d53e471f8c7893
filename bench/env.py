"""The benchmark's world: a fresh dev server on a SQLite file (WAL), the participants, their
tokens, and the eucp processes (workers by role, the API, simulated platforms) started apart."""

from __future__ import annotations

import asyncio
import secrets
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from eucp.demo import presets
from eucp.demo.presets import COORDINATOR as COORDINATOR  # re-exported for bench.crisis
from eucp.demo.presets import SignedWebhook, compressed_clocks, simulator_webhook
from eucp.runtime.devserver import dev_server_args, wait_for_port
from eucp.runtime.registry import Registry
from eucp.runtime.stack import EUCP, Stack, free_port
from eucp.runtime.tokens import TokenStore

TASK_QUEUE = "eucp-bench"
# SLA clocks that never fire during a benchmark: their timers would be load of their own
QUIET_SLA = compressed_clocks(
    acknowledge=3600, act=7200, assessment=3600, review=86400, deliver=600
)


def takedown_platform(n: int) -> str:
    return f"p{n:02d}"


def sighting_platform(n: int) -> str:
    return f"s{n:02d}"


def activation_platform(n: int) -> str:
    return f"a{n:03d}"


@dataclass
class Options:
    """What to run, and how big."""

    rounds: int = 3
    identifiers: int = 1000
    platforms: int = 10
    activation_identifiers: int = 100
    activation_platforms: int = 200
    naive_tasks: int = 1000
    sighting_rate: float = 50.0
    sighting_seconds: float = 60.0
    sighting_platforms: int = 10
    sighting_drain: float = 120.0
    workflow_workers: int = 1
    activity_workers: int = 1
    act_after: float = 0.2
    api_workers: int = 1
    held_api_workers: int = 3
    run_dir: Path = Path("var/bench")
    skip_naive: bool = False
    skip_sightings: bool = False
    skip_activation: bool = False
    profile: Path | None = None


@dataclass
class World:
    """Everything started for one run; `procs` names each eucp process for the memory figures."""

    options: Options
    run_dir: Path
    stack: Stack
    temporal_address: str
    api_url: str
    ledger_path: Path
    tokens: dict[str, str]
    takedown_hooks: dict[str, tuple[int, str]]  # platform -> (port, secret) of its simulator
    receivers: socket.socket  # listening for the whole run: each round's receivers accept on it
    client: Client | None = None
    pids: dict[str, int] = field(default_factory=dict)
    api_process: str = ""  # the name the API runs under now

    @property
    def ledger_url(self) -> str:
        return f"sqlite:///{self.ledger_path.resolve()}"

    async def connect(self) -> Client:
        if self.client is None:
            self.client = await Client.connect(
                self.temporal_address, data_converter=pydantic_data_converter
            )
        return self.client


def registry(
    takedown: dict[str, tuple[int, str]], received: list[str], receivers_port: int, secret: str
) -> Registry:
    """The coordinator, an auditor, the takedown platforms (webhooks to their simulators) and
    the sighting and activation platforms (webhooks to the benchmark's own receivers)."""
    hooks = {pid: simulator_webhook(port, key) for pid, (port, key) in takedown.items()}
    hooks |= {
        pid: SignedWebhook(f"http://127.0.0.1:{receivers_port}/hook/{pid}", secret)
        for pid in received
    }
    return presets.registry(hooks, names={pid: f"Platform {pid}" for pid in hooks})


SIGHTING_SECRET = secrets.token_urlsafe(24)


async def start_world(options: Options) -> World:
    """Starts the dev server, the workers and the API (the platforms come later, per benchmark)."""
    run = options.run_dir.resolve()
    if run.exists():
        import shutil

        shutil.rmtree(run)
    run.mkdir(parents=True)
    port = free_port()
    takedown = {
        takedown_platform(n): (free_port(), secrets.token_urlsafe(24))
        for n in range(options.platforms)
    }
    received = [sighting_platform(n) for n in range(options.sighting_platforms)]
    received += [activation_platform(n) for n in range(options.activation_platforms)]
    # bound now and held: a port only looked up would be free for any outgoing connection of
    # the crisis rounds to take before the receivers of the sightings round start on it
    receivers = socket.create_server(("127.0.0.1", 0), backlog=1024)
    reg = registry(takedown, received, receivers.getsockname()[1], SIGHTING_SECRET)
    reg.save(run / "participants.json")
    store = TokenStore(run / "tokens.json")
    tokens = {p.id: store.issue(p.id) for p in reg.participants}
    api_port = free_port()
    ledger = run / "ledger.sqlite3"
    env = {
        "EUCP_TEMPORAL_ADDRESS": f"127.0.0.1:{port}",
        "EUCP_TASK_QUEUE": TASK_QUEUE,
        "EUCP_REGISTRY_PATH": str(run / "participants.json"),
        "EUCP_TOKENS_PATH": str(run / "tokens.json"),
        "EUCP_LEDGER_URL": f"sqlite:///{ledger}",
        "EUCP_REPORTS_DIR": str(run / "reports"),
        "EUCP_API_PORT": str(api_port),
        "EUCP_LOG_JSON": "true",
    }
    stack = Stack(run / "logs", env)
    world = World(
        options=options,
        run_dir=run,
        stack=stack,
        temporal_address=f"127.0.0.1:{port}",
        api_url=f"http://127.0.0.1:{api_port}",
        ledger_path=ledger,
        tokens=tokens,
        takedown_hooks=takedown,
        receivers=receivers,
    )
    try:  # a stack that does not come up is stopped, not left running
        stack.start("temporal", dev_server_args(run / "temporal.db", port, free_port()))
        await wait_for_port("127.0.0.1", port)
        await _until_serving(world)
        for n in range(options.workflow_workers):
            _start(world, f"worker-workflows-{n}", [EUCP, "worker"], "workflows")
        for n in range(options.activity_workers):
            _start(world, f"worker-activities-{n}", [EUCP, "worker"], "activities")
        await start_api(world, options.api_workers)
    except BaseException:
        stack.stop()
        receivers.close()
        raise
    return world


async def start_api(world: World, workers: int, within: float = 60.0) -> None:
    """`eucp api` with `workers` processes sharing its port (`--workers`, when more than one)
    in place of the API started before, if any; returns once each of them has started."""
    if world.api_process:
        world.stack.stop_one(world.api_process)
    world.api_process = "api" if workers == 1 else f"api-{workers}-processes"
    args = [EUCP, "api", *(["--workers", str(workers)] if workers > 1 else [])]
    _start(world, world.api_process, args)
    await wait_for_port("127.0.0.1", int(world.api_url.rsplit(":", 1)[1]), within)
    pid, deadline = world.pids[world.api_process], time.monotonic() + within
    while workers > 1 and len(children(pid)) < workers:  # uvicorn's supervisor, then each
        world.stack.check()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(children(pid))} of {workers} API processes after {within}s")
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.0)  # the workers connect and poll; the API processes import the app
    world.stack.check()


def children(pid: int) -> list[int]:
    """The processes `pid` started (Linux's /proc children list), none when it is gone."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []


def _start(
    world: World,
    name: str,
    args: list[str],
    role: str | None = None,
    env: dict[str, str] | None = None,
) -> None:
    extra = dict(env or {})
    if role is not None:
        extra["EUCP_WORKER_ROLE"] = role
    world.stack.start(name, args, extra)
    world.pids[name] = world.stack.procs[-1][1].pid


async def _until_serving(world: World, within: float = 30.0) -> None:
    """The frontend answers before the namespace exists: wait until a client call succeeds."""
    deadline = time.monotonic() + within
    while True:
        try:
            client = await world.connect()
            await client.count_workflows()
            return
        except Exception:
            world.client = None
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


def start_simulators(world: World, platforms: list[str], act_after: float) -> None:
    """One `eucp simulate-platform` process per takedown platform: acknowledges at once, removes
    `act_after` seconds after the notification. Token and secret go by environment."""
    for pid in platforms:
        port, secret = world.takedown_hooks[pid]
        args = [sys.executable, "-m", "eucp.demo.simulator", "--platform-id", pid]
        args += ["--api", world.api_url, "--port", str(port), "--ack-after", "0"]
        args += ["--act-after", str(act_after)]
        env = {"EUCP_TOKEN": world.tokens[pid], "EUCP_WEBHOOK_SECRET": secret}
        _start(world, f"platform-{pid}", args, env=env)

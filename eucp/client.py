"""An HTTP client for the eucp API: typed answers, refusals as exceptions.

One method per read and per report, and `act` for every action of the table
(`eucp.protocol.actions`), so a new action needs no new method. Async (the demo and a platform
simulator run many participants on one event loop); the CLI runs each call with `asyncio.run`.
A 4xx answer raises the protocol's `Refusal` from the API's error body; 429 is retried after its
`Retry-After` (a bounded number of times); an API that cannot be reached or fails (5xx, an
answer of the wrong shape) raises `ApiUnavailable`. Imports neither FastAPI nor Temporal.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import to_jsonable_python

from eucp.api.wire import PlatformView, Reported, TaskChanges
from eucp.protocol.actions import ACTIONS, Action
from eucp.protocol.clocks import SlaSettings
from eucp.protocol.commands import MAX_BATCH
from eucp.protocol.decisions import LedgerRow
from eucp.protocol.incident import IncidentReport
from eucp.protocol.orders import OrderRecord
from eucp.protocol.refusal import Refusal
from eucp.protocol.state import Answer, IncidentStatus, Listing, ReportAnswer, TaskPage
from eucp.protocol.tasks import Task, TaskReport, TaskState

T = TypeVar("T")

DEFAULT_API = "http://127.0.0.1:8000"
REPORT_BATCH = 250  # task reports per request: the sweet spot of the platform's bulk Update


class ApiUnavailable(Exception):
    """The API could not be reached, failed (5xx) or answered something unexpected; a 4xx
    answer is a `Refusal` instead."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ApiTimeout(ApiUnavailable):
    """No answer in time: the request may still have taken effect (retry with the same
    idempotency key to find out without doing it twice)."""


def retry_after(response: httpx.Response, attempt: int, cap: float) -> float:
    """Seconds to wait before retrying a 429: its `Retry-After` (seconds or HTTP date), else a
    doubling back-off; never more than `cap`."""
    header = response.headers.get("retry-after", "")
    wait: float | None = None
    if header.strip().isdigit():
        wait = float(header)
    elif header:
        try:
            wait = email.utils.parsedate_to_datetime(header).timestamp() - time.time()
        except (TypeError, ValueError):
            wait = None
    if wait is None:
        wait = 0.5 * 2**attempt
    return min(max(wait, 0.0), cap)


def _json(value: Any) -> Any:
    """Request bodies as JSON-ready data, without unset optional fields."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items() if v is not None}
    return to_jsonable_python(value)  # a duration as ISO 8601, a time with its zone


def merge_answers(answers: Sequence[Answer]) -> Answer:
    """One `Answer` for several batches of one action: the last phase, everything else summed."""
    return Answer(
        phase=answers[-1].phase,
        decisions=[d for a in answers for d in a.decisions],
        accepted_items=[i for a in answers for i in a.accepted_items],
        duplicates=sum(a.duplicates for a in answers),
        low_quality=sum(a.low_quality for a in answers),
    )


def merge_reports(answers: Sequence[ReportAnswer]) -> ReportAnswer:
    """One `ReportAnswer` for several batches of task reports."""
    return ReportAnswer(
        changed=[t for a in answers for t in a.changed],
        unchanged=[t for a in answers for t in a.unchanged],
        refused={k: v for a in answers for k, v in a.refused.items()},
    )


def batch_key(key: str | None, n: int) -> str | None:
    """The idempotency key of batch `n` (0-based) of a batched call made with `key`."""
    if key is None or n == 0:
        return key  # the first batch keeps the key: a one-batch call is retried as it was
    return f"{key}#{n}"


class ApiClient:
    """The eucp HTTP API as one participant, identified by its bearer token."""

    def __init__(
        self,
        base_url: str = DEFAULT_API,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 5,
        max_wait: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self.max_wait = max_wait
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # ---- transport -------------------------------------------------------------------------

    async def _send(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        key: str | None = None,
    ) -> httpx.Response:
        if method == "POST" and key is None:
            # every change carries a key, so that sending it again below is always safe
            key = f"auto-{uuid.uuid4().hex}"
        headers = {"Idempotency-Key": key} if key else None
        query = {k: v for k, v in (params or {}).items() if v is not None}
        attempt = 0
        while True:
            try:
                response = await self._http.request(
                    method, path, json=_json(body), params=query, headers=headers
                )
            except httpx.TimeoutException as err:
                raise ApiTimeout(
                    f"the eucp API at {self.base_url} did not answer {method} {path} in time"
                ) from err
            except httpx.TransportError as err:
                # e.g. a kept-alive connection the server closed as the request went out: the
                # same request again, with the same key, changes nothing twice
                if attempt < self.max_retries:
                    await asyncio.sleep(min(self.max_wait, 0.1 * 2**attempt))
                    attempt += 1
                    continue
                raise ApiUnavailable(
                    f"cannot reach the eucp API at {self.base_url}: {err}"
                ) from err
            if response.status_code == 429 and attempt < self.max_retries:
                await asyncio.sleep(retry_after(response, attempt, self.max_wait))
                attempt += 1
                continue
            if response.is_success:
                return response
            if response.status_code < 500:
                raise _refusal_of(response)
            raise ApiUnavailable(
                f"the eucp API at {self.base_url} failed: {response.status_code} "
                f"{response.text.strip()[:300]}",
                response.status_code,
            )

    async def _call(
        self,
        adapter: TypeAdapter[T],
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        key: str | None = None,
    ) -> T:
        response = await self._send(method, path, body=body, params=params, key=key)
        try:
            return adapter.validate_json(response.content)
        except ValidationError as err:
            raise ApiUnavailable(
                f"{method} {path}: the API answered something unexpected: {err}"
            ) from err

    async def act(
        self,
        incident_id: str,
        action: Action,
        *,
        idempotency_key: str | None = None,
        **fields: Any,
    ) -> Answer:
        """Takes `action` on the incident with the body `fields` (its command without the
        actor: `eucp.protocol.actions.ACTIONS`). A batched action's identifiers go in requests
        of up to 1,000, their answers merged; a refusal then names what earlier batches
        changed (`Refusal.applied`)."""
        row = ACTIONS[action]
        path = f"/v1/incidents/{incident_id}/{row.path}"
        if not row.batched:
            return await self._call(_ANSWER, "POST", path, body=fields, key=idempotency_key)
        identifiers = fields.get("identifiers", [])
        answers: list[Answer] = []
        for n, start in enumerate(range(0, max(len(identifiers), 1), MAX_BATCH)):
            batch = fields | {"identifiers": identifiers[start : start + MAX_BATCH]}
            key = batch_key(idempotency_key, n)
            try:
                answers.append(await self._call(_ANSWER, "POST", path, body=batch, key=key))
            except Refusal as refused:
                refused.applied = merge_answers(answers) if answers else None
                raise
        return merge_answers(answers)

    # ---- incidents -------------------------------------------------------------------------

    async def report(
        self,
        report: IncidentReport,
        incident_id: str | None = None,
        sla: SlaSettings | None = None,
        idempotency_key: str | None = None,
    ) -> Reported:
        """Reports a potential crisis; the answer names the incident (new or, retried, the same)."""
        body = {"incident_id": incident_id, "report": report, "sla": sla}
        return await self._call(_REPORTED, "POST", "/v1/incidents", body=body, key=idempotency_key)

    async def incidents(
        self,
        phase: str | None = None,
        platform: str | None = None,
        reporter: str | None = None,
        exercise: bool | None = None,
    ) -> list[Listing]:
        """The incidents the caller may see that every filter given finds: in `phase`, with
        `platform` given a part, reported by `reporter`, exercises (True) or not (False)."""
        params = {"phase": phase, "platform": platform, "reporter": reporter, "exercise": exercise}
        return await self._call(_LISTINGS, "GET", "/v1/incidents", params=params)

    async def status(self, incident_id: str) -> IncidentStatus | PlatformView:
        """Staff see the crisis and every platform; a platform sees the phase and its tasks."""

        return await self._call(_STATUS, "GET", f"/v1/incidents/{incident_id}")

    async def decisions(
        self, incident_id: str, after: int = 0, limit: int = 100
    ) -> list[LedgerRow]:
        """Up to `limit` ledger rows of the incident after row `after` (staff only)."""
        params = {"after": after, "limit": limit}
        path = f"/v1/incidents/{incident_id}/decisions"
        return await self._call(_ROWS, "GET", path, params=params)

    async def all_decisions(self, incident_id: str, page: int = 1000) -> list[LedgerRow]:
        """Every ledger row of the incident, paged."""
        rows: list[LedgerRow] = []
        while True:
            batch = await self.decisions(incident_id, after=rows[-1].seq if rows else 0, limit=page)
            rows += batch
            if len(batch) < page:
                return rows

    async def orders(self, incident_id: str) -> list[OrderRecord]:
        """The removal orders the caller may see, with their scrutiny."""
        return await self._call(_ORDERS, "GET", f"/v1/incidents/{incident_id}/orders")

    # ---- a platform's tasks ----------------------------------------------------------------

    async def tasks(
        self,
        incident_id: str,
        platform: str | None = None,
        state: TaskState | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> TaskPage:
        """One page of a platform's tasks (a platform's own; staff name the platform)."""
        params = {"platform": platform, "state": state, "offset": offset, "limit": limit}
        return await self._call(_PAGE, "GET", f"/v1/incidents/{incident_id}/tasks", params=params)

    async def iter_tasks(
        self,
        incident_id: str,
        platform: str | None = None,
        state: TaskState | None = None,
        page: int = 1000,
    ) -> AsyncIterator[Task]:
        """Every task (of `state`), page after page."""
        offset: int | None = 0
        while offset is not None:
            got = await self.tasks(incident_id, platform, state, offset, page)
            for task in got.tasks:
                yield task
            offset = got.next_offset

    async def task_changes(
        self, since: str | None = None, platform: str | None = None, limit: int = 500
    ) -> TaskChanges:
        """One page of the platform's tasks, across its incidents, changed since the checkpoint
        `since` (all of them when None); staff name the platform."""
        params = {"since": since, "platform": platform, "limit": limit}
        return await self._call(_CHANGES, "GET", "/v1/tasks", params=params)

    async def iter_task_changes(
        self, since: str | None = None, platform: str | None = None, limit: int = 500
    ) -> AsyncIterator[TaskChanges]:
        """Every page of changes since the checkpoint, until none is waiting: continue later
        from the last page's `checkpoint`."""
        while True:
            page = await self.task_changes(since, platform, limit)
            yield page
            if not page.more:
                return
            since = page.checkpoint

    async def report_tasks(
        self,
        incident_id: str,
        reports: Sequence[TaskReport],
        idempotency_key: str | None = None,
        batch: int = REPORT_BATCH,
    ) -> ReportAnswer:
        """A platform's reports on its tasks, `batch` per request, answers merged. A refusal
        names what earlier batches changed (`Refusal.applied`)."""
        path = f"/v1/incidents/{incident_id}/tasks/reports"
        answers: list[ReportAnswer] = []
        for n, start in enumerate(range(0, max(len(reports), 1), batch)):  # none: let it refuse
            body = {"reports": list(reports[start : start + batch])}
            try:
                answers.append(
                    await self._call(
                        _REPORT, "POST", path, body=body, key=batch_key(idempotency_key, n)
                    )
                )
            except Refusal as refused:
                refused.applied = merge_reports(answers) if answers else None
                raise
        return merge_reports(answers)


_ANSWER = TypeAdapter(Answer)
_REPORTED = TypeAdapter(Reported)
_LISTINGS = TypeAdapter(list[Listing])
_STATUS: TypeAdapter[IncidentStatus | PlatformView] = TypeAdapter(IncidentStatus | PlatformView)
_REPORT = TypeAdapter(ReportAnswer)
_PAGE = TypeAdapter(TaskPage)
_CHANGES = TypeAdapter(TaskChanges)
_ROWS = TypeAdapter(list[LedgerRow])
_ORDERS = TypeAdapter(list[OrderRecord])


def _refusal_of(response: httpx.Response) -> Refusal:
    """The `Refusal` of a 4xx answer, from the API's error body or, failing that, its text."""
    try:
        body = response.json()
    except ValueError:
        body = None
    return Refusal.from_body(response.status_code, body, response.text or response.reason_phrase)

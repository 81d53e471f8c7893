"""Participant notifications, end to end against a real HTTP receiver on loopback.

The receiver plays a platform's webhook endpoint: it records every request and answers
the statuses a test scripts. The activity runs for real, in `ActivityEnvironment` or in
a Temporal worker; nothing is mocked.
"""

from __future__ import annotations

import json
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():
    # structlog loads rich when it is installed, and rich draws a random number on import:
    # this module defines a workflow, so the sandbox imports it again, passing these through
    import httpx
    from structlog.testing import capture_logs

    from activities.notify import NotifyActivities
    from eucp.protocol.notifications import Delivery, Notification, NotificationKind
    from eucp.protocol.participants import Channel, Contact, ParticipantKind
    from eucp.runtime.registry import Registry
    from tests.receivers import SECRET, Received, Receiver
from eucp.runtime.signing import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureError,
    sign,
    verify,
)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(2.0)) as client:
        yield client


def platform(url: str | None, secret: str | None = SECRET) -> Contact:
    return Contact(
        id="platform-a",
        kind=ParticipantKind.platform,
        name="Platform A",
        channels=[Channel.webhook],
        webhook_url=url,
        webhook_secret=None if secret is None else SecretStr(secret),
    )


def task_notification(recipient_id: str = "platform-a") -> Notification:
    return Notification(
        delivery_id=f"inc-1:task:{recipient_id}:assigned",
        recipient_id=recipient_id,
        kind=NotificationKind.task_assigned,
        incident_id="inc-1",
        summary="Remove the attack video (hash list v3) within 60 minutes",
        data={"task_id": "t-1", "hashes": ["ab" * 32]},
    )


async def notify(contact: Contact, http: httpx.AsyncClient, n: Notification) -> Delivery:
    activities = NotifyActivities(Registry(participants=[contact]), http)
    return await ActivityEnvironment().run(activities.notify, n)


async def notify_error(
    contact: Contact, http: httpx.AsyncClient, n: Notification
) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        await notify(contact, http, n)
    return caught.value


# -- delivery ------------------------------------------------------------------------


async def test_a_platform_receives_a_signed_task_notification(
    receiver: Receiver, http: httpx.AsyncClient
) -> None:
    n = task_notification()

    delivery = await notify(platform(receiver.url), http, n)

    assert delivery == Delivery(
        delivery_id=n.delivery_id, recipient_id="platform-a", channels=["webhook"]
    )
    [request] = receiver.requests
    request.verify()
    assert request.path == "/eucp/hook?token=t0ps3cret"
    assert request.headers[DELIVERY_HEADER] == n.delivery_id
    assert request.headers[EVENT_HEADER] == "task_assigned"
    assert request.headers["Content-Type"] == "application/json"
    assert Notification.model_validate_json(request.body) == n


async def test_the_log_channel_needs_no_http() -> None:
    coordinator = Contact(id="coord-1", kind=ParticipantKind.coordinator, name="Coordinator")
    n = task_notification("coord-1")
    async with httpx.AsyncClient() as closed_client:
        pass  # a closed client raises if the activity tried any HTTP

    with capture_logs() as logs:
        delivery = await notify(coordinator, closed_client, n)

    assert delivery.channels == ["log"]
    assert {
        "event": "notification",
        "incident_id": "inc-1",
        "recipient": "coord-1",
        "route": "primary",
        "kind": "task_assigned",
        "delivery_id": n.delivery_id,
        "summary": n.summary,
        "log_level": "info",
    } in logs


async def test_secrets_stay_out_of_logs_and_errors(
    receiver: Receiver, http: httpx.AsyncClient
) -> None:
    contact = platform(receiver.url).model_copy(update={"channels": [Channel.log, Channel.webhook]})

    with capture_logs() as logs:
        await notify(contact, http, task_notification())
        receiver.default_status = 403
        error = await notify_error(contact, http, task_notification())

    assert len(logs) == 3  # two "notification" lines and one "webhook_delivered"
    for text in (repr(logs), str(error)):
        assert SECRET not in text
        assert "t0ps3cret" not in text


# -- what a receiver checks -------------------------------------------------------------


@pytest.fixture
async def received(receiver: Receiver, http: httpx.AsyncClient) -> Received:
    await notify(platform(receiver.url), http, task_notification())
    return receiver.requests[0]


def test_a_receiver_rejects_a_tampered_body(received: Received) -> None:
    tampered = received.body.replace(b"60 minutes", b"6000 minutes")
    assert tampered != received.body
    with pytest.raises(SignatureError, match="mismatch"):
        verify(
            SECRET,
            received.headers[TIMESTAMP_HEADER],
            tampered,
            received.headers[SIGNATURE_HEADER],
            now=int(time.time()),
        )


def test_a_receiver_rejects_a_delivery_signed_with_another_secret(received: Received) -> None:
    with pytest.raises(SignatureError, match="mismatch"):
        received.verify(secret="someone-elses-secret")


def test_a_receiver_rejects_a_replay_older_than_five_minutes(received: Received) -> None:
    sent_at = int(received.headers[TIMESTAMP_HEADER])
    received.verify(now=sent_at + 300)
    with pytest.raises(SignatureError, match="old"):
        received.verify(now=sent_at + 301)


def test_a_receiver_rejects_a_timestamp_from_the_future(received: Received) -> None:
    sent_at = int(received.headers[TIMESTAMP_HEADER])
    with pytest.raises(SignatureError, match="future"):
        received.verify(now=sent_at - 301)


@pytest.mark.parametrize("timestamp", ["", "abc", "-5", "1e9", " 1700000000", "1_700_000_000"])
def test_a_receiver_rejects_a_timestamp_that_is_not_a_unix_time(timestamp: str) -> None:
    body = b"{}"
    with pytest.raises(SignatureError, match="bad timestamp"):
        verify(SECRET, timestamp, body, sign(SECRET, 1_700_000_000, body), now=1_700_000_000)


def test_the_signature_covers_timestamp_and_body() -> None:
    assert sign("k", 1, b"x") != sign("k", 2, b"x") != sign("k", 1, b"y")
    assert sign("k", 1, b"x").startswith("v1=")
    assert len(sign("k", 1, b"x")) == len("v1=") + 64


# -- failures and retries ---------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 503, 429, 408])
async def test_a_busy_or_failing_receiver_is_retried(
    receiver: Receiver, http: httpx.AsyncClient, status: int
) -> None:
    receiver.default_status = status

    error = await notify_error(platform(receiver.url), http, task_notification())

    assert not error.non_retryable
    assert str(status) in str(error)
    assert "http://127.0.0.1" in str(error)


@pytest.mark.parametrize("status", [404, 400, 401, 410])
async def test_a_receiver_that_refuses_is_not_retried(
    receiver: Receiver, http: httpx.AsyncClient, status: int
) -> None:
    receiver.default_status = status

    error = await notify_error(platform(receiver.url), http, task_notification())

    assert error.non_retryable
    assert str(status) in str(error)
    assert receiver.url.split("?")[0] in str(error)


async def test_an_unreachable_receiver_is_retried(http: httpx.AsyncClient) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before the activity connects

    error = await notify_error(platform(f"http://127.0.0.1:{port}/hook"), http, task_notification())

    assert not error.non_retryable
    assert "unreachable" in str(error)


async def test_a_receiver_that_times_out_is_retried(receiver: Receiver) -> None:
    receiver.delay_s = 1.0
    async with httpx.AsyncClient(timeout=httpx.Timeout(0.2)) as impatient:
        error = await notify_error(platform(receiver.url), impatient, task_notification())

    assert not error.non_retryable
    assert "timed out" in str(error)


async def test_an_unknown_recipient_is_not_retried(http: httpx.AsyncClient) -> None:
    contact = platform("http://127.0.0.1:9/hook")
    error = await notify_error(contact, http, task_notification("platform-zz"))

    assert error.non_retryable
    assert "platform-zz" in str(error)


@pytest.mark.parametrize(
    ("url", "secret", "missing"),
    [(None, SECRET, "webhook_url"), ("http://127.0.0.1:9/hook", None, "webhook_secret")],
)
def test_a_webhook_channel_without_url_or_secret_is_refused_when_the_registry_loads(
    tmp_path: Path, url: str | None, secret: str | None, missing: str
) -> None:
    entry = {
        "id": "platform-a",
        "kind": "platform",
        "name": "Platform A",
        "channels": ["webhook"],
        "webhook_url": url,
        "webhook_secret": secret,
    }
    path = tmp_path / "participants.json"
    path.write_text(json.dumps({"participants": [entry]}))

    with pytest.raises(ValidationError, match=f"participant 'platform-a': .* {missing} is missing"):
        Registry.load(path)


# -- under a real Temporal worker ---------------------------------------------------------


@workflow.defn
class NotifyOnce:
    """The smallest caller: one notification under a short retry policy."""

    @workflow.run
    async def run(self, n: Notification) -> Delivery:
        return await workflow.execute_activity_method(
            NotifyActivities.notify,
            n,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(milliseconds=100), maximum_attempts=5
            ),
        )


async def test_retries_deliver_exactly_once_with_the_same_delivery_id(
    receiver: Receiver, http: httpx.AsyncClient
) -> None:
    receiver.statuses = [503, 503]
    n = task_notification()
    task_queue = f"notify-{uuid.uuid4()}"
    activities = NotifyActivities(Registry(participants=[platform(receiver.url)]), http)

    async with (
        await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=str(Path(sys.executable).parent / "temporal-test-server"),
            data_converter=pydantic_data_converter,
        ) as env,
        Worker(
            env.client,
            task_queue=task_queue,
            workflows=[NotifyOnce],
            activities=[activities.notify],
        ),
    ):
        delivery = await env.client.execute_workflow(
            NotifyOnce.run, n, id=f"notify-once-{uuid.uuid4()}", task_queue=task_queue
        )

    assert delivery == Delivery(
        delivery_id=n.delivery_id, recipient_id="platform-a", channels=["webhook"]
    )
    assert [r.status for r in receiver.requests] == [503, 503, 200]
    assert {r.headers[DELIVERY_HEADER] for r in receiver.requests} == {n.delivery_id}
    assert {r.body for r in receiver.requests} == {n.model_dump_json().encode()}
    [accepted] = [r for r in receiver.requests if 200 <= r.status < 300]
    accepted.verify()

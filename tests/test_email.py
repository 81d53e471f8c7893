"""Email notifications and backup contacts, end to end against a real SMTP server on loopback.

The server (aiosmtpd) plays a participant's mail provider: it records every message it is
handed and answers the replies a test scripts (a 550 refusal, a 451 deferral). The activity
runs for real, in `ActivityEnvironment` or in a Temporal worker; nothing is mocked.
"""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from pydantic import SecretStr, ValidationError
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():
    # structlog loads rich when it is installed, and rich draws a random number on import:
    # this module defines a workflow, so the sandbox imports it again, passing these through
    import httpx
    from structlog.testing import capture_logs

    from activities.notify import Mailer, NotifyActivities
    from eucp.protocol.notifications import Delivery, Notification, NotificationKind, Route
    from eucp.protocol.participants import Backup, Channel, Contact, ParticipantKind
    from eucp.runtime.registry import Registry
    from eucp.runtime.settings import Settings, SmtpSettings, SmtpTls
    from eucp.runtime.signing import DELIVERY_HEADER, EVENT_HEADER
    from eucp.runtime.stack import free_port

SENDER = "eucp@eucp.test"
TAKEDOWN_DESK = "takedown@platform-a.example"
ON_CALL = "oncall@platform-a.example"
PASSWORD = "smtp-pa55word-never-logged"


@dataclass(frozen=True)
class Attempt:
    """One message as the server was handed it (after DATA), and what it answered."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    reply: str

    @property
    def accepted(self) -> bool:
        return self.reply.startswith("250")


class Mailbox:
    """An SMTP server on 127.0.0.1: answers `rcpt_replies` to RCPT and `data_replies` to
    DATA in order, then accepts; with `credentials`, it offers AUTH and checks them."""

    def __init__(self, credentials: tuple[str, str] | None = None) -> None:
        self.attempts: list[Attempt] = []
        self.rcpt_replies: list[str] = []
        self.data_replies: list[str] = []
        self.logins: list[str] = []
        self._credentials = credentials
        self._lock = threading.Lock()
        port = free_port()
        auth: dict[str, Any] = {}
        if credentials is not None:
            auth = {"authenticator": self._authenticate, "auth_require_tls": False}
        self._controller = Controller(
            self, hostname="127.0.0.1", port=port, server_hostname="mail.test", **auth
        )
        self.settings = SmtpSettings(
            host="127.0.0.1", port=port, sender=SENDER, timeout=timedelta(seconds=5)
        )

    @property
    def received(self) -> list[EmailMessage]:
        return [a.message for a in self.attempts if a.accepted]

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        with self._lock:
            if self.rcpt_replies:
                return self.rcpt_replies.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            reply = self.data_replies.pop(0) if self.data_replies else "250 Message accepted"
            wire = envelope.content.replace(b"\r\n", b"\n")  # as a mail client reads it
            message = message_from_bytes(wire, policy=policy.default)
            self.attempts.append(
                Attempt(
                    envelope.mail_from, list(envelope.rcpt_tos), cast(EmailMessage, message), reply
                )
            )
        return reply

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        self.logins.append(login)
        return AuthResult(success=(login, password) == self._credentials, handled=False)

    def __enter__(self) -> Mailbox:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with Mailbox() as m:
        yield m


@pytest.fixture
async def no_http() -> httpx.AsyncClient:
    """A closed client: any HTTP the activity tried would raise."""
    async with httpx.AsyncClient() as client:
        pass
    return client


def platform(**changes: Any) -> Contact:
    fields: dict[str, Any] = {
        "id": "platform-a",
        "kind": ParticipantKind.platform,
        "name": "Platform A",
        "channels": [Channel.email],
        "email": TAKEDOWN_DESK,
    }
    return Contact(**(fields | changes))


def task_notification(delivery_id: str = "inc-1/platform-a/n1", **changes: Any) -> Notification:
    fields: dict[str, Any] = {
        "delivery_id": delivery_id,
        "recipient_id": "platform-a",
        "kind": NotificationKind.task_assigned,
        "incident_id": "inc-1",
        "summary": "1 new takedown task(s)",
        "data": {
            "acknowledge_by": "2026-03-15T02:00:00Z",
            "act_by": "2026-03-15T02:45:00Z",
            "tasks": [
                {
                    "task_id": "t-1",
                    "identifier": {"kind": "url", "value": "https://video.example/watch?v=abc"},
                }
            ],
        },
    }
    return Notification(**(fields | changes))


async def notify(
    contact: Contact, n: Notification, mail: Mailer | None, http: httpx.AsyncClient
) -> Delivery:
    activities = NotifyActivities(Registry(participants=[contact]), http, mail=mail)
    return await ActivityEnvironment().run(activities.notify, n)


async def notify_error(
    contact: Contact, n: Notification, mail: Mailer | None, http: httpx.AsyncClient
) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        await notify(contact, n, mail, http)
    return caught.value


def data_section(body: str) -> Any:
    """The pretty JSON after `Data:` in a notification email's body."""
    return json.loads(body.split("\nData:\n", 1)[1].split("\n\n-- \n", 1)[0])


# -- delivery ------------------------------------------------------------------------


async def test_a_platform_contact_receives_the_task_notification_by_email(
    mailbox: Mailbox, no_http: httpx.AsyncClient
) -> None:
    n = task_notification()

    delivery = await notify(platform(), n, Mailer(mailbox.settings), no_http)

    assert delivery == Delivery(
        delivery_id=n.delivery_id, recipient_id="platform-a", channels=["email"]
    )
    [attempt] = mailbox.attempts
    assert attempt.mail_from == SENDER
    assert attempt.rcpt_tos == [TAKEDOWN_DESK]
    message = attempt.message
    assert message["Subject"] == "[eucp] task_assigned: 1 new takedown task(s)"
    assert message["From"] == f"eucp <{SENDER}>"
    assert message["To"] == f"Platform A <{TAKEDOWN_DESK}>"
    assert message[DELIVERY_HEADER] == n.delivery_id
    assert message[EVENT_HEADER] == "task_assigned"
    assert message["Message-ID"].startswith("<inc-1/platform-a/n1.")
    assert message["Message-ID"].endswith("@eucp.test>")
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Date"] is not None
    body = message.get_content()
    assert body.startswith("1 new takedown task(s)\n")
    assert f"Delivery: {n.delivery_id}" in body
    assert data_section(body) == n.data


async def test_every_attempt_of_a_delivery_carries_the_same_message_id(
    mailbox: Mailbox, no_http: httpx.AsyncClient
) -> None:
    mail = Mailer(mailbox.settings)
    for n in (task_notification(), task_notification(), task_notification("inc-1/platform-a/n2")):
        await notify(platform(), n, mail, no_http)

    first, again, other = (m["Message-ID"] for m in mailbox.received)
    assert first == again
    assert other != first


async def test_a_backup_contact_receives_the_backup_route_notice_by_email(
    mailbox: Mailbox, no_http: httpx.AsyncClient
) -> None:
    contact = platform(
        channels=[Channel.webhook],
        email=None,
        webhook_url="http://127.0.0.1:9/hook",
        webhook_secret=SecretStr("platform-a-shared-secret"),
        backup=Backup(name="Trust & Safety on call", email=ON_CALL),
    )
    n = task_notification(
        "inc-1/platform-a/n7",
        kind=NotificationKind.reminder,
        summary="task t-1 not acknowledged within 15 minutes",
        data={"tasks": ["t-1"], "stage": "acknowledge"},
        route=Route.backup,
    )

    delivery = await notify(contact, n, Mailer(mailbox.settings), no_http)  # no webhook call

    assert delivery == Delivery(
        delivery_id=n.delivery_id, recipient_id="platform-a", channels=["email"], route="backup"
    )
    [attempt] = mailbox.attempts
    assert attempt.rcpt_tos == [ON_CALL]
    message = attempt.message
    assert message["To"].addresses[0].display_name == "Trust & Safety on call"
    assert message["Subject"] == "[eucp] reminder: task t-1 not acknowledged within 15 minutes"
    assert message[DELIVERY_HEADER] == n.delivery_id
    body = message.get_content()
    assert "You receive this as the backup contact of Platform A (platform-a)." in body
    assert data_section(body) == {"tasks": ["t-1"], "stage": "acknowledge"}


async def test_the_backup_route_without_a_backup_contact_fails_for_good(
    mailbox: Mailbox, no_http: httpx.AsyncClient
) -> None:
    n = task_notification(kind=NotificationKind.reminder, route=Route.backup)

    error = await notify_error(platform(), n, Mailer(mailbox.settings), no_http)

    assert error.type == "NoBackupContact"
    assert error.non_retryable
    assert "'platform-a'" in str(error)
    assert mailbox.attempts == []


async def test_the_primary_route_never_reaches_the_backup(
    mailbox: Mailbox, no_http: httpx.AsyncClient
) -> None:
    contact = platform(backup=Backup(name="On call", email=ON_CALL))

    await notify(contact, task_notification(), Mailer(mailbox.settings), no_http)

    assert [a.rcpt_tos for a in mailbox.attempts] == [[TAKEDOWN_DESK]]


# -- refusals, deferrals and outages ------------------------------------------------------


@pytest.mark.parametrize(
    ("stage", "reply"),
    [
        ("rcpt", "550 5.1.1 Mailbox unknown"),
        ("data", "554 5.7.1 Message rejected by policy"),
    ],
)
async def test_a_permanent_refusal_is_final(
    mailbox: Mailbox, no_http: httpx.AsyncClient, stage: str, reply: str
) -> None:
    (mailbox.rcpt_replies if stage == "rcpt" else mailbox.data_replies).append(reply)

    error = await notify_error(platform(), task_notification(), Mailer(mailbox.settings), no_http)

    assert error.type == "EmailRejected"
    assert error.non_retryable
    assert reply[:3] in str(error)
    assert mailbox.received == []


@pytest.mark.parametrize(
    ("stage", "reply"),
    [
        ("rcpt", "451 4.7.1 Greylisted, try again later"),
        ("data", "451 4.3.0 Temporarily unable to accept"),
    ],
)
async def test_a_temporary_refusal_is_retried(
    mailbox: Mailbox, no_http: httpx.AsyncClient, stage: str, reply: str
) -> None:
    (mailbox.rcpt_replies if stage == "rcpt" else mailbox.data_replies).append(reply)

    error = await notify_error(platform(), task_notification(), Mailer(mailbox.settings), no_http)

    assert error.type == "EmailUnavailable"
    assert not error.non_retryable
    assert "451" in str(error)


async def test_an_unreachable_mail_server_is_retried(no_http: httpx.AsyncClient) -> None:
    mail = Mailer(SmtpSettings(host="127.0.0.1", port=free_port(), sender=SENDER))

    error = await notify_error(platform(), task_notification(), mail, no_http)

    assert error.type == "EmailUnavailable"
    assert not error.non_retryable
    assert "unreachable" in str(error)


async def test_a_mail_server_that_never_answers_is_retried(no_http: httpx.AsyncClient) -> None:
    with socket.socket() as silent:  # accepts connections, never greets
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        settings = SmtpSettings(
            host="127.0.0.1", port=port, sender=SENDER, timeout=timedelta(seconds=0.3)
        )

        error = await notify_error(platform(), task_notification(), Mailer(settings), no_http)

    assert error.type == "EmailUnavailable"
    assert not error.non_retryable
    assert "timed out" in str(error)


async def test_starttls_against_a_server_without_it_fails_for_good(
    mailbox: Mailbox, no_http: httpx.AsyncClient
) -> None:
    settings = mailbox.settings.model_copy(update={"tls": SmtpTls.starttls})

    error = await notify_error(platform(), task_notification(), Mailer(settings), no_http)

    assert error.type == "EmailMisconfigured"
    assert error.non_retryable
    assert "STARTTLS" in str(error)
    assert mailbox.attempts == []


async def test_an_email_channel_on_a_worker_without_a_mailer_fails_for_good(
    no_http: httpx.AsyncClient,
) -> None:
    error = await notify_error(platform(), task_notification(), None, no_http)

    assert error.type == "MisconfiguredChannel"
    assert error.non_retryable
    assert "'platform-a'" in str(error)


# -- credentials ------------------------------------------------------------------------


async def test_the_mailer_logs_in_and_the_password_shows_nowhere(
    no_http: httpx.AsyncClient,
) -> None:
    with Mailbox(credentials=("eucp", PASSWORD)) as server:
        good = server.settings.model_copy(
            update={"username": "eucp", "password": SecretStr(PASSWORD)}
        )
        wrong = good.model_copy(update={"password": SecretStr("not-" + PASSWORD)})

        with capture_logs() as logs:
            await notify(platform(), task_notification(), Mailer(good), no_http)
            error = await notify_error(platform(), task_notification(), Mailer(wrong), no_http)

    assert set(server.logins) == {"eucp"}  # a refused login is tried with each mechanism
    assert len(server.received) == 1
    assert error.type == "EmailRejected"
    assert error.non_retryable
    assert "535" in str(error)
    for text in (repr(logs), str(error), repr(good), repr(Mailer(good).settings)):
        assert PASSWORD not in text


# -- settings -----------------------------------------------------------------------------


def test_smtp_settings_come_from_eucp_smtp_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "EUCP_SMTP_HOST": "smtp.eucp.example",
        "EUCP_SMTP_PORT": "587",
        "EUCP_SMTP_FROM": "crisis@eucp.example",
        "EUCP_SMTP_USERNAME": "eucp",
        "EUCP_SMTP_PASSWORD": PASSWORD,
        "EUCP_SMTP_TLS": "starttls",
        "EUCP_SMTP_TIMEOUT": "PT20S",
    }.items():
        monkeypatch.setenv(name, value)

    settings = Settings()

    assert Mailer(settings).settings == SmtpSettings(
        host="smtp.eucp.example",
        port=587,
        sender="crisis@eucp.example",
        username="eucp",
        password=SecretStr(PASSWORD),
        tls=SmtpTls.starttls,
        timeout=timedelta(seconds=20),
    )
    assert PASSWORD not in repr(settings)


def test_smtp_settings_default_to_a_local_relay_without_tls() -> None:
    assert SmtpSettings() == SmtpSettings(
        host="127.0.0.1", port=25, sender="eucp@localhost", tls=SmtpTls.none
    )


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        ({"EUCP_SMTP_FROM": "eucp.example"}, "smtp_from"),
        ({"EUCP_SMTP_USERNAME": "eucp"}, "smtp_username and smtp_password"),
        ({"EUCP_SMTP_TLS": "ssl"}, "smtp_tls"),
    ],
)
def test_bad_smtp_settings_are_refused_at_start(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], complaint: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(ValidationError, match=complaint):
        Settings()


# -- the registry -------------------------------------------------------------------------


def load(tmp_path: Path, **entry: Any) -> Registry:
    path = tmp_path / "participants.json"
    base = {"id": "platform-a", "kind": "platform", "name": "Platform A"}
    path.write_text(json.dumps({"participants": [base | entry]}))
    return Registry.load(path)


@pytest.mark.parametrize(
    ("entry", "complaint"),
    [
        (
            {"channels": ["email"]},
            "participant 'platform-a': channels includes email but email is missing",
        ),
        (
            {"backup": {"name": "On call"}},
            "participant 'platform-a': backup.channels includes email but backup.email is missing",
        ),
        (
            {"backup": {"name": "On call", "channels": ["webhook"], "email": ON_CALL}},
            "backup.channels includes webhook but backup.webhook_url is missing",
        ),
        (
            {"channels": ["email"], "email": "takedown at platform-a.example"},
            "participants.0.email\n  Value error, not an email address: expected local-part@",
        ),
        (
            {"backup": {"name": "On call", "email": "oncall@platform_a.example"}},
            "participants.0.backup.email\n  Value error, not an email address: domain",
        ),
        (
            {"backup": {"name": "On call", "email": ON_CALL, "phone": "+32 2 000 00 00"}},
            "participants.0.backup.phone\n  Extra inputs are not permitted",
        ),
    ],
)
def test_a_registry_entry_that_cannot_be_reached_is_refused_at_load(
    tmp_path: Path, entry: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        load(tmp_path, **entry)

    assert complaint in str(caught.value)


def test_the_public_view_holds_no_addresses_or_secrets(tmp_path: Path) -> None:
    registry = load(
        tmp_path,
        channels=["email", "webhook"],
        email=TAKEDOWN_DESK,
        webhook_url="https://hooks.platform-a.example/eucp",
        webhook_secret="platform-a-shared-secret",
        backup={"name": "On call", "email": ON_CALL},
    )

    [public] = registry.public()

    assert public.model_dump() == {
        "id": "platform-a",
        "kind": "platform",
        "name": "Platform A",
        "country": None,  # a Member State authority's, which a platform has not
    }


# -- under a real Temporal worker ---------------------------------------------------------


@workflow.defn
class EmailOnce:
    """The smallest caller: one notification under a short retry policy."""

    @workflow.run
    async def run(self, n: Notification) -> Delivery:
        return await workflow.execute_activity(
            "notify",
            n,
            result_type=Delivery,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(milliseconds=100), maximum_attempts=5
            ),
        )


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


async def test_a_deferred_email_is_retried_as_the_same_message(
    mailbox: Mailbox, http: httpx.AsyncClient, skipping_env: WorkflowEnvironment
) -> None:
    mailbox.data_replies = ["451 4.3.0 Temporarily unable to accept"]
    n = task_notification()
    task_queue = f"email-{uuid.uuid4()}"
    activities = NotifyActivities(
        Registry(participants=[platform()]), http, mail=Mailer(mailbox.settings)
    )

    async with Worker(
        skipping_env.client,
        task_queue=task_queue,
        workflows=[EmailOnce],
        activities=[activities.notify],
    ):
        delivery = await skipping_env.client.execute_workflow(
            EmailOnce.run, n, id=f"email-once-{uuid.uuid4()}", task_queue=task_queue
        )

    assert delivery.channels == ["email"]
    assert [a.reply[:3] for a in mailbox.attempts] == ["451", "250"]
    assert len({a.message["Message-ID"] for a in mailbox.attempts}) == 1
    assert {a.message[DELIVERY_HEADER] for a in mailbox.attempts} == {n.delivery_id}

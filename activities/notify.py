"""The `notify` activity: deliver one notification on each channel of the routed contact.

The route picks the contact: the participant's own channels (`primary`) or the backup
contact of its registry entry (`backup`). Addresses and secrets come from the registry
here, inside the activity, so they never enter workflow history. Failures are classified
for Temporal: a receiver or mail server that is down or busy gets retried under the
caller's retry policy; one that refuses the message for good, or a registry entry or
setting that cannot work, fails at once because retrying cannot help.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from email.message import EmailMessage

import aiosmtplib
import httpx
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from eucp.protocol.notifications import Delivery, Notification, Route
from eucp.protocol.participants import Backup, Channel, Contact, Reach
from eucp.runtime.mail import compose
from eucp.runtime.registry import Registry, RegistryFile
from eucp.runtime.settings import Settings, SmtpSettings, SmtpTls
from eucp.runtime.signing import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
)

log = structlog.get_logger(__name__)

RETRYABLE_STATUSES = frozenset({408, 429})


def _redacted(url: str) -> str:
    """The URL without credentials, query or fragment, safe for errors and logs."""
    return str(httpx.URL(url).copy_with(userinfo=b"", query=None, fragment=None))


class Mailer:
    """Sends notification emails through one SMTP server, one connection per message."""

    def __init__(self, settings: SmtpSettings | Settings) -> None:
        self.settings = settings.smtp if isinstance(settings, Settings) else settings

    @property
    def server(self) -> str:
        """`host:port`, for logs and errors (never the credentials)."""
        return f"{self.settings.host}:{self.settings.port}"

    async def send(self, message: EmailMessage, to: str) -> None:
        """Hand `message` for `to` to the server; raise a classified `ApplicationError` if
        it is not accepted: 5xx is final, 4xx, timeouts and connection errors are retried."""
        s = self.settings
        try:
            await aiosmtplib.send(
                message,
                sender=s.sender,
                recipients=[to],
                hostname=s.host,
                port=s.port,
                username=s.username,
                password=None if s.password is None else s.password.get_secret_value(),
                timeout=s.timeout.total_seconds(),
                use_tls=s.tls is SmtpTls.tls,
                start_tls=s.tls is SmtpTls.starttls,
            )
        except aiosmtplib.SMTPRecipientsRefused as err:
            refusals = [(r.code, r.message) for r in err.recipients]
            raise self._refused(refusals, "the recipient") from None
        except aiosmtplib.SMTPResponseException as err:
            raise self._refused([(err.code, err.message)], _stage(err)) from None
        except TimeoutError as err:  # aiosmtplib's timeouts are TimeoutErrors
            raise ApplicationError(
                f"SMTP server {self.server} timed out ({type(err).__name__})",
                type="EmailUnavailable",
            ) from None
        except OSError as err:  # refused connections, lost connections, TLS handshakes
            raise ApplicationError(
                f"SMTP server {self.server} unreachable ({type(err).__name__}: {err})",
                type="EmailUnavailable",
            ) from None
        except aiosmtplib.SMTPException as err:  # e.g. STARTTLS or AUTH not offered
            raise ApplicationError(
                f"SMTP server {self.server} cannot send as configured: {err.message} "
                "(check the EUCP_SMTP_* settings)",
                type="EmailMisconfigured",
                non_retryable=True,
            ) from None

    def _refused(self, refusals: list[tuple[int, str]], stage: str) -> ApplicationError:
        """5xx from the server is final; anything else (4xx: try later) is retried."""
        answer = "; ".join(f"{code} {_short(text)}" for code, text in refusals)
        if all(code >= 500 for code, _ in refusals):
            return ApplicationError(
                f"SMTP server {self.server} refused {stage} with {answer}",
                type="EmailRejected",
                non_retryable=True,
            )
        return ApplicationError(
            f"SMTP server {self.server} deferred {stage} with {answer}, will retry",
            type="EmailUnavailable",
        )


def _stage(err: aiosmtplib.SMTPResponseException) -> str:
    """What the server refused, from the kind of refusal."""
    if isinstance(err, aiosmtplib.SMTPSenderRefused):
        return "the sender"
    if isinstance(err, aiosmtplib.SMTPAuthenticationError):
        return "the login"
    if isinstance(err, aiosmtplib.SMTPDataError):
        return "the message"
    if isinstance(err, aiosmtplib.SMTPConnectResponseError):
        return "the connection"
    return "the command"


def _short(text: str, limit: int = 200) -> str:
    """A server's answer on one line, cut to `limit` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


class NotifyActivities:
    """Notification delivery, bound to the registry, a shared HTTP client and, for the
    email channel, a mailer (without one, an email channel fails as misconfigured)."""

    def __init__(
        self,
        registry: Registry | RegistryFile,
        http: httpx.AsyncClient,
        *,
        mail: Mailer | None = None,
    ) -> None:
        """`registry` a file is read again when it changes: a participant added, a webhook
        secret rotated or a backup contact set counts for the next delivery, no restart."""
        self._registry = registry
        self._http = http
        self._mail = mail

    @activity.defn(name="notify")
    async def notify(self, n: Notification) -> Delivery:
        """Deliver `n` on every channel of the routed contact; raise if any channel fails.

        It heartbeats while it works, so that a worker dying mid-delivery is noticed within the
        heartbeat timeout and the delivery retried, not given up when `deliver_within` is short.
        """
        beating = asyncio.create_task(_heartbeat())
        try:
            return await self._deliver(n)
        finally:
            beating.cancel()

    async def _deliver(self, n: Notification) -> Delivery:
        try:
            registry = self._registry
            current = registry.current() if isinstance(registry, RegistryFile) else registry
            contact = current.get(n.recipient_id)
        except KeyError:
            raise ApplicationError(
                f"recipient {n.recipient_id!r} is not in the registry",
                type="UnknownRecipient",
                non_retryable=True,
            ) from None
        reach: Reach = contact
        if n.route is Route.backup:
            if contact.backup is None:
                raise ApplicationError(
                    f"participant {contact.id!r} has no backup contact in the registry",
                    type="NoBackupContact",
                    non_retryable=True,
                )
            reach = contact.backup
        for channel in reach.channels:
            if channel is Channel.log:
                log.info(
                    "notification",
                    incident_id=n.incident_id,
                    recipient=n.recipient_id,
                    route=n.route.value,
                    kind=n.kind.value,
                    delivery_id=n.delivery_id,
                    summary=n.summary,
                )
            elif channel is Channel.email:
                await self._send_email(contact, reach, n)
            else:
                await self._post_webhook(contact, reach, n)
        return Delivery(
            delivery_id=n.delivery_id,
            recipient_id=n.recipient_id,
            channels=[channel.value for channel in reach.channels],
            route=n.route,
        )

    async def _send_email(self, contact: Contact, reach: Reach, n: Notification) -> None:
        """Mail `n` to the routed contact's address; raise unless the server accepts it."""
        if not reach.email:
            raise _misconfigured(contact, n.route, "email")
        if self._mail is None:
            raise ApplicationError(
                f"participant {contact.id!r} has an email channel but this worker has no "
                "mailer (SMTP settings)",
                type="MisconfiguredChannel",
                non_retryable=True,
            )
        backup = reach if isinstance(reach, Backup) else None
        message = compose(
            n,
            sender=self._mail.settings.sender,
            to_name=contact.name if backup is None else backup.name,
            to_address=reach.email,
            now=datetime.now(UTC),
            backup_for=None if backup is None else f"{contact.name} ({contact.id})",
        )
        await self._mail.send(message, reach.email)
        log.info(
            "email_delivered",
            delivery_id=n.delivery_id,
            recipient=n.recipient_id,
            route=n.route.value,
            server=self._mail.server,
            message_id=message["Message-ID"],
        )

    async def _post_webhook(self, contact: Contact, reach: Reach, n: Notification) -> None:
        """POST `n` as signed JSON to the routed contact's webhook; raise unless it answers 2xx."""
        if not reach.webhook_url:
            raise _misconfigured(contact, n.route, "webhook_url")
        if reach.webhook_secret is None or not reach.webhook_secret.get_secret_value():
            raise _misconfigured(contact, n.route, "webhook_secret")
        url = _redacted(reach.webhook_url)
        body = n.model_dump_json().encode()
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            DELIVERY_HEADER: n.delivery_id,
            EVENT_HEADER: n.kind.value,
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(reach.webhook_secret.get_secret_value(), timestamp, body),
        }
        try:
            response = await self._http.post(reach.webhook_url, content=body, headers=headers)
        except httpx.TimeoutException as err:
            raise ApplicationError(
                f"webhook {url} timed out ({type(err).__name__})", type="WebhookUnavailable"
            ) from None
        except httpx.TransportError as err:
            raise ApplicationError(
                f"webhook {url} unreachable ({type(err).__name__}: {err})",
                type="WebhookUnavailable",
            ) from None
        status = response.status_code
        if response.is_success:
            log.info(
                "webhook_delivered",
                delivery_id=n.delivery_id,
                recipient=n.recipient_id,
                url=url,
                status=status,
            )
            return
        if status in RETRYABLE_STATUSES or status >= 500:
            raise ApplicationError(
                f"webhook {url} answered {status}, will retry", type="WebhookUnavailable"
            )
        raise ApplicationError(
            f"webhook {url} refused the delivery with {status}",
            type="WebhookRejected",
            non_retryable=True,
        )


def _misconfigured(contact: Contact, route: Route, field: str) -> ApplicationError:
    """A registry entry that asks for a channel but lacks what it needs (the registry refuses
    such entries when it loads; this covers one built without validation)."""
    channel = "email" if field == "email" else "webhook"
    where = "backup." if route is Route.backup else ""
    return ApplicationError(
        f"participant {contact.id!r} has {where}channels with {channel} but no "
        f"{where}{field} in the registry",
        type="MisconfiguredChannel",
        non_retryable=True,
    )


async def _heartbeat(every: float = 1.0) -> None:
    while True:
        activity.heartbeat()
        await asyncio.sleep(every)

"""The `notify` activity: deliver one notification on each of the recipient's channels.

Addresses and secrets come from the registry here, inside the activity, so they never
enter workflow history. Failures are classified for Temporal: a receiver that is down or
busy gets retried under the caller's retry policy; one that refuses the request, or a
registry entry that cannot work, fails at once because retrying cannot help.
"""

from __future__ import annotations

import time

import httpx
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from eucp.notifications import Delivery, Notification
from eucp.participants import Channel, Contact, Registry
from eucp.signing import (
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


class NotifyActivities:
    """Notification delivery, bound to the registry and a shared HTTP client."""

    def __init__(self, registry: Registry, http: httpx.AsyncClient) -> None:
        self._registry = registry
        self._http = http

    @activity.defn(name="notify")
    async def notify(self, n: Notification) -> Delivery:
        """Deliver `n` on every channel of its recipient; raise if any channel fails."""
        try:
            contact = self._registry.get(n.recipient_id)
        except KeyError:
            raise ApplicationError(
                f"recipient {n.recipient_id!r} is not in the registry",
                type="UnknownRecipient",
                non_retryable=True,
            ) from None
        for channel in contact.channels:
            if channel is Channel.log:
                log.info(
                    "notification",
                    incident_id=n.incident_id,
                    recipient=n.recipient_id,
                    kind=n.kind.value,
                    delivery_id=n.delivery_id,
                    summary=n.summary,
                )
            else:
                await self._post_webhook(contact, n)
        return Delivery(
            delivery_id=n.delivery_id,
            recipient_id=n.recipient_id,
            channels=[channel.value for channel in contact.channels],
        )

    async def _post_webhook(self, contact: Contact, n: Notification) -> None:
        """POST `n` as signed JSON to the contact's webhook; raise unless it answers 2xx."""
        if not contact.webhook_url:
            raise _misconfigured(contact, "webhook_url")
        if contact.webhook_secret is None or not contact.webhook_secret.get_secret_value():
            raise _misconfigured(contact, "webhook_secret")
        url = _redacted(contact.webhook_url)
        body = n.model_dump_json().encode()
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            DELIVERY_HEADER: n.delivery_id,
            EVENT_HEADER: n.kind.value,
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(contact.webhook_secret.get_secret_value(), timestamp, body),
        }
        try:
            response = await self._http.post(contact.webhook_url, content=body, headers=headers)
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


def _misconfigured(contact: Contact, field: str) -> ApplicationError:
    """A registry entry that asks for a webhook but lacks what one needs."""
    return ApplicationError(
        f"participant {contact.id!r} has a webhook channel but no {field} in the registry",
        type="MisconfiguredChannel",
        non_retryable=True,
    )

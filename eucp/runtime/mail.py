"""Notification emails: the message the `email` channel sends, built without any I/O.

The `Message-ID` is derived from the delivery id, so every attempt of one delivery carries
the same one and a mail client or a filter can drop the duplicates a retry may cause.
`X-EUCP-Delivery` and `X-EUCP-Event` carry the same values as on a webhook.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from eucp.protocol.notifications import Notification
from eucp.runtime.signing import DELIVERY_HEADER, EVENT_HEADER

SENDER_NAME = "eucp"
SUBJECT_MAX = 200

_NOT_ATEXT = re.compile(r"[^A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")


def one_line(text: str) -> str:
    """`text` with every run of whitespace (line breaks included) as one space: header-safe."""
    return " ".join(text.split())


def subject(n: Notification) -> str:
    """`[eucp] {kind}: {summary}` on one line, cut at `SUBJECT_MAX` characters."""
    line = one_line(f"[eucp] {n.kind.value}: {n.summary}")
    return line if len(line) <= SUBJECT_MAX else line[: SUBJECT_MAX - 3] + "..."


def message_id(delivery_id: str, domain: str) -> str:
    """The `Message-ID` of every attempt of one delivery: readable, and unique per id.

    The readable part is the delivery id with anything a Message-ID may not hold replaced by
    dots; the hash keeps two ids apart that read the same after that.
    """
    readable = _NOT_ATEXT.sub(".", delivery_id).strip(".")[:64].strip(".")
    digest = hashlib.sha256(delivery_id.encode()).hexdigest()[:16]
    return f"<{readable}.{digest}@{domain}>" if readable else f"<{digest}@{domain}>"


def body(n: Notification, backup_for: str | None = None) -> str:
    """The plain-text body: the summary, where it comes from, and the data as pretty JSON."""
    lines = [
        n.summary,
        "",
        f"Incident: {n.incident_id}",
        f"Kind:     {n.kind.value}",
        f"Delivery: {n.delivery_id}",
    ]
    if backup_for is not None:
        lines += ["", f"You receive this as the backup contact of {backup_for}."]
    data = n.model_dump(mode="json")["data"]
    lines += [
        "",
        "Data:",
        json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False),
        "",
        "-- ",
        "Sent by eucp. Every retry of a notification carries the same delivery id:",
        "a message whose delivery id you have seen before is a duplicate.",
    ]
    return "\n".join(lines) + "\n"


def compose(
    n: Notification,
    *,
    sender: str,
    to_name: str,
    to_address: str,
    now: datetime,
    backup_for: str | None = None,
) -> EmailMessage:
    """The email for `n` to `to_name <to_address>`, sent at `now`.

    `backup_for` names the participant when the message goes to its backup contact.
    Addresses must already be valid (the registry and settings check them).
    """
    message = EmailMessage()
    message["Subject"] = subject(n)
    message["From"] = Address(display_name=SENDER_NAME, addr_spec=sender)
    message["To"] = Address(display_name=one_line(to_name), addr_spec=to_address)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = message_id(n.delivery_id, sender.rpartition("@")[2])
    message[DELIVERY_HEADER] = one_line(n.delivery_id)
    message[EVENT_HEADER] = n.kind.value
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to this
    message.set_content(body(n, backup_for))
    return message

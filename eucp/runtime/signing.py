"""Webhook signatures: how eucp signs a delivery and how a receiver checks it.

The signature is `v1=` + hex HMAC-SHA256 over `"{timestamp}." + body`, so a receiver
can tell the body is ours and unaltered, and reject old deliveries replayed later.
Pure functions only: no clock, no I/O, so receivers and tests share the exact logic.
"""

from __future__ import annotations

import hashlib
import hmac
import re

DELIVERY_HEADER = "X-EUCP-Delivery"
TIMESTAMP_HEADER = "X-EUCP-Timestamp"
SIGNATURE_HEADER = "X-EUCP-Signature"
EVENT_HEADER = "X-EUCP-Event"

SCHEME = "v1="
DEFAULT_TOLERANCE_S = 300

_TIMESTAMP = re.compile(r"[0-9]{1,20}")


class SignatureError(ValueError):
    """A delivery whose signature or timestamp a receiver must not accept."""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header value for `body` sent at unix time `timestamp`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return SCHEME + mac.hexdigest()


def verify(
    secret: str,
    timestamp_header: str,
    body: bytes,
    signature_header: str,
    now: int,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
) -> None:
    """Accept a delivery or raise `SignatureError` saying why not.

    The timestamp must be a unix time within `tolerance_s` of `now` either way (outside
    it, a captured delivery could be replayed), and the signature must match the body
    exactly as received.
    """
    if not _TIMESTAMP.fullmatch(timestamp_header):
        raise SignatureError(f"bad timestamp {timestamp_header[:40]!r}: not a unix time")
    timestamp = int(timestamp_header)
    age = now - timestamp
    if age > tolerance_s:
        raise SignatureError(
            f"timestamp is {age}s old, outside the {tolerance_s}s window (possible replay)"
        )
    if -age > tolerance_s:
        raise SignatureError(
            f"timestamp is {-age}s in the future, beyond the {tolerance_s}s tolerance"
        )
    expected = sign(secret, timestamp, body)
    if not hmac.compare_digest(expected.encode(), signature_header.encode()):
        raise SignatureError("signature mismatch: wrong secret or altered body")

"""CSRF protection for every console form.

A form's token is HMAC-SHA256 of the browser's console cookie under a key that never leaves the
process. It needs no stored state, so the sign-in form (before any session exists) is protected
exactly like the forms after it; another site can neither read the cookie nor compute the token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

FIELD = "csrf"


class CsrfRefused(Exception):
    """A form arrived without the token of this browser's cookie: answered with 403."""


class Csrf:
    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def token(self, cookie: str) -> str:
        """The token every form of this browser carries."""
        return hmac.new(self._key, cookie.encode(), hashlib.sha256).hexdigest()

    def check(self, cookie: str | None, sent: object) -> None:
        """Raises CsrfRefused unless `sent` is the token of `cookie`."""
        if not cookie or not isinstance(sent, str) or not sent:
            raise CsrfRefused("the form carries no security token, or the browser no cookie")
        if not hmac.compare_digest(self.token(cookie), sent):
            raise CsrfRefused("the form's security token does not belong to this browser session")

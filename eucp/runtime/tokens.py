"""Participants' bearer tokens, kept as SHA-256 digests: the file never holds a usable token."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
from pathlib import Path


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    """Maps token digests to participant ids; re-reads its file when another process rotates."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._mtime: float | None = None
        self._by_digest: dict[str, str] = {}

    def issue(self, participant_id: str) -> str:
        """A new token for the participant; any earlier one stops working (rotation)."""
        token = f"eucp_{secrets.token_urlsafe(32)}"
        with self._lock:
            owners = {d: p for d, p in self._read().items() if p != participant_id}
            owners[digest(token)] = participant_id
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(owners, indent=1, sort_keys=True))
            os.chmod(tmp, 0o600)
            tmp.replace(self.path)
        return token

    def who(self, token: str) -> str | None:
        """The participant holding this token, or None."""
        return self.owner(digest(token))

    def owner(self, token_digest: str) -> str | None:
        """The participant holding the token of this digest, or None. A dict lookup by digest:
        the time it takes does not depend on how much of a guessed token is right."""
        with self._lock:
            return self._current().get(token_digest)

    def _current(self) -> dict[str, str]:
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            return {}
        if mtime != self._mtime:
            self._by_digest, self._mtime = self._read(), mtime
        return self._by_digest

    def _read(self) -> dict[str, str]:
        if not self.path.exists():
            return {}
        data = json.loads(self.path.read_text())
        if not isinstance(data, dict):
            raise ValueError(f"{self.path}: expected an object of digest -> participant id")
        return {str(k): str(v) for k, v in data.items()}

"""The participants registry file: who takes part and how to reach them (never in history);
read, changed and written by one operator command at a time (`Registry.locked`)."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from eucp.protocol.participants import Contact, Participant


class Registry(BaseModel):
    """The participants registry file (JSON)."""

    model_config = ConfigDict(extra="forbid")

    participants: list[Contact]

    @classmethod
    def load(cls, path: Path) -> Registry:
        return cls.model_validate_json(path.read_text())

    @classmethod
    def load_or_empty(cls, path: Path) -> Registry:
        """The registry at `path`, or an empty one if there is none yet."""
        return cls.load(path) if path.exists() else cls(participants=[])

    @staticmethod
    @contextlib.contextmanager
    def locked(path: Path) -> Iterator[None]:
        """Serialises the commands that read, change and write the registry at `path` by
        locking its folder, so no lock file is left behind."""
        path.parent.mkdir(parents=True, exist_ok=True)
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            fcntl.flock(folder, fcntl.LOCK_EX)
            yield
        finally:
            os.close(folder)  # releases the lock

    def save(self, path: Path) -> None:
        """Writes the registry with its secrets in clear (JSON dumps mask them by default),
        readable by its owner only."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.touch(mode=0o600)
        tmp.write_text(self.model_dump_json(indent=2, context={"reveal_secrets": True}))
        tmp.replace(path)

    def get(self, participant_id: str) -> Contact:
        for contact in self.participants:
            if contact.id == participant_id:
                return contact
        raise KeyError(f"participant {participant_id!r} is not in the registry")

    def public(self) -> list[Participant]:
        """The participants without their contact details, as workflows may see them."""
        return [
            Participant(id=c.id, kind=c.kind, name=c.name, country=c.country)
            for c in self.participants
        ]


class RegistryFile:
    """The registry file as it is now, for a process that runs for long (the API, the worker's
    notifications, the codec endpoint): participants added or changed by `eucp participants`
    count at once, yet the file is parsed again only when it changed (its inode, size or
    modification time to the nanosecond: `save` replaces the file), not on every call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._last_read: tuple[tuple[int, int, int], Registry] | None = None

    def current(self) -> Registry:
        """The registry, read again if the file changed since the last call."""
        found = self.path.stat()
        version = (found.st_ino, found.st_size, found.st_mtime_ns)
        if self._last_read is None or self._last_read[0] != version:
            self._last_read = (version, Registry.load(self.path))
        return self._last_read[1]

"""Settings from the environment (`EUCP_...`), one model for the whole process."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import timedelta
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from eucp.protocol.clocks import SlaSettings
from eucp.protocol.participants import EmailAddress


class SmtpTls(StrEnum):
    """How the SMTP connection is secured: `none` (plain, no STARTTLS even if offered),
    `starttls` (upgrade after connecting, usually port 587) or `tls` (TLS from the first
    byte, usually port 465). Certificates are checked against the system's trust store."""

    none = "none"
    starttls = "starttls"
    tls = "tls"


SmtpHost = Annotated[str, Field(min_length=1)]
SmtpPort = Annotated[int, Field(ge=1, le=65535)]
SmtpTimeout = Annotated[timedelta, Field(gt=timedelta(0))]


def _paired(username: str | None, password: SecretStr | None) -> None:
    if (username is None) != (password is None):
        raise ValueError("smtp_username and smtp_password are set together or not at all")


class SmtpSettings(BaseModel):
    """The SMTP server the `notify` activity sends email through (`Settings.smtp`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: SmtpHost = "127.0.0.1"
    port: SmtpPort = 25
    sender: EmailAddress = "eucp@localhost"
    username: str | None = None
    password: SecretStr | None = None
    tls: SmtpTls = SmtpTls.none
    timeout: SmtpTimeout = timedelta(seconds=10)

    @model_validator(mode="after")
    def _credentials_in_pairs(self) -> Self:
        _paired(self.username, self.password)
        return self


SMTP_DEFAULTS = SmtpSettings()

CODEC_KEY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
CODEC_KEY_BYTES = 32  # AES-256


class CodecKeyError(Exception):
    """Unusable codec key settings. Deliberately not a ValueError: pydantic would wrap it in a
    ValidationError that quotes the input, and the input is the keys."""


def parse_codec_keys(text: str) -> dict[str, bytes]:
    """`id:base64key,id2:base64key` as {key id: 32-byte key}; CodecKeyError names the bad
    entry by its position or key id, never by the key."""
    keys: dict[str, bytes] = {}
    for n, entry in enumerate(text.split(","), start=1):
        entry = entry.strip()
        if not entry:
            continue
        key_id, sep, encoded = entry.partition(":")
        key_id = key_id.strip()
        if not sep or not CODEC_KEY_ID.match(key_id):
            raise CodecKeyError(
                f"codec key #{n}: write `id:base64key`, the id matching {CODEC_KEY_ID.pattern}"
            )
        if key_id in keys:
            raise CodecKeyError(f"codec key {key_id!r} is given twice")
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise CodecKeyError(f"codec key {key_id!r} is not valid base64") from None
        if len(key) != CODEC_KEY_BYTES:
            raise CodecKeyError(
                f"codec key {key_id!r} has {len(key)} bytes; AES-256 needs {CODEC_KEY_BYTES}"
            )
        keys[key_id] = key
    return keys


class Settings(BaseSettings):
    """Process settings. Nested values use `__`, e.g. `EUCP_SLA__ACT_WITHIN=PT60M`."""

    model_config = SettingsConfigDict(env_prefix="EUCP_", env_nested_delimiter="__")

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    task_queue: str = "eucp"
    worker_role: Literal["all", "workflows", "activities"] = Field(
        default="all",
        description="what a worker process runs: workflows and activities, or only one of them",
    )
    workflow_cache: int = Field(
        default=1000,
        ge=1,
        description="workflow runs a worker keeps in memory between their tasks (the SDK's "
        "max_cached_workflows): each costs its state and sandbox (about 0.6 MB for a platform "
        "with 100 tasks); one evicted is replayed from its history at its next task",
    )
    temporal_tls_cert: Path | None = None
    temporal_tls_key: Path | None = None
    temporal_tls_ca: Path | None = None
    temporal_ui_url: str = Field(
        default="http://127.0.0.1:8233",
        description="base URL of the Temporal Web UI; the console links each incident's workflow",
    )

    ledger_url: str = "sqlite:///var/ledger.sqlite3"
    registry_path: Path = Path("var/participants.json")
    tokens_path: Path = Path("var/tokens.json")
    reports_dir: Path = Path("var/reports")
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_max_body_bytes: int = Field(
        default=1_048_576,
        ge=1024,
        le=1_048_576,
        description="at most 1 MiB: what one request brings reaches Temporal in one payload, "
        "and Temporal takes 2 MB of one (the items of a megabyte of identifiers are 1.15 MB)",
    )
    metrics_address: str | None = Field(
        default=None, description="host:port where a worker serves its Prometheus metrics"
    )
    api_requests_per_second: float = Field(default=200.0, gt=0)
    api_request_burst: int = Field(default=400, ge=1)
    api_failed_auth_per_minute: int = Field(default=30, ge=1)
    api_workers: int = Field(
        default=1, ge=1, le=64, description="API processes serving the one port (`eucp api`)"
    )
    api_state_url: str | None = Field(
        default=None,
        description="where the API processes share rate limits, Update slots and console "
        "sessions; unset: the ledger's PostgreSQL, or var/api-state.sqlite3 by a SQLite ledger",
    )
    var_dir: Path = Path("var")

    pdq_match_distance: int = Field(default=31, ge=0, le=256)
    pdq_min_quality: int = Field(default=50, ge=0, le=100)

    sla: SlaSettings = SlaSettings()

    log_json: bool = True

    # the mailer's settings (`smtp`), flat so that each is one EUCP_SMTP_* variable: their
    # types and defaults are SmtpSettings', declared once there
    smtp_host: SmtpHost = SMTP_DEFAULTS.host
    smtp_port: SmtpPort = SMTP_DEFAULTS.port
    smtp_from: EmailAddress = SMTP_DEFAULTS.sender
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_tls: SmtpTls = SMTP_DEFAULTS.tls
    smtp_timeout: SmtpTimeout = SMTP_DEFAULTS.timeout

    codec_keys: SecretStr | None = Field(
        default=None,
        description="payload encryption keys, `id:base64key,id2:base64key` (32-byte keys); "
        "unset: payloads are not encrypted",
    )
    codec_current_key: str | None = Field(
        default=None,
        description="the key id new payloads are encrypted with; may be omitted with one key",
    )
    codec_server_token: SecretStr | None = Field(
        default=None,
        description="an operator bearer token for the codec endpoint, besides the tokens of "
        "coordinators and auditors",
    )
    codec_server_host: str = "127.0.0.1"
    codec_server_port: int = Field(default=8234, ge=1, le=65535)
    codec_server_origins: str = Field(
        default="http://127.0.0.1:8233,http://localhost:8233",
        description="comma-separated Web UI origins allowed to call the codec endpoint (CORS)",
    )

    @property
    def shared_state_url(self) -> str:
        """The database of the API processes' shared state (`eucp.runtime.shared`)."""
        if self.api_state_url is not None:
            return self.api_state_url
        if self.ledger_url.startswith("sqlite:"):
            return f"sqlite:///{self.var_dir / 'api-state.sqlite3'}"
        return self.ledger_url

    @model_validator(mode="after")
    def _smtp_credentials_in_pairs(self) -> Self:
        _paired(self.smtp_username, self.smtp_password)
        return self

    @model_validator(mode="after")
    def _codec_keys_usable(self) -> Self:
        self.codec_current_key_id()  # the keys parse and the current one resolves
        return self

    def codec_key_map(self) -> dict[str, bytes]:
        """The codec keys by id; empty when encryption is off."""
        if self.codec_keys is None:
            return {}
        return parse_codec_keys(self.codec_keys.get_secret_value())

    def codec_current_key_id(self) -> str | None:
        """The id of the key new payloads are encrypted with; None when encryption is off."""
        keys = self.codec_key_map()
        current = self.codec_current_key
        if not keys:
            if current is not None:
                raise CodecKeyError("codec_current_key is set but codec_keys holds no key")
            return None
        if current is None:
            if len(keys) > 1:
                raise CodecKeyError("several codec keys: set codec_current_key to one of them")
            [current] = keys
        if current not in keys:
            raise CodecKeyError(f"codec_current_key {current!r} is not among codec_keys")
        return current

    @property
    def codec_origins(self) -> list[str]:
        """`codec_server_origins` as a list."""
        return [o.strip() for o in self.codec_server_origins.split(",") if o.strip()]

    @property
    def smtp(self) -> SmtpSettings:
        """The `EUCP_SMTP_*` settings as one group, as the mailer takes them."""
        return SmtpSettings(
            host=self.smtp_host,
            port=self.smtp_port,
            sender=self.smtp_from,
            username=self.smtp_username,
            password=self.smtp_password,
            tls=self.smtp_tls,
            timeout=self.smtp_timeout,
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()

"""Settings from the environment (`EUCP_...`), one model for the whole process."""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SlaSettings(BaseModel):
    """Every protocol duration; a crisis may override any of them at report time."""

    acknowledge_within: timedelta = timedelta(minutes=15)
    act_within: timedelta = timedelta(minutes=60)
    escalate_after: timedelta = Field(
        default=timedelta(minutes=15),
        description="time from a missed deadline's reminder to the escalation to coordinators",
    )
    assessment_within: timedelta = timedelta(minutes=60)
    review_within: timedelta = timedelta(days=7)


class Settings(BaseSettings):
    """Process settings. Nested values use `__`, e.g. `EUCP_SLA__ACT_WITHIN=PT60M`."""

    model_config = SettingsConfigDict(env_prefix="EUCP_", env_nested_delimiter="__")

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    task_queue: str = "eucp"
    temporal_tls_cert: Path | None = None
    temporal_tls_key: Path | None = None
    temporal_tls_ca: Path | None = None

    ledger_url: str = "sqlite:///var/ledger.sqlite3"
    registry_path: Path = Path("var/participants.json")
    tokens_path: Path = Path("var/tokens.json")
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_max_body_bytes: int = Field(default=1_048_576, ge=1024)
    var_dir: Path = Path("var")

    pdq_match_distance: int = Field(default=31, ge=0, le=256)
    pdq_min_quality: int = Field(default=50, ge=0, le=100)

    sla: SlaSettings = SlaSettings()

    log_json: bool = True


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()

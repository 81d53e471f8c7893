"""structlog for eucp's own lines and for the SDK's stdlib loggers, JSON by default, with
credentials redacted from every line before it is written."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

import structlog
from structlog.typing import EventDict

from eucp.runtime.settings import Settings, get_settings

_PLATFORM_MARK = ".platform."

REDACTED = "[redacted]"
# a key holds a credential when its last word is one of these: `token`, `webhook_secret`,
# `smtp_password`, `Authorization`, `X-Api-Key`, `codec_keys`, `set-cookie`...
_SECRET_WORDS = r"authorization|token|secret|password|passwd|cookie|credentials|keys|api[_-]key"
_SECRET_KEY = re.compile(rf"(?:^|.*[_-])(?:{_SECRET_WORDS})$", re.IGNORECASE)
_SECRET_TEXT = [
    # an Authorization header value, wherever it is quoted ("basic" in prose is left alone)
    (re.compile(r"\b([Bb]earer|BEARER|Basic)\s+[A-Za-z0-9._~+/=-]+"), rf"\1 {REDACTED}"),
    # an eucp participant token (`eucp_` + 43 url-safe characters) on its own
    (re.compile(r"\beucp_[A-Za-z0-9_-]{20,}"), REDACTED),
    # credentials in a URL (`https://user:pass@host`)
    (re.compile(r"(://)[^/@\s:]+:[^/@\s]*@"), rf"\1{REDACTED}@"),
    # `name=value` with a credential's name: query parameters, messages, exception texts
    (
        re.compile(rf"(\b[A-Za-z_-]*(?:{_SECRET_WORDS}|sig|signature|key)=)[^&#\s\"',;]+", re.I),
        rf"\1{REDACTED}",
    ),
]


# every pattern above needs one of these in the text: most lines (ids, counts) have none, and
# skipping the patterns for them keeps redaction off the profile of a busy worker
_TRIGGERS = ("=", "://", "eucp_", "earer", "EARER", "Basic")


def is_secret_key(key: object) -> bool:
    return isinstance(key, str) and _SECRET_KEY.match(key) is not None


def redact(value: Any) -> Any:
    """`value` with every credential replaced: values under a credential's key (at any depth
    of dicts and lists) and credentials inside text (bearer tokens, eucp tokens, URL passwords
    and credential query parameters)."""
    if isinstance(value, str):
        if not any(t in value for t in _TRIGGERS):
            return value
        for pattern, replacement in _SECRET_TEXT:
            value = pattern.sub(replacement, value)
        return value
    if isinstance(value, Mapping):
        return {k: REDACTED if is_secret_key(k) else redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def _redact_secrets(_: Any, __: str, event: EventDict) -> EventDict:
    """The last step before rendering every line, eucp's and the libraries' alike: a
    credential logged by mistake (an `Authorization` header, a webhook secret, an SMTP
    password, a token in a URL) is written as `[redacted]`."""
    return {k: REDACTED if is_secret_key(k) else redact(v) for k, v in event.items()}


def _lift_temporal(_: Any, __: str, event: EventDict) -> EventDict:
    """Puts the workflow id and incident id of `workflow.logger` lines at the top level."""
    info = event.pop("temporal_workflow", None) or event.pop("temporal_activity", None)
    if isinstance(info, dict):
        workflow_id = info.get("workflow_id")
        if workflow_id:
            event.setdefault("workflow_id", workflow_id)
            event.setdefault("incident_id", workflow_id.split(_PLATFORM_MARK)[0])
        if "activity_type" in info:
            event.setdefault("activity", info["activity_type"])
    return event


def configure(json: bool = True, level: int = logging.INFO) -> None:
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.ExtraAdder(),
        _lift_temporal,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                # tracebacks become text here, so that redaction covers them too
                structlog.processors.format_exc_info,
                _redact_secrets,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def configured_settings() -> Settings:
    """The process's EUCP_* settings, with logging configured as they say (JSON or text): how
    the long-running commands begin (worker, API, codec endpoint, `eucp up`)."""
    settings = get_settings()
    configure(json=settings.log_json)
    return settings

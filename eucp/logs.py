"""structlog for eucp's own lines and for the SDK's stdlib loggers, JSON by default."""

from __future__ import annotations

import logging
from typing import Any

import structlog
from structlog.typing import EventDict

_PLATFORM_MARK = ".platform."


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
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)

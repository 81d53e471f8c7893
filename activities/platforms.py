"""The `start_platforms` activity: an activation's platform workflows, started at once.

Started as child workflows, 200 platforms took 22-27 s on two cores: the server adds each
child's start to the crisis's history one after another, and every one of them is another
workflow task of the crisis. Started by the client here, they begin side by side and the
crisis's history holds one activity. They were never tied to the crisis (ABANDON), and the
platform workflows find the crisis by its id."""

from __future__ import annotations

import asyncio
import contextlib

from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from eucp.protocol.state import PlatformStart

PLATFORM_WORKFLOW = "PlatformTasksWorkflow"
AT_ONCE = 32  # starts in flight: enough to keep the server busy, not to flood it


class StartPlatforms(BaseModel):
    """Each platform workflow's id and input, and the task queue they run on."""

    task_queue: str
    starts: dict[str, PlatformStart] = Field(min_length=1)


class PlatformActivities:
    def __init__(self, client: Client) -> None:
        self._client = client

    @activity.defn(name="start_platforms")
    async def start_platforms(self, ask: StartPlatforms) -> None:
        """Starts every workflow not started yet. A retried attempt finds those an earlier one
        started, and a run never starts twice: an id is never reused, even once closed."""
        gate = asyncio.Semaphore(AT_ONCE)

        async def start(workflow_id: str, start: PlatformStart) -> None:
            async with gate:
                with contextlib.suppress(WorkflowAlreadyStartedError):
                    await self._client.start_workflow(
                        PLATFORM_WORKFLOW,
                        start,
                        id=workflow_id,
                        task_queue=ask.task_queue,
                        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    )

        await asyncio.gather(*(start(wid, s) for wid, s in ask.starts.items()))

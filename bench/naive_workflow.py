"""The naive design, for comparison only: one Update and one ledger activity per task per step."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from bench.naive_models import NaiveDecision, NaiveStep


@workflow.defn
class NaiveTasksWorkflow:
    """One platform's tasks, each step its own Update writing its own ledger row."""

    @workflow.init
    def __init__(self, incident_id: str, platform_id: str) -> None:
        self.incident_id, self.platform_id = incident_id, platform_id
        self.done = False
        self.steps = 0

    @workflow.run
    async def run(self, incident_id: str, platform_id: str) -> int:
        await workflow.wait_condition(lambda: self.done and workflow.all_handlers_finished())
        return self.steps

    @workflow.update
    async def report(self, step: NaiveStep) -> int:
        await workflow.execute_activity(
            "naive_record",
            NaiveDecision(
                incident_id=self.incident_id,
                platform_id=self.platform_id,
                task_id=step.task_id,
                outcome=step.outcome,
                at=workflow.now(),
            ),
            start_to_close_timeout=timedelta(seconds=10),
        )
        self.steps += 1
        return self.steps

    @workflow.signal
    def finish(self) -> None:
        self.done = True

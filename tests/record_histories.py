"""Records the histories that tests/test_replay.py replays: `python -m tests.record_histories`.

Run it when a workflow change is released, and keep the old files: each must stay replayable
by every later version of the code (changes go behind `workflow.patched`).
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from eucp.protocol.actions import Action
from eucp.protocol.clocks import SlaSettings
from eucp.protocol.incident import Criterion, CriterionStatus, LinkedProtocolKind
from eucp.protocol.orders import ScrutinyOutcome
from eucp.protocol.state import TaskQuery
from eucp.protocol.tasks import CannotComplyReason, Outcome, TaskReport
from eucp.service.incidents import Incidents
from tests.conftest import (
    CHOOSY,
    COORDINATOR,
    FASTBOOK,
    HOST_AUTHORITY,
    MEMBER_STATE,
    REGISTRY,
    SLOWTUBE,
    a_report,
    settings_in,
    start_skipping_env,
)
from tests.protocol_steps import ALL_MET, MANIFESTO, ORDER_DETAILS, VIDEO, VIDEO_REENCODED, url
from worker import running_worker
from workflows.platform import platform_workflow_id

HERE = Path(__file__).parent / "histories"


async def full_crisis(incidents: Incidents, env: WorkflowEnvironment, incident: str) -> None:
    """Every phase, every kind of platform report, a missed deadline and its escalation."""
    await incidents.report(
        incident, a_report(first_identifiers=[url(1)]), REGISTRY.public(), SlaSettings()
    )
    iru = incidents.as_participant(incident, COORDINATOR)
    await iru.act(Action.assess, assessment=ALL_MET)
    await iru.act(Action.activate, reason="all five criteria met", identifiers=[VIDEO, MANIFESTO])
    authority = incidents.as_participant(incident, MEMBER_STATE)
    await authority.act(Action.issue_order, identifiers=[url(2)], order=ORDER_DETAILS)
    fastbook = incidents.as_participant(incident, FASTBOOK)
    choosy = incidents.as_participant(incident, CHOOSY)
    await fastbook.act(Action.report_sightings, identifiers=[url(3), VIDEO_REENCODED])
    slowtube = incidents.as_participant(incident, SLOWTUBE)
    await asyncio.gather(  # concurrent calls: one merged Update
        fastbook.act(Action.report_sightings, identifiers=[url(4)]),
        slowtube.act(Action.report_sightings, identifiers=[url(5)]),
    )
    # items 1-3 and slowtube's sighting; its own sightings and choosy's order are not its tasks
    while (await fastbook.my_tasks()).total < 4:  # the fan-out follows the answers
        await env.sleep(timedelta(seconds=1))
    mine = [t.task_id for t in (await fastbook.my_tasks()).tasks]
    await fastbook.report_tasks([TaskReport(task_id=t, outcome=Outcome.acknowledged) for t in mine])
    await fastbook.report_tasks([TaskReport(task_id=t, outcome=Outcome.removed) for t in mine])
    theirs = [t.task_id for t in (await choosy.my_tasks()).tasks]
    await choosy.report_tasks(
        [
            TaskReport(task_id=theirs[0], outcome=Outcome.declined, reason="news reporting"),
            TaskReport(
                task_id=theirs[3],
                outcome=Outcome.cannot_comply,
                cannot_comply=CannotComplyReason.technical_impossibility,
                reason="storage cluster offline",
            ),
        ]
    )
    await env.sleep(timedelta(minutes=20))
    await choosy.report_tasks(  # the unknown task is refused on its own
        [
            TaskReport(task_id=theirs[3], outcome=Outcome.resumed),
            TaskReport(task_id="choosy-999999", outcome=Outcome.removed),
        ]
    )
    await choosy.act(
        Action.report_false_positive, item=2, reason="a news report quoting the manifesto"
    )
    await iru.act(Action.withdraw_content, items=[2], reason="false positive confirmed")
    await env.sleep(timedelta(minutes=50))  # slowtube stays silent: reminded, then escalated
    await iru.act(Action.de_escalate, reason="re-uploads fell", withdraw_open_tasks=True)
    await iru.act(Action.start_review)
    await fastbook.act(Action.submit_review_input, text="upload filters caught most copies")
    await iru.act(Action.close, reason="debrief held")
    await incidents.result(incident)


async def not_activated(incidents: Incidents, env: WorkflowEnvironment, incident: str) -> None:
    await incidents.report(incident, a_report(), REGISTRY.public(), SlaSettings())
    iru = incidents.as_participant(incident, COORDINATOR)
    await env.sleep(timedelta(minutes=61))  # the assessment deadline passes: a reminder
    await iru.act(Action.assess, assessment=ALL_MET)
    await iru.act(Action.decline, reason="low virality: hashes shared under normal procedure")
    await incidents.result(incident)


async def bulk(incidents: Incidents, env: WorkflowEnvironment, incident: str) -> None:
    """Waves larger than a signal carries: the platforms read them from the ledger."""
    await incidents.report(incident, a_report(), REGISTRY.public(), SlaSettings())
    iru = incidents.as_participant(incident, COORDINATOR)
    await iru.act(Action.assess, assessment=ALL_MET)
    await iru.act(
        Action.activate, reason="criteria met", identifiers=[url(1000 + n) for n in range(150)]
    )
    await iru.act(Action.add_content, identifiers=[url(2000 + n) for n in range(120)])
    fastbook = incidents.as_participant(incident, FASTBOOK)
    while (await fastbook.my_tasks()).total < 270:
        await env.sleep(timedelta(seconds=1))
    page = await fastbook.my_tasks(TaskQuery(limit=1000))
    await fastbook.report_tasks(
        [TaskReport(task_id=t.task_id, outcome=Outcome.removed) for t in page.tasks]
    )
    await iru.act(Action.de_escalate, reason="contained", withdraw_open_tasks=True)
    await iru.act(Action.start_review)
    await iru.act(Action.close, reason="done")
    await incidents.result(incident)


async def orders(incidents: Incidents, env: WorkflowEnvironment, incident: str) -> None:
    """Removal orders after their issue (recorded from v6 on): a cross-border order its
    addressee questions and the host State finds to infringe, its removed content reinstated;
    another clarified by its issuer after a pause long enough to alert; a scrutiny window
    that closes."""
    # the activation outlives the 72 hours watched here (activation_for from v7 on)
    week = SlaSettings(activation_for=timedelta(days=7))
    await incidents.report(incident, a_report(), REGISTRY.public(), week)
    iru = incidents.as_participant(incident, COORDINATOR)
    await iru.act(Action.assess, assessment=ALL_MET)
    await iru.act(Action.activate, reason="criteria met", identifiers=[url(1)])
    authority = incidents.as_participant(incident, MEMBER_STATE)
    host = incidents.as_participant(incident, HOST_AUTHORITY)
    choosy = incidents.as_participant(incident, CHOOSY)
    for reference, items in (("FR-ORD-1", [url(2), url(3)]), ("FR-ORD-2", [url(4)])):
        order = ORDER_DETAILS.model_copy(update={"reference": reference})
        await authority.act(Action.issue_order, identifiers=items, order=order)
    while (await choosy.my_tasks()).total < 4:
        await env.sleep(timedelta(seconds=1))
    first, _, clarified = ("choosy-000002", "choosy-000003", "choosy-000004")
    await choosy.report_tasks([TaskReport(task_id=first, outcome=Outcome.removed)])
    await choosy.report_tasks(
        [
            TaskReport(
                task_id=clarified,
                outcome=Outcome.cannot_comply,
                cannot_comply=CannotComplyReason.insufficient_information,
                reason="which video?",
            )
        ]
    )
    await choosy.act(Action.request_scrutiny, reference="FR-ORD-1", reason="news reporting")
    await env.sleep(timedelta(hours=5))  # the pause is alerted
    await authority.act(Action.clarify_order, reference="FR-ORD-2", reason="the 01:52 upload")
    await host.act(
        Action.decide_scrutiny,
        reference="FR-ORD-1",
        outcome=ScrutinyOutcome.infringes,
        reason="protected journalism",
    )
    while (await choosy.my_tasks()).total < 5:
        await env.sleep(timedelta(seconds=1))
    await choosy.report_tasks(
        [
            TaskReport(task_id=f"{first}-reinstate", outcome=Outcome.reinstated),
            TaskReport(task_id=clarified, outcome=Outcome.removed),
        ]
    )
    await env.sleep(timedelta(hours=72))  # FR-ORD-2's scrutiny window closes
    await iru.act(Action.de_escalate, reason="contained", withdraw_open_tasks=True)
    await iru.act(Action.start_review)
    await iru.act(Action.close, reason="done")
    await incidents.result(incident)


async def governance(incidents: Incidents, env: WorkflowEnvironment, incident: str) -> None:
    """Who takes part and for how long (recorded from v7 on): a suspected link for criterion
    4, a linked protocol, an update and an imminent threat, a platform brought in and another
    suspended and brought back, new clocks, a renewal, then a lapse."""
    await incidents.report(
        incident,
        a_report(affected_member_states=["FR"]),
        REGISTRY.public(),
        SlaSettings(),
    )
    iru = incidents.as_participant(incident, COORDINATOR)
    suspected = Criterion(status=CriterionStatus.suspected, evidence="the manifesto's claims")
    await iru.act(Action.assess, assessment=ALL_MET.model_copy(update={"tve_link": suspected}))
    await iru.act(
        Action.link_protocol,
        protocol=LinkedProtocolKind.gifct_cip,
        reference="CIP-7",
        activated_at=datetime(2026, 3, 15, 2, 10, tzinfo=UTC),
    )
    await iru.act(
        Action.activate,
        reason="criteria met",
        identifiers=[url(1), url(2)],
        platforms=[FASTBOOK.id, SLOWTUBE.id],
    )
    await iru.act(Action.post_update, text="the attacker is in custody")
    fastbook = incidents.as_participant(incident, FASTBOOK)
    await fastbook.act(Action.flag_threat, text="a second attack announced", member_states=["FR"])
    await iru.act(Action.join_platform, platform=CHOOSY.id, reason="copies moved there")
    await iru.act(Action.suspend_platform, platform=SLOWTUBE.id, reason="its contact is down")
    await iru.act(Action.add_content, identifiers=[url(3)])
    await env.sleep(timedelta(minutes=5))
    await iru.act(Action.join_platform, platform=SLOWTUBE.id, reason="back online")
    await iru.act(
        Action.set_clocks, changes={"act_within": timedelta(minutes=45)}, reason="a busy night"
    )
    await env.sleep(timedelta(hours=43))
    await iru.act(Action.renew_activation, reason="copies still spreading")
    await env.sleep(timedelta(hours=49))  # unrenewed again: it lapses
    await iru.act(Action.start_review)
    await iru.act(Action.close, reason="done")
    await incidents.result(incident)


async def save(client: Client, workflow_id: str, name: str) -> None:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    (HERE / f"{name}.json").write_text(json.dumps(history.to_json_dict(), indent=1))


async def main(tag: str) -> None:
    import tempfile

    version = int(tag.removeprefix("v"))  # as a number: "v10" < "v6" as text
    env = await start_skipping_env()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = settings_in(Path(tmp))
            async with running_worker(env.client, settings):
                incidents = Incidents(env.client, settings)
                await full_crisis(incidents, env, "full")
                await not_activated(incidents, env, "declined")
                await bulk(incidents, env, "bulk")  # recorded from v4 on
                if version >= 6:
                    await orders(incidents, env, "orders")
                if version >= 7:
                    await governance(incidents, env, "governance")
            await save(env.client, "bulk", f"{tag}-crisis-bulk")
            bulk_platform = platform_workflow_id("bulk", FASTBOOK.id)
            await save(env.client, bulk_platform, f"{tag}-platform-bulk")
            await save(env.client, "full", f"{tag}-crisis-full")
            await save(env.client, "declined", f"{tag}-crisis-declined")
            if version >= 6:
                await save(env.client, "orders", f"{tag}-crisis-orders")
                orders_platform = platform_workflow_id("orders", CHOOSY.id)
                await save(env.client, orders_platform, f"{tag}-platform-orders")
            if version >= 7:
                await save(env.client, "governance", f"{tag}-crisis-governance")
                for platform in (CHOOSY.id, SLOWTUBE.id):  # brought in; suspended and back
                    handle = platform_workflow_id("governance", platform)
                    await save(env.client, handle, f"{tag}-platform-governance-{platform}")
            for platform in (FASTBOOK.id, SLOWTUBE.id, CHOOSY.id):
                await save(
                    env.client, platform_workflow_id("full", platform), f"{tag}-platform-{platform}"
                )
    finally:
        await env.shutdown()


if __name__ == "__main__":
    import sys

    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "v1"))

"""The coordinator console in a real browser: Debian's chromium driven by Playwright, against
the API on uvicorn, a worker on the Temporal dev server, and simulated platforms answering
their webhooks over the HTTP API.

Set EUCP_CONSOLE_SCREENSHOTS=docs/img to refresh the screenshots the docs show.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, Route, async_playwright, expect

from eucp.demo.simulator import WEBHOOK_PATH, Behaviour, Simulator
from eucp.protocol.clocks import SlaSettings
from eucp.protocol.identifiers import UrlIdentifier
from eucp.protocol.incident import Assessment
from eucp.runtime.settings import Settings
from eucp.runtime.stack import free_port
from tests.conftest import (
    AUDITOR,
    CHOOSY,
    COORDINATOR,
    FASTBOOK,
    HOST_AUTHORITY,
    MEMBER_STATE,
    REGISTRY,
    SLOWTUBE,
    Protocol,
    a_report,
)
from tests.http_steps import Api, issue_tokens, serving
from tests.protocol_steps import ALL_MET, ORDER_DETAILS, eventually
from tests.test_simulator import SECRET, running

CHROMIUM = "/usr/bin/chromium"
HAVE_CHROMIUM = Path(CHROMIUM).exists()  # installed by `make browser`, which `make test` runs
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SIMULATED = (FASTBOOK.id, SLOWTUBE.id)  # answer their webhooks; choosy never answers
QUICK = Behaviour(ack_after=0.2, act_after=0.6)
SHORT_SLA = SlaSettings(  # choosy misses its deadlines within seconds
    acknowledge_within=timedelta(seconds=3),
    act_within=timedelta(seconds=20),
    escalate_after=timedelta(seconds=2),
)
WAIT = 20_000  # ms: the longest a page may take to show what the test waits for


# ---- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def browser(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Browser]:
    """One chromium per module, each test in a context of its own (fresh cookies)."""
    if not HAVE_CHROMIUM:  # fail loudly: a skipped browser test proves nothing
        pytest.fail(
            f"the console tests need Debian's chromium at {CHROMIUM}: run `make browser` "
            "(as root; otherwise `sudo apt-get install -y chromium`)"
        )
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            downloads_path=tmp_path_factory.mktemp("downloads"),
        )
        yield launched
        await launched.close()


@pytest.fixture
def ports() -> dict[str, int]:
    return {p: free_port() for p in SIMULATED}


@pytest.fixture
def webhooks(settings: Settings, ports: dict[str, int]) -> None:
    """fastbook and slowtube are told over signed webhooks; written before the worker starts,
    which reads the registry once (so `site` asks for this before `eucp`)."""
    registry = REGISTRY.model_dump(mode="json")
    for entry in registry["participants"]:
        if entry["id"] in ports:
            entry.update(
                channels=["webhook", "log"],
                webhook_url=f"http://127.0.0.1:{ports[entry['id']]}{WEBHOOK_PATH}",
                webhook_secret=SECRET,
            )
    settings.registry_path.write_text(json.dumps(registry))


@dataclass
class Site:
    base: str
    api: Api
    browser: Browser
    shots: Path
    errors: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        """Collects script errors and anything the page's Content-Security-Policy refused."""
        page.on("pageerror", lambda err: self.errors.append(str(err)))
        page.on(
            "console",
            lambda msg: self.errors.append(msg.text) if "Refused to" in msg.text else None,
        )

    async def page(self, participant_id: str) -> Page:
        """A fresh browser context, signed in as the participant."""
        context = await self.browser.new_context(viewport={"width": 1400, "height": 900})
        context.set_default_timeout(WAIT)
        page = await context.new_page()
        self.watch(page)
        await sign_in(page, self.base, self.api.tokens[participant_id])
        await expect(page.locator("h1")).to_have_text("Incidents")
        return page

    async def report(self, sla: SlaSettings | None = None, **changes: Any) -> str:
        body: dict[str, Any] = {"report": a_report(**changes).model_dump(mode="json")}
        if sla is not None:
            body["sla"] = sla.model_dump(mode="json")
        answer = await self.api.as_(COORDINATOR.id).post("/v1/incidents", json=body)
        assert answer.status_code == 201, answer.text
        return str(answer.json()["incident_id"])

    async def act(
        self, incident_id: str, path: str, body: dict[str, Any], by: str = COORDINATOR.id
    ) -> None:
        """A participant acts over the API: the coordinator, as another coordinator's tab or
        the CLI would, unless another participant is named."""
        answer = await self.api.as_(by).post(f"/v1/incidents/{incident_id}/{path}", json=body)
        assert answer.status_code == 200, answer.text

    async def order(self, incident_id: str, by: str, items: list[int], **changes: Any) -> None:
        """An authority orders choosy to remove the content at these choosy URLs."""
        identifiers = [
            UrlIdentifier(
                value=f"https://choosy.example.test/p/{n}", platform=CHOOSY.id
            ).model_dump(mode="json")
            for n in items
        ]
        order = ORDER_DETAILS.model_copy(update=changes).model_dump(mode="json")
        await self.act(
            incident_id, "removal-orders", {"identifiers": identifiers, "order": order}, by
        )

    async def activate(self, incident_id: str) -> None:
        """The coordinator assesses (all five met) and activates over the API."""
        await self.act(incident_id, "assessment", {"assessment": ALL_MET.model_dump(mode="json")})
        await self.act(incident_id, "activation", {"reason": "all five criteria met"})

    async def activated(self, **changes: Any) -> str:
        incident = await self.report(**changes)
        await self.activate(incident)
        return incident

    async def incident_page(self, participant_id: str, incident_id: str) -> Page:
        """The incident's page, signed in as the participant, reached from the list."""
        page = await self.page(participant_id)
        await page.click(f"a[href$='/incidents/{incident_id}']")
        await expect(page.locator("[data-section=summary]")).to_contain_text("Phase")
        return page

    async def shot(self, page: Page, name: str) -> None:
        await page.screenshot(path=self.shots / f"console-{name}.png", full_page=True)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("EUCP_CONSOLE_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
async def site(
    webhooks: None,
    eucp: Protocol,
    ports: dict[str, int],
    browser: Browser,
    shots: Path,
) -> AsyncIterator[Site]:
    async with AsyncExitStack() as stack:
        base = await stack.enter_async_context(serving(eucp.settings, eucp.env.client))
        api = Api(base, issue_tokens(eucp.settings))
        stack.push_async_callback(api.close)
        for platform_id, port in ports.items():
            sim = Simulator(platform_id, base, api.tokens[platform_id], SECRET, QUICK)
            await stack.enter_async_context(running(sim, port))
        site = Site(base, api, browser, shots)
        yield site
        assert not site.errors, "the pages had script errors or CSP refusals"


# ---- steps ---------------------------------------------------------------------------------


async def sign_in(page: Page, base: str, token: str) -> None:
    await page.goto(f"{base}/console/sign-in")
    await page.fill("#token", token)
    await page.click("button[type=submit]")


def posted(path: str) -> Any:
    """Matches the answer to a form posted to `path`."""
    return lambda r: r.request.method == "POST" and r.url.endswith(path)


async def review_and_confirm(
    page: Page, action: str, fields: dict[str, str] | None = None, *, confirm: bool = True
) -> None:
    """Opens the action's form, fills it, asks for the review, and confirms."""
    form = page.locator(f"#action-{action}")
    await form.locator("summary").click()
    for name, value in (fields or {}).items():
        field = form.locator(f"[name='{name}']")
        if await field.evaluate("e => e.tagName") == "SELECT":
            await field.select_option(value)
        elif value == "on":
            await field.check()
        else:
            await field.fill(value)
    await form.locator("button[type=submit]").click()
    await expect(page.locator("h1")).to_contain_text("")
    if confirm:
        await page.click("#confirm")


async def expect_answer(page: Page, *texts: str) -> None:
    answer = page.locator("#answer")
    for text in texts:
        await expect(answer).to_contain_text(text)


def platform_row(page: Page, platform_id: str) -> Any:
    return page.locator(f"tr[data-platform='{platform_id}']")


# ---- sign-in -------------------------------------------------------------------------------


async def test_sign_in_takes_coordinators_and_auditors_and_refuses_everyone_else(
    site: Site,
) -> None:
    context = await site.browser.new_context()
    page = await context.new_page()
    page.set_default_timeout(WAIT)
    site.watch(page)

    await page.goto(f"{site.base}/console/incidents")
    assert page.url.endswith("/console/sign-in"), "a page needs a session"

    async with page.expect_response(posted("/console/sign-in")) as refused:
        await sign_in(page, site.base, "eucp_not-a-token")
    assert (await refused.value).status == 401
    await expect(page.locator("#sign-in-error")).to_have_text("Unknown or rotated token.")

    for who, kind in ((FASTBOOK.id, "platform"), (MEMBER_STATE.id, "member state")):
        async with page.expect_response(posted("/console/sign-in")) as answer:
            await sign_in(page, site.base, site.api.tokens[who])
        assert (await answer.value).status == 403
        await expect(page.locator("#sign-in-error")).to_contain_text(
            f"{who} is a {kind} and uses the HTTP API"
        )

    forged = await page.request.post(
        f"{site.base}/console/sign-in", form={"token": site.api.tokens[COORDINATOR.id]}
    )
    assert forged.status == 403, "the sign-in form carries a CSRF token too"

    await sign_in(page, site.base, site.api.tokens[COORDINATOR.id])
    await expect(page.locator("h1")).to_have_text("Incidents")
    cookie = next(c for c in await context.cookies() if c["name"] == "eucp_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/console"

    await page.click("text=Sign out")
    assert page.url.endswith("/console/sign-in")
    live = await page.request.get(
        f"{site.base}/console/incidents/_live", headers={"Accept": "application/json"}
    )
    assert live.status == 401, "a page left open learns it was signed out"
    await page.goto(f"{site.base}/console/incidents")
    assert page.url.endswith("/console/sign-in"), "signed out: the old session is gone"
    await context.close()


# ---- a crisis from report to closed --------------------------------------------------------


async def test_a_coordinator_runs_a_crisis_from_report_to_closed(site: Site) -> None:
    incident = await site.report(SHORT_SLA, title="Livestreamed attack in a shopping centre")
    page = await site.incident_page(COORDINATOR.id, incident)
    link = page.locator("#workflow-link")
    assert await link.get_attribute("href") == (
        f"http://127.0.0.1:8233/namespaces/default/workflows/{incident}"
    )

    evidence = {
        f"{name}.evidence": f"{name}: seen by the EU IRU" for name in Assessment.model_fields
    }
    statuses = {f"{name}.status": "met" for name in Assessment.model_fields}
    await review_and_confirm(page, "assess", statuses | evidence)
    await expect_answer(page, "Accepted: Record assessment", "phase: assessing")
    await expect(page.locator("tr[data-criterion='tve_link']")).to_contain_text("met")

    # pasted identifiers are checked line by line; nothing is sent while one is wrong
    pasted = "https://video.example.test/watch/1\nsha256:zz\nftp://nope\nmd5:" + "a" * 32
    await review_and_confirm(
        page,
        "activate",
        {"identifiers": pasted, "reason": "all five criteria met"},
        confirm=False,
    )
    problems = page.locator("#problems")
    await expect(problems).to_contain_text("line 2: value: must be hexadecimal")
    await expect(problems).to_contain_text("line 3: expected an http(s) URL")
    await expect(page.locator("#identifier-count")).to_have_text("2 valid, 2 invalid")
    await site.shot(page, "confirm")
    await page.fill(
        "textarea[name=identifiers]",
        "https://video.example.test/watch/1\nhttps://video.example.test/watch/2\nmd5:" + "a" * 32,
    )
    await page.click("#review-again")
    await page.click("#confirm")
    await expect_answer(page, "Accepted: Activate", "phase: active", "items accepted: 3")

    # the simulated platforms answer over the API; the page follows without a reload
    for platform_id in SIMULATED:
        await expect(platform_row(page, platform_id)).to_contain_text("removed 3")
    await expect(platform_row(page, CHOOSY.id).locator("td").nth(4)).to_have_text("3")
    await expect(platform_row(page, CHOOSY.id).locator("td").nth(6)).not_to_have_text("0")
    await expect(page.locator("[data-section=decisions]")).to_contain_text("task_removed")
    await site.shot(page, "incident")

    await review_and_confirm(
        page,
        "add_content",
        {"identifiers": "https://video.example.test/watch/2\nhttps://video.example.test/watch/3"},
    )
    await expect_answer(page, "Accepted: Add content", "items accepted: 1, duplicates: 1")
    await expect(page.locator("#items")).to_have_text("4")

    await review_and_confirm(
        page,
        "de_escalate",
        {"reason": "re-uploads have stopped", "withdraw_open_tasks": "on"},
    )
    await expect_answer(page, "Accepted: De-escalate", "phase: de_escalating")
    await review_and_confirm(page, "start_review")
    await expect_answer(page, "Accepted: Start review", "phase: review")
    await review_and_confirm(page, "close", {"reason": "debrief held"})
    await expect_answer(page, "Accepted: Close review", "phase: closed")
    await expect(page.locator("[data-section=actions]")).to_contain_text("No action is open")
    timeline = page.locator("[data-section=timeline] li")
    await expect(timeline).to_have_count(6)  # reported, assessing, active, de-esc., review, closed

    await page.click("#report-link")
    report = page.frame_locator("iframe.report")
    await expect(report.locator("h1")).to_contain_text("Post-incident review")
    await expect(report.locator("body")).to_contain_text(CHOOSY.id)
    await site.shot(page, "report")

    # other incidents beside it, for the list's screenshot
    await site.report(title="Stabbing video shared in messaging groups", event_place="Lyon")
    await site.activated(title="Manifesto re-uploaded after an attack", event_place="Vienna")
    await page.click("text=Incidents")
    await expect(page.locator(f"tr[data-incident='{incident}']")).to_contain_text("closed")
    await expect(page.locator("tbody[data-section=rows] tr")).to_have_count(3)
    await site.shot(page, "incidents")
    await page.context.close()


# ---- removal orders ------------------------------------------------------------------------


def order_row(page: Page, reference: str) -> Any:
    return page.locator(f"tr[data-order='{reference}']")


async def test_the_incident_page_shows_the_orders_and_withdraws_an_orders_items(
    site: Site,
) -> None:
    incident = await site.activated(title="Attack video ordered down across borders")
    # the French authority orders choosy, established in Ireland; Ireland's authority too
    await site.order(incident, MEMBER_STATE.id, [1, 2], reference="FR-2026-0031", confidential=True)
    await site.order(incident, MEMBER_STATE.id, [3], reference="FR-2026-0032")
    await site.order(incident, MEMBER_STATE.id, [4], reference="FR-2026-0033")
    await site.order(incident, MEMBER_STATE.id, [5], reference="FR-2026-0034")
    irish = {"reference": "IE-2026-0007", "issuing_authority": "Coimisiún na Meán"}
    await site.order(incident, HOST_AUTHORITY.id, [6], **irish)

    # choosy cannot tell which video of the first order is meant: the issuer clarifies; it
    # cannot take the second down for now (Annex III)
    first, second = f"{CHOOSY.id}-000001", f"{CHOOSY.id}-000002"

    async def held() -> bool:
        page = await site.api.as_(CHOOSY.id).get(f"/v1/incidents/{incident}/tasks")
        return {first, second} <= {task["task_id"] for task in page.json()["tasks"]}

    await eventually(held)
    reports = [
        {
            "task_id": first,
            "outcome": "cannot_comply",
            "cannot_comply": "insufficient_information",
            "reason": "the URL leads to a channel of 400 videos: which one?",
        },
        {
            "task_id": second,
            "outcome": "cannot_comply",
            "cannot_comply": "technical_impossibility",
            "reason": "our takedown service is down",
        },
    ]
    await site.act(incident, "tasks/reports", {"reports": reports}, CHOOSY.id)
    clarified = {"reference": "FR-2026-0031", "reason": "the video posted at 01:52 UTC"}
    await site.act(incident, "clarifications", clarified, MEMBER_STATE.id)
    # choosy questions two orders; Ireland upholds one and finds the other infringes
    for reference in ("FR-2026-0032", "FR-2026-0033"):
        asked = {"reference": reference, "reason": "the video is news reporting"}
        await site.act(incident, "scrutiny-requests", asked, CHOOSY.id)
    upheld = {"reference": "FR-2026-0033", "outcome": "upheld", "reason": "no manifest breach"}
    await site.act(incident, "scrutiny-decisions", upheld, HOST_AUTHORITY.id)
    void = {
        "reference": "FR-2026-0034",
        "outcome": "infringes",
        "reason": "the content is protected journalism (TCO Art. 1(3))",
    }
    await site.act(incident, "scrutiny-decisions", void, HOST_AUTHORITY.id)

    page = await site.incident_page(COORDINATOR.id, incident)
    rows = page.locator("[data-section=orders] tbody tr")
    await expect(rows).to_have_count(5)
    opened = order_row(page, "FR-2026-0031")
    for shown in ("confidential", "fr-pharos", "copy to ie-cnam", "1-2", "UTC"):
        await expect(opened).to_contain_text(shown)
    await expect(opened).to_contain_text("host State may scrutinise until")
    await expect(opened.locator("td").nth(5)).to_have_text("1")  # one clarification
    await expect(order_row(page, "FR-2026-0032")).to_contain_text("requested; decision due by")
    await expect(order_row(page, "FR-2026-0032")).to_contain_text("asked by choosy")
    await expect(order_row(page, "FR-2026-0033")).to_contain_text("upheld")
    void_row = order_row(page, "FR-2026-0034")
    await expect(void_row).to_contain_text("infringes: no legal effect")
    await expect(void_row.locator("details")).to_have_count(0)  # nothing left to withdraw
    await expect(order_row(page, "IE-2026-0007")).to_contain_text("not cross-border")
    bar = platform_row(page, CHOOSY.id)
    await expect(bar).to_contain_text("cannot comply 1")  # the second, paused
    await expect(bar).to_contain_text("acknowledged 1")  # the first, its hour started again

    # from the order's row, the withdraw content form with the order's items filled in
    questioned = order_row(page, "FR-2026-0032")
    await questioned.locator("summary").click()
    await expect(questioned.locator("[name=items]")).to_have_value("3")
    await questioned.locator("[name=reason]").fill("the order is questioned: hold it")
    await page.locator("#orders").scroll_into_view_if_needed()
    await site.shot(page, "orders")
    await questioned.locator("button[type=submit]").click()
    await expect(page.locator("h1")).to_contain_text("Withdraw content")
    await page.click("#confirm")
    await expect_answer(page, "Accepted: Withdraw content", "phase: active")
    # 3 and 5: the live view follows the platform a moment after the answer
    await expect(platform_row(page, CHOOSY.id)).to_contain_text("withdrawn 2", timeout=15_000)
    await page.context.close()


# ---- governance: the situation, who takes part, linked protocols ---------------------------


async def test_a_coordinator_governs_a_running_exercise_from_the_console(site: Site) -> None:
    """Updates, an imminent threat, a linked protocol, a platform brought in and another
    suspended, each through its console form; the page shows them, and that it is an exercise."""
    incident = await site.report(title="Exercise: attack livestream", exercise=True)
    await site.act(incident, "assessment", {"assessment": ALL_MET.model_dump(mode="json")})
    started = {"reason": "all five criteria met", "platforms": [FASTBOOK.id, SLOWTUBE.id]}
    await site.act(incident, "activation", started)
    page = await site.incident_page(COORDINATOR.id, incident)
    await expect(page.locator("#exercise")).to_contain_text("Exercise")

    await review_and_confirm(
        page, "post_update", {"text": "The attacker is in custody; re-uploads continue."}
    )
    await expect_answer(page, "Accepted: Post a situational update", "decisions recorded: 1")

    await review_and_confirm(
        page,
        "flag_threat",
        {"text": "A second attack is announced for tonight in Lyon.", "member_states": "fr be"},
        confirm=False,
    )
    await expect(page.locator("#submitted")).to_contain_text("FR, BE")
    await page.click("#confirm")
    await expect_answer(page, "Accepted: Flag an imminent threat to life")

    # the link's activation time is read in UTC, as every time the console shows
    link = {
        "protocol": "gifct_cip",
        "reference": "CIP-2026-014",
        "activated_at": "2026-03-15T01:40",
    }
    await review_and_confirm(page, "link_protocol", link, confirm=False)
    await expect(page.locator("#submitted")).to_contain_text("2026-03-15 01:40:00 UTC")
    await page.click("#confirm")
    await expect_answer(page, "Accepted: Link another protocol")

    await review_and_confirm(page, "join_platform", {"platform": CHOOSY.id})
    await expect_answer(page, "Accepted: Bring in a platform")

    # a suspension is offered for the platforms taking part; any id may be typed
    offered = page.locator("#action-suspend_platform datalist option")
    await expect(offered).to_have_count(3)  # every platform taking part, none suspended yet
    await review_and_confirm(
        page,
        "suspend_platform",
        {"platform": SLOWTUBE.id, "reason": "its takedown service is compromised"},
    )
    await expect_answer(page, "Accepted: Suspend a platform")

    situation = page.locator("[data-section=governance]")
    for shown in (
        "Situational update",
        "The attacker is in custody",
        "Imminent threat to life",
        "Member States concerned: FR, BE",
        "Platform brought in",
        "Platform suspended",
        "its takedown service is compromised",
    ):
        await expect(situation).to_contain_text(shown)
    linked = page.locator("tr[data-linked='CIP-2026-014']")
    await expect(linked).to_contain_text("GIFCT Content Incident Protocol")
    await expect(linked).to_contain_text("2026-03-15 01:40:00 UTC")
    await expect(platform_row(page, SLOWTUBE.id)).to_contain_text("suspended")
    await expect(platform_row(page, SLOWTUBE.id)).to_contain_text(
        "its takedown service is compromised"
    )
    await expect(platform_row(page, CHOOSY.id)).to_contain_text("joined later")
    await expect(platform_row(page, FASTBOOK.id)).not_to_contain_text("suspended")
    decisions = page.locator("[data-section=decisions]")
    await expect(decisions).to_contain_text("situation_updated")
    await expect(decisions).to_contain_text("A second attack is announced")
    # the suspended platform is no longer offered; it may be brought back
    await expect(page.locator("#action-suspend_platform datalist option")).to_have_count(2)
    await expect(page.locator("#action-join_platform datalist option")).to_have_count(1)
    await site.shot(page, "governance")

    await page.click("text=Incidents")
    await expect(page.locator(f"tr[data-incident='{incident}']")).to_contain_text("exercise")
    await page.context.close()


# ---- live updates, rejections, CSRF, auditors ----------------------------------------------


async def test_the_incident_page_updates_live_without_a_reload(site: Site) -> None:
    incident = await site.report()
    page = await site.incident_page(COORDINATOR.id, incident)
    await expect(page.locator("#phase")).to_have_text("reported")
    await page.evaluate("window.sameDocument = true")

    await site.activate(incident)

    await expect(page.locator("#phase")).to_have_text("active")
    await expect(page.locator("tr[data-criterion='depicts_harm']")).to_contain_text("met")
    await expect(page.locator("#action-de_escalate")).to_have_count(1)  # the forms follow
    await expect(page.locator("#live-status")).to_contain_text("live ·")
    assert await page.evaluate("window.sameDocument") is True, "the page was reloaded"
    await page.context.close()


async def test_a_rejected_action_is_shown_with_its_rule(site: Site) -> None:
    incident = await site.activated()
    page = await site.incident_page(COORDINATOR.id, incident)

    await review_and_confirm(page, "de_escalate", {"reason": "quiet now"}, confirm=False)
    await expect(page.locator("#confirm")).to_be_visible()
    # meanwhile another coordinator de-escalates: the Update refuses this one
    await site.act(incident, "de-escalation", {"reason": "quiet since noon"})
    await page.click("#confirm")

    await expect_answer(
        page,
        "Refused: De-escalate",
        "rule: de_escalate is allowed in active, not in de_escalating",
        "field: phase",
        "refusal: conflict",
    )
    await expect(page.locator("#phase")).to_have_text("de escalating")
    await site.shot(page, "rejection")
    await page.context.close()


async def test_a_form_without_its_csrf_token_is_refused(site: Site) -> None:
    incident = await site.report()
    page = await site.incident_page(COORDINATOR.id, incident)

    await page.locator("#action-assess summary").click()
    await page.eval_on_selector("#action-assess input[name=csrf]", "e => e.value = 'forged'")
    async with page.expect_response(posted("/actions/assess")) as answer:
        await page.locator("#action-assess button[type=submit]").click()
    assert (await answer.value).status == 403
    await expect(page.locator("#refusal")).to_contain_text("security token does not belong")

    missing = await page.request.post(
        f"{site.base}/console/incidents/{incident}/actions/assess",
        form={"confirmed": "yes", "real_world_event.status": "met"},
        max_redirects=0,
    )
    assert missing.status == 403
    assert "carries no security token" in await missing.text()
    decisions = await site.api.as_(COORDINATOR.id).get(f"/v1/incidents/{incident}/decisions")
    assert [r["decision"]["kind"] for r in decisions.json()] == ["reported"], "nothing changed"
    await page.context.close()


async def test_an_auditor_sees_everything_and_cannot_act(site: Site) -> None:
    incident = await site.report()
    await site.act(incident, "assessment", {"assessment": ALL_MET.model_dump(mode="json")})
    page = await site.incident_page(AUDITOR.id, incident)

    await expect(page.locator("#read-only")).to_be_visible()
    await expect(page.locator("details.action")).to_have_count(0)
    await expect(page.locator("tr[data-criterion='intimidation']")).to_contain_text("met")
    await expect(page.locator("[data-section=decisions]")).to_contain_text("assessed")

    token = await page.locator("form[action$='/sign-out'] input[name=csrf]").input_value()
    answer = await page.request.post(
        f"{site.base}/console/incidents/{incident}/actions/activate",
        form={"csrf": token, "confirmed": "yes", "reason": "an auditor tries"},
        max_redirects=0,
    )
    assert answer.status == 403
    assert "Auditors read" in await answer.text()
    status = (await site.api.as_(AUDITOR.id).get(f"/v1/incidents/{incident}")).json()
    assert status["crisis"]["phase"] == "assessing"
    await page.context.close()


async def test_the_incidents_list_keeps_or_leaves_out_exercises(site: Site) -> None:
    """Narrowed by the visibility store (the search attributes) before any status is read."""
    real = await site.report(title="A real report")
    drill = await site.activated(title="A drill", exercise=True)
    page = await site.page(COORDINATOR.id)
    rows = page.locator("tbody[data-section=rows] tr")
    await expect(rows).to_have_count(2)

    await page.select_option("select[name=exercise]", "exercise")
    await page.click("text=Filter")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_have_attribute("data-incident", drill)

    await page.select_option("select[name=exercise]", "real")
    await page.click("text=Filter")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_have_attribute("data-incident", real)

    await page.select_option("select[name=phase]", "active")  # the real one is only reported
    await page.click("text=Filter")
    await expect(rows.first).to_contain_text("No incident matches (2 in all)")
    await page.context.close()


async def test_the_incidents_list_filters_and_sorts(site: Site) -> None:
    quiet = await site.report(title="A quiet report")
    loud = await site.activated(title="A loud crisis")
    page = await site.page(COORDINATOR.id)
    rows = page.locator("tbody[data-section=rows] tr")
    await expect(rows).to_have_count(2)

    await page.select_option("select[name=phase]", "active")
    await page.click("text=Filter")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_have_attribute("data-incident", loud)

    await page.select_option("select[name=phase]", "")
    await page.fill("input[name=q]", "quiet")
    await page.click("text=Filter")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_have_attribute("data-incident", quiet)

    await page.fill("input[name=q]", "")
    await page.click("text=Filter")
    await page.click("a[data-sort=title]")
    await expect(rows.first).to_have_attribute("data-incident", loud)  # "A loud" < "A quiet"
    await page.click("a[data-sort=title]")
    await expect(rows.first).to_have_attribute("data-incident", quiet)
    await page.context.close()


async def test_a_change_recorded_while_the_page_loads_is_shown(site: Site) -> None:
    """The live view compares its first answer with the page as it was served: a change
    recorded between the page's rendering and that answer shows like any other. (Taking the
    first answer for what the page showed hid it until the section changed again.)"""
    incident = await site.activated()
    page = await site.page(COORDINATOR.id)
    answered = asyncio.Event()

    async def first_answer_late(route: Route) -> None:
        await answered.wait()
        await route.continue_()

    await page.route(f"**/incidents/{incident}/live", first_answer_late)
    await page.click(f"a[href$='/incidents/{incident}']")
    fastbook = platform_row(page, FASTBOOK.id)
    await expect(fastbook).not_to_contain_text("assigned 1")
    video = UrlIdentifier(value="https://video.example.test/watch/1")
    await site.act(incident, "content", {"identifiers": [video.model_dump(mode="json")]})

    async def assigned() -> bool:
        page = await site.api.as_(FASTBOOK.id).get(f"/v1/incidents/{incident}/tasks")
        return bool(page.json()["total"] == 1)

    await eventually(assigned)
    answered.set()
    await expect(fastbook).to_contain_text("assigned 1", timeout=10_000)
    await page.context.close()

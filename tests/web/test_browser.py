"""Headless Chromium (Debian's ``chromium``, driven by Playwright's Python API; never a
browser download) against a small demo town run by the real service.

The town (``town.yaml``): five households, a PV plant and a street of six lights on a
November evening, its clock 60× real time; SQLite in the test's folder; the web app on a
free loopback port. Each role logs in through the login form and sees real figures:
the member's settled consumption, the operator's live community and plan status, the
lighting engineer's luminaires with their levels and reasons; an edited program changes the
preview chart and is saved; the language switch sticks. Screenshots go to ``tests/web/artifacts/``
(one at phone size); with ``WALDSTADT_DOCS_SCREENSHOTS=1`` the operator's and the member's
also go to ``docs/screenshots/``.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from api.accounts import ensure_demo_users
from app.demo import Demo, demo_service
from protocols.mqtt.embedded import free_port

CHROMIUM = Path("/usr/bin/chromium")
HERE = Path(__file__).resolve().parent
ARTIFACTS = HERE / "artifacts"
DOCS = HERE.parents[1] / "docs" / "screenshots"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Debian's chromium is not installed (.ci/run installs it)"
    ),
]


async def wait_for(check, what: str, timeout_s: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        await asyncio.sleep(0.25)


def number(text: str) -> float:
    """A figure as the pages print it in German (1.234,5) or English (1,234.5)."""
    match = re.search(r"-?[\d.,]+", text.replace("\u2212", "-"))
    assert match is not None, text
    raw = match.group(0)
    if "," in raw and raw.rfind(",") > raw.rfind("."):
        raw = raw.replace(".", "").replace(",", ".")
    else:
        raw = raw.replace(",", "")
    return float(raw)


async def ready(demo: Demo, member: str) -> None:
    service = demo.service

    async def planned() -> bool:
        return bool(service.jobs.plans) and service.last_report is not None

    async def lit() -> bool:
        return service.lighting is not None and len(service.lighting.decisions) > 0

    async def settled() -> bool:
        store = service.store
        now = demo.clock.now()
        for community in await store.settlement_reads.member_communities(member):
            runs = await store.settlement.versions(
                community,
                now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(hours=1),
                now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(hours=23),
            )
            if runs:
                return True
        return False

    await wait_for(planned, "a plan and a cycle")
    await wait_for(lit, "the lighting decisions")
    await wait_for(settled, "the first provisional settlement of the member", 90)


#: Logs a role in through the login form in a fresh browser context (options as Playwright's
#: ``new_context``) and returns the context and its page.
Login = Callable[..., Awaitable[tuple[BrowserContext, Page]]]


def login_with(browser: Browser, base: str, logins: dict[str, tuple[str, str]]) -> Login:
    async def login(role: str, **context: object) -> tuple[BrowserContext, Page]:
        options: dict[str, object] = {"locale": "de-DE", "viewport": {"width": 1280, "height": 900}}
        options.update(context)
        ctx = await browser.new_context(**options)  # type: ignore[arg-type]
        page = await ctx.new_page()
        await page.goto(f"{base}/")
        assert "/login" in page.url
        user, password = logins[role]
        await page.fill("input[name=username]", user)
        await page.fill("input[name=password]", password)
        await page.click("button[type=submit]")
        await page.wait_for_load_state("networkidle")
        return ctx, page

    return login


async def see_member(login: Login) -> Path:
    """Today's settled consumption, the chart, the CSV; the screenshot's path."""
    ctx, page = await login("member")
    assert page.url.endswith("/member")
    consumption = page.locator('#today-figures [data-key="consumption"]')
    await expect(consumption).to_contain_text("kWh")
    assert number(await consumption.inner_text()) > 0
    chart = page.locator("#member-chart")
    await expect(chart).to_have_attribute("data-ready", "1")
    assert int(await chart.get_attribute("data-points") or 0) >= 92
    assert await page.locator("#member-chart canvas").count() == 1
    async with page.expect_download() as download_info:
        await page.click('a[href="/member/balances.csv?resolution=day"]')
    download = await download_info.value
    csv_text = await asyncio.to_thread(Path(await download.path()).read_text)
    assert csv_text.startswith("start,end,quarter_hours")
    assert "h02" not in await page.content()
    await page.screenshot(path=str(ARTIFACTS / "member.png"), full_page=True)
    await ctx.close()
    return ARTIFACTS / "member.png"


async def see_member_on_a_phone(login: Login) -> None:
    ctx, page = await login("member", viewport={"width": 390, "height": 844}, device_scale_factor=2)
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the member page scrolls sideways on a phone ({width} px)"
    await page.screenshot(path=str(ARTIFACTS / "member-phone.png"), full_page=True)
    await ctx.close()


async def see_operator(login: Login, demo: Demo) -> Path:
    """The community now, the plan, every asset, an override; the screenshot's path."""
    ctx, page = await login("operator")
    assert page.url.endswith("/operator")
    live = page.locator('[data-key="consumption"]').first
    assert number(await live.inner_text()) > 0
    status = page.locator('.plan-status [data-key="status"]').first
    assert (await status.inner_text()).strip() in {"optimal", "feasible", "fallback"}
    for chart in ("plan-grid", "plan-soc"):
        await expect(page.locator(f'[data-chart="{chart}"]').first).to_have_attribute(
            "data-ready", "1"
        )
    await page.screenshot(path=str(ARTIFACTS / "operator.png"), full_page=True)
    battery = next(m for m in demo.service.site.members if m.battery is not None)
    assert battery.battery is not None
    # every asset with its newest readings: the battery's charge and its owner
    await page.click("#asset-availability details summary")
    row = page.locator(f'#assets tr[data-device="{battery.battery.device}"]')
    await expect(row).to_be_visible()
    await expect(row).to_contain_text(battery.id)
    assert re.search(r"soc_pct: [\d.,]+ %", await row.inner_text())
    await page.fill("#override-form input[name=target]", battery.battery.device)
    await page.select_option("#override-form select[name=kind]", "battery_power_w")
    await page.fill("#override-form input[name=value]", "1500")
    await page.fill("#override-form input[name=reason]", "Test aus dem Browser")
    await page.click("#override-form button[type=submit]")
    await page.wait_for_load_state("networkidle")
    assert "override=" in page.url
    await expect(page.locator(".ok[role=status]")).to_be_visible()
    await ctx.close()
    return ARTIFACTS / "operator.png"


async def edit_in_the_preview(page: Page) -> None:
    """An edited level changes the preview's energy; the summer solstice uses less."""
    preview = page.locator("#preview-chart")
    await expect(preview).to_have_attribute("data-ready", "1")
    before = await preview.get_attribute("data-energy")
    first_level = page.locator('#ed-steps tbody tr:first-child input[name="level_pct"]')
    old_level = float(await first_level.input_value())
    await first_level.fill(str(10 if old_level > 20 else 100))
    await expect(preview).not_to_have_attribute("data-energy", before or "")
    after = await preview.get_attribute("data-energy")
    assert after is not None
    assert before is not None
    assert float(after) != float(before)
    await page.fill("#ed-night", "2026-06-21")
    await page.dispatch_event("#ed-night", "change")
    await expect(preview).not_to_have_attribute("data-energy", after)
    assert float(await preview.get_attribute("data-energy") or 0) < float(after)


async def see_lighting(login: Login) -> None:
    """Levels and reasons, the editor's live preview, saving, the year, the language."""
    ctx, page = await login("lighting_engineer")
    assert page.url.endswith("/lighting")
    rows = page.locator("#luminaires tbody tr")
    assert await rows.count() == 6
    level = await rows.first.locator('[data-key="level"]').inner_text()
    assert "—" not in level
    reason = await rows.first.locator(".reason").inner_text()
    assert "program" in reason
    await edit_in_the_preview(page)
    # save it: the lighting API stores a version and the service runs it
    await page.click("#ed-save")
    await expect(page.locator("#ed-saved")).to_be_visible()
    await expect(page.locator("#ed-error")).to_be_hidden()
    await expect(page.locator("#year-figures")).to_have_attribute("data-ready", "1")
    assert "kWh" in await page.locator("#year-figures").inner_text()
    await page.screenshot(path=str(ARTIFACTS / "lighting.png"), full_page=True)
    # the language switch, and it sticks
    await page.click('a[data-lang-switch="en"]')
    await page.wait_for_load_state("networkidle")
    assert await page.get_attribute("html", "lang") == "en"
    await expect(page.locator("h1")).to_contain_text("Street lighting")
    await page.reload()
    await expect(page.locator("h1")).to_contain_text("Street lighting")
    await page.screenshot(path=str(ARTIFACTS / "lighting-en.png"), full_page=True)
    await ctx.close()


async def see_auditor(login: Login) -> None:
    """The override is in the log, the chain is intact."""
    ctx, page = await login("auditor")
    assert page.url.endswith("/audit")
    await expect(page.locator("#chain")).to_contain_text("intakt")
    await expect(page.locator("#audit-records")).to_contain_text("command.override")
    await page.screenshot(path=str(ARTIFACTS / "auditor.png"), full_page=True)
    await ctx.close()


async def test_each_role_sees_the_running_town_in_chromium(tmp_path: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    db = f"sqlite+aiosqlite:///{tmp_path / 'demo.sqlite'}"
    async with demo_service(HERE / "town.yaml", None, None, db, port) as demo:
        member = demo.service.site.members[0].id
        logins = {
            role: (user, password)
            for user, password, role in await ensure_demo_users(demo.service.store, member)
        }
        await ready(demo, member)
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
            )
            try:
                login = login_with(browser, base, logins)
                member_shot = await see_member(login)
                await see_member_on_a_phone(login)
                operator_shot = await see_operator(login, demo)
                await see_lighting(login)
                await see_auditor(login)
            finally:
                await browser.close()
    if os.environ.get("WALDSTADT_DOCS_SCREENSHOTS"):
        DOCS.mkdir(parents=True, exist_ok=True)
        shutil.copy(operator_shot, DOCS / "operator.png")
        shutil.copy(member_shot, DOCS / "member.png")

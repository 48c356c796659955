"""The live seat dashboard in headless Chromium on a real uvicorn: a registration made
through the API shows on the page within a second; the page reads on a phone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.async_api import expect

from tests.browser.pages import offline_page
from tests.client import outcome
from tests.conftest import Api, Catalog

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True}


async def test_a_registration_shows_on_the_dashboard_within_a_second(
    api: Api, catalog: Catalog, server: str, browser: Any, tmp_path: Path
) -> None:
    semester = await catalog.semester()
    full, watched, other = [await catalog.section(seats, semester) for seats in (1, 5, 30)]
    first, second = await catalog.students(2)
    await outcome(api, first, full)
    async with offline_page(browser, server) as offline:
        page = offline.page
        await page.goto(f"{server}/dashboard?semester={semester.id}")
        row = page.locator(f'[data-section-id="{watched.id}"]')
        await expect(page.locator("#status")).to_have_text("live")
        await expect(page.locator(".section")).to_have_count(3)
        await expect(row.locator(".taken")).to_have_text("0")
        await expect(row.locator(".total")).to_have_text("5")

        assert await outcome(api, second, watched) == "ENROLLED"
        await expect(row.locator(".taken")).to_have_text("1", timeout=1000)
        assert await outcome(api, second, full) == "WAITLISTED"
        crowded = page.locator(f'[data-section-id="{full.id}"]')
        await expect(crowded.locator(".waiting")).to_have_text("1", timeout=1000)
        await expect(crowded).to_have_attribute("data-level", "full")

        untouched = page.locator(f'[data-section-id="{other.id}"] .taken')
        await expect(untouched).to_have_text("0")

        await page.screenshot(path=tmp_path / "dashboard.png", full_page=True)
        assert offline.outside == [] and offline.console_errors == []
    assert (tmp_path / "dashboard.png").stat().st_size > 0


async def test_the_dashboard_reads_on_a_phone_and_picks_a_semester(
    catalog: Catalog, server: str, browser: Any, tmp_path: Path
) -> None:
    semester = await catalog.semester()
    for seats in (10, 20):
        await catalog.section(seats, semester)
    async with offline_page(browser, server, **PHONE) as offline:
        page = offline.page
        await page.goto(f"{server}/dashboard")
        await expect(page.locator("#message")).to_contain_text("Pick a semester")
        await page.locator("#semester").select_option(str(semester.id))
        await expect(page).to_have_url(f"{server}/dashboard?semester={semester.id}")
        await expect(page.locator(".section")).to_have_count(2)
        await expect(page.locator("#status")).to_have_text("live")
        overflow = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, "the page scrolls sideways on a phone"
        await page.screenshot(path=tmp_path / "dashboard-phone.png", full_page=True)
        assert offline.outside == [] and offline.console_errors == []

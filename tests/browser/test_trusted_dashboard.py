"""The live seat dashboard sends the app's trusted documents by id, so it works unchanged
when the server runs only listed documents for anonymous callers
(COURSEREG_TRUSTED_DOCUMENTS=students), its subscription included."""

from __future__ import annotations

from typing import Any

from playwright.async_api import expect

from tests.browser.pages import offline_page
from tests.client import REGISTER, register_input
from tests.conftest import Api, Catalog
from tests.servers import serve


async def test_the_dashboard_works_when_only_trusted_documents_run(
    students_api: Api, browser: Any
) -> None:
    catalog = Catalog(students_api.container)
    semester = await catalog.semester()
    watched = await catalog.section(5, semester)
    await catalog.section(9, semester)
    student = await catalog.student()
    async with serve(students_api.app) as server, offline_page(browser, server) as offline:
        page = offline.page
        await page.goto(f"{server}/dashboard")
        await expect(page.locator("#semester")).to_contain_text(semester.name)
        await page.goto(f"{server}/dashboard?semester={semester.id}")
        await expect(page.locator("#status")).to_have_text("live")
        await expect(page.locator(".section")).to_have_count(2)
        row = page.locator(f'[data-section-id="{watched.id}"]')
        await expect(row.locator(".taken")).to_have_text("0")
        asked = register_input(student.id, [watched.id])
        await students_api.staff(REGISTER, i=asked)  # staff: any document
        await expect(row.locator(".taken")).to_have_text("1", timeout=2000)
        assert offline.outside == [] and offline.console_errors == []

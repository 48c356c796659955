"""GraphiQL at /graphql in headless Chromium, cut off from the internet: it loads from the
app alone, runs a query with a staff token from its headers pane, and gets data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from playwright.async_api import expect

from tests.browser.pages import offline_page
from tests.conftest import Api, Catalog


async def test_graphiql_runs_a_staff_query_with_no_internet(
    api: Api, catalog: Catalog, server: str, browser: Any, tmp_path: Path
) -> None:
    student = await catalog.student()
    query = f'{{ student(id: "{student.id}") {{ firstName lastName }} }}'
    headers = json.dumps({"Authorization": f"Bearer {api.token()}"})
    async with offline_page(browser, server) as offline:
        page = offline.page
        await page.goto(f"{server}/graphql?" + urlencode({"q": query}, quote_via=quote))
        # What the README tells staff: the Headers pane, {"Authorization": "Bearer <token>"}.
        await page.get_by_role("button", name="Headers").click()
        await page.locator(".graphiql-editor-tool .graphiql-editor:visible").click()
        await page.keyboard.insert_text(headers)
        await page.locator(".graphiql-execute-button").click()
        result = page.locator(".result-window")
        await expect(result).to_contain_text('"firstName": "Ada"', timeout=10_000)
        await expect(result).not_to_contain_text("errors")
        await page.screenshot(path=tmp_path / "graphiql.png")
        assert offline.outside == [], "GraphiQL asked another host for something"
        assert offline.console_errors == []

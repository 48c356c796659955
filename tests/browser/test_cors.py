"""A frontend on another origin, in headless Chromium: a page served by a second local server
(another port, so another origin) calls the API (a query) and opens a subscription over
graphql-transport-ws (the app's own client, static/graphql-ws.js). Listed in
COURSEREG_CORS_ORIGINS it gets its answer and its live seat counts; the same page from an
origin not listed is refused by the browser (CORS) and by the server (the websocket's 403)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from playwright.async_api import expect
from starlette.applications import Starlette
from starlette.responses import FileResponse, HTMLResponse
from starlette.routing import Route

from infrastructure.http.pages import STATIC
from infrastructure.settings import Settings
from tests.client import outcome
from tests.conftest import Api, Catalog, forget_keys, running_app
from tests.servers import serve

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Another origin</title></head>
<body><p id="query">…</p><p id="socket">…</p><p id="seats">…</p>
<script type="module">
import { GraphQLSocket } from "/graphql-ws.js";
const asked = new URLSearchParams(location.search);
const api = asked.get("api"), section = asked.get("section");
const show = (id, text) => { document.getElementById(id).textContent = text; };
fetch(api + "/graphql", {
  method: "POST",
  headers: {
    "Content-Type": "application/json",
    "Accept": "application/graphql-response+json",
    "Authorization": "Bearer " + asked.get("token"),
  },
  body: JSON.stringify({
    query: "query($id: UUID!) { section(id: $id) { totalSeats } }",
    variables: { id: section },
  }),
}).then(
  async (r) => show("query", "seats " + (await r.json()).data.section.totalSeats),
  (e) => show("query", "failed: " + e.name),
);
const socket = new GraphQLSocket(api.replace(/^http/, "ws") + "/graphql", {
  onStatus: (status) => show("socket", status),
});
socket.subscribe(
  {
    query: "subscription($ids: [UUID!]!) { seatUpdates(sectionIds: $ids) { availableSeats } }",
    variables: { ids: [section] },
  },
  { next: (p) => show("seats", "available " + p.data.seatUpdates.availableSeats) },
);
</script></body></html>"""


def frontend() -> Starlette:
    """The other origin: the page, and the graphql-ws client it imports from its own origin
    (a module script from another origin would itself need CORS)."""

    async def page(_request: Any) -> HTMLResponse:
        return HTMLResponse(PAGE)

    async def client(_request: Any) -> FileResponse:
        return FileResponse(Path(STATIC) / "graphql-ws.js", media_type="text/javascript")

    return Starlette(routes=[Route("/", page), Route("/graphql-ws.js", client)])


@dataclass
class Origins:
    api: Api
    api_url: str
    listed: str  # the page's origin named in COURSEREG_CORS_ORIGINS
    unlisted: str


@pytest.fixture
async def origins(settings: Settings) -> AsyncIterator[Origins]:
    async with contextlib.AsyncExitStack() as stack:
        listed = await stack.enter_async_context(serve(frontend()))
        unlisted = await stack.enter_async_context(serve(frontend()))
        allowed = settings.model_copy(update={"cors_origins": (listed,)})
        api = await stack.enter_async_context(running_app(allowed))
        api_url = await stack.enter_async_context(serve(api.app))
        yield Origins(api, api_url, listed, unlisted)
        await forget_keys(api.container)


async def open_page(
    browser: Any, origin: str, origins: Origins, section: Any
) -> tuple[Any, list[str]]:
    """The page on `origin`, pointed at the API; and what it logs to the console."""
    context = await browser.new_context()
    page = await context.new_page()
    said: list[str] = []
    page.on("console", lambda m: said.append(m.text))
    token = origins.api.token()
    query = urlencode({"api": origins.api_url, "token": token, "section": str(section.id)})
    await page.goto(f"{origin}/?{query}")
    return page, said


async def test_a_listed_origin_queries_and_subscribes(origins: Origins, browser: Any) -> None:
    catalog = Catalog(origins.api.container)
    section = await catalog.section(seats=5)
    page, _ = await open_page(browser, origins.listed, origins, section)
    try:
        await expect(page.locator("#query")).to_have_text("seats 5")
        await expect(page.locator("#socket")).to_have_text("live")
        await expect(page.locator("#seats")).to_have_text("available 5")
        student = await catalog.student()
        assert await outcome(origins.api, student, section) == "ENROLLED"
        await expect(page.locator("#seats")).to_have_text("available 4", timeout=2000)
    finally:
        await page.context.close()


async def test_an_unlisted_origin_is_refused(origins: Origins, browser: Any) -> None:
    catalog = Catalog(origins.api.container)
    section = await catalog.section(seats=5)
    page, console = await open_page(browser, origins.unlisted, origins, section)
    try:
        await expect(page.locator("#query")).to_have_text("failed: TypeError")
        await expect(page.locator("#socket")).to_have_text("reconnecting")
        await expect(page.locator("#seats")).to_have_text("…")
        said = "\n".join(console)
        assert "blocked by CORS policy" in said, said
        assert "403" in said, said  # the server refused the websocket's handshake
    finally:
        await page.context.close()

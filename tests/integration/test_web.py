"""The browser pages the app serves. GraphiQL works offline: its page names no other host,
and every asset it loads is served here and still matches its SRI integrity hash. The
dashboard page and its scripts come from the app too; `semesters` lists what it offers."""

from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser

from tests.conftest import Api

BROWSER = {"Accept": "text/html,application/xhtml+xml"}
TYPES = {".js": "text/javascript", ".css": "text/css"}


class Assets(HTMLParser):
    """(url, integrity) of every <script src> and <link href> carrying an integrity."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        url = named.get("src") or named.get("href")
        if tag in ("script", "link") and url and named.get("integrity"):
            self.found.append((url, str(named["integrity"])))


async def graphiql_html(api: Api) -> str:
    response = await api.client.get("/graphql", headers=BROWSER)
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()
    return response.text


async def test_the_graphiql_page_names_no_other_host(api: Api) -> None:
    html = await graphiql_html(api)
    assert re.findall(r"https?://[^\s\"'<>]+", html) == []
    assert "unpkg.com" not in html


async def test_every_graphiql_asset_is_served_here_and_matches_its_integrity_hash(
    api: Api,
) -> None:
    parser = Assets()
    parser.feed(await graphiql_html(api))
    assert len(parser.found) == 7, parser.found
    for url, integrity in parser.found:
        assert url.startswith("/static/vendor/"), url
        response = await api.client.get(url)
        assert response.status_code == 200, url
        suffix = url[url.rindex(".") :]
        assert response.headers["content-type"].startswith(TYPES[suffix]), url
        algorithm, _, expected = integrity.partition("-")
        assert algorithm in ("sha256", "sha384", "sha512")
        digest = hashlib.new(algorithm, response.content).digest()
        assert base64.b64encode(digest).decode() == expected, f"{url} does not match {integrity}"


async def test_the_dashboard_page_and_its_assets_are_served_by_the_app(api: Api) -> None:
    page = await api.client.get("/dashboard?semester=anything")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert re.findall(r"https?://[^\s\"'<>]+", page.text) == []
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text):
        assert (await api.client.get(asset)).status_code == 200, asset
    script = await api.client.get("/static/dashboard.js")
    assert 'from "/static/graphql-ws.js"' in script.text
    assert (await api.client.get("/static/graphql-ws.js")).status_code == 200


async def test_the_semesters_query_lists_every_semester_to_anyone(api: Api, catalog) -> None:
    made = [await catalog.semester() for _ in range(2)]
    body = await api.gql("{ semesters { id name registrationStart isActive } }")
    assert "errors" not in body, body
    listed = {s["id"] for s in body["data"]["semesters"]}
    assert {str(s.id) for s in made} <= listed

"""The student app signing in through a real OpenID provider (tests/oidc.py: panva's
oidc-provider with its development login page), in headless Chromium on a real uvicorn:
the page sends the student to the provider (Authorization Code with PKCE), the student
fills the provider's login form, comes back signed in, registers and signs out (at the
provider too). The access token is
short-lived here, so the tests also see it renewed in the background (a hidden frame with
prompt=none: the provider's session cookie is same-site) while a live waitlist feed goes on,
a lapsed token renewed on coming back to the page, and, once the provider's session is
gone, "Your session has expired — sign in again"."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
from playwright.async_api import expect

from infrastructure.settings import Settings
from tests.browser.student_app import (
    AppPage,
    Offered,
    app_page,
    describe,
    offered,
    serious_accessibility_violations,
)
from tests.client import DROP, REGISTER, drop_input, register_input
from tests.conftest import Api, Catalog, Worker
from tests.oidc import AUDIENCE, OidcProvider, new_key_set
from tests.servers import free_port

MON_9 = {"days": ["MON", "WED"], "startTime": "09:00", "endTime": "10:30", "location": "Hall A"}
# The provider's development login page asks Google for a font; the page works without it.
PROVIDER_PAGE_FONTS = "https://fonts.googleapis.com/"
TOKEN_TTL = 6  # seconds: renewed after 4.8 s (session.js renewAfter), lapses at 6 s


@pytest.fixture
def provider_port() -> int:
    return free_port()


@pytest.fixture
def settings(settings: Settings, provider_port: int) -> Settings:
    """The API trusts the provider (started once the app's address is known, since its
    client lists the app's callback); the HS256 tokens are kept for the staff set-up."""
    return settings.model_copy(
        update={
            "oidc_issuer": f"http://127.0.0.1:{provider_port}",
            "oidc_audience": AUDIENCE,
            "dev_tokens": True,
            # No clock skew allowed: a live feed on a lapsed token ends at its exp.
            "oidc_leeway_seconds": 0,
        }
    )


@pytest.fixture
async def provider(server: str, provider_port: int) -> AsyncIterator[OidcProvider]:
    keys = new_key_set()
    started = OidcProvider(
        keys=keys,
        port=provider_port,
        access_token_ttl=TOKEN_TTL,
        redirect_uris=[f"{server}/app/callback"],
        post_logout_redirect_uris=[f"{server}/"],
    )
    try:
        await started.start()
        yield started
    finally:
        await started.stop()
        started.close_files()


async def sign_in_at_the_provider(app: AppPage, login: str) -> None:
    """From the app's sign-in button through the provider's login form, back to the app."""
    page = app.page
    await page.get_by_role("button", name="Sign in with your university account").click()
    await page.locator('input[name="login"]').fill(login)
    await page.locator('input[name="password"]').fill("any password")
    await page.get_by_role("button", name="Sign-in").click()


async def signed_in_as(app: AppPage, student: Any) -> None:
    await expect(app.page.locator(".top")).to_contain_text(student.student_number)


async def access_token(app: AppPage) -> str:
    """The access token oidc-client-ts holds for the tab (its user in sessionStorage)."""
    token = await app.page.evaluate(
        """() => {
          const key = Object.keys(sessionStorage).find((k) => k.startsWith("oidc.user:"));
          return key ? JSON.parse(sessionStorage.getItem(key)).access_token : null;
        }"""
    )
    assert isinstance(token, str), "no sign-in held by the page"
    return token


def only_home_and_provider(app: AppPage) -> None:
    fonts = [u for u in app.offline.outside if u.startswith(PROVIDER_PAGE_FONTS)]
    outside = [u for u in app.offline.outside if u not in fonts]
    assert outside == [], f"asked other hosts: {outside}"
    # Each font refused is one console line on the provider's page, naming no URL.
    errors = list(app.offline.console_errors)
    for _ in fonts:
        if "Failed to load resource: net::ERR_FAILED" in errors:
            errors.remove("Failed to load resource: net::ERR_FAILED")
    assert errors == [], errors


async def test_a_student_signs_in_at_the_provider_lands_back_signed_in_and_registers(
    api: Api, catalog: Catalog, provider: OidcProvider, server: str, browser: Any
) -> None:
    semester = await catalog.semester()
    section = await offered(api, catalog, semester, 5, [MON_9], credits=3)
    (student,) = await catalog.students(1)
    async with app_page(browser, server, also=(provider.issuer,)) as app:
        page = app.page
        await page.goto(f"{server}/#cart")
        await expect(page.get_by_role("textbox")).to_have_count(0)  # no token field here
        violations = await serious_accessibility_violations(page)
        assert violations == [], describe(violations)
        await sign_in_at_the_provider(app, f"s-{student.student_number}")
        await signed_in_as(app, student)
        assert page.url == f"{server}/#cart", "not back where the student left"
        token = await access_token(app)
        assert token.count(".") == 2, "not the provider's JWT"

        await page.get_by_label("Views").get_by_role("link", name="Find sections").click()
        await expect(page.get_by_label("Course code or title")).to_be_visible()
        await app.add_to_cart(section)
        await app.register()
        await expect(app.outcome(section)).to_contain_text("Enrolled.")
        await app.view("My schedule")
        await expect(app.enrolled(section)).to_be_visible()

        # Sign out ends the provider's session too: the next sign-in asks for the login.
        await page.get_by_role("button", name="Sign out").click()
        await page.get_by_role("button", name="Yes, sign me out").click()
        again = page.get_by_role("button", name="Sign in with your university account")
        await expect(again).to_be_visible()
        assert page.url == f"{server}/"
        held = await page.evaluate("Object.keys(sessionStorage)")
        assert not [k for k in held if k.startswith("oidc.user:")], held
        await again.click()
        await expect(page.locator('input[name="login"]')).to_be_visible()
        only_home_and_provider(app)


async def test_a_staff_sign_in_gets_the_staff_notice(
    provider: OidcProvider, server: str, browser: Any
) -> None:
    async with app_page(browser, server, also=(provider.issuer,)) as app:
        await app.page.goto(f"{server}/")
        await sign_in_at_the_provider(app, "staff-registrar")
        heading = app.page.get_by_role("heading", name="This is a staff sign-in")
        await expect(heading).to_be_visible()
        only_home_and_provider(app)


async def test_a_sign_in_naming_no_student_here_says_to_ask_the_registrar(
    provider: OidcProvider, server: str, browser: Any
) -> None:
    async with app_page(browser, server, also=(provider.issuer,)) as app:
        await app.page.goto(f"{server}/")
        await sign_in_at_the_provider(app, "s-not-enrolled-here")
        refused = app.page.get_by_role("alert")
        await expect(refused).to_contain_text("This sign-in was not accepted")
        await expect(refused).to_contain_text("ask the registrar")
        button = app.page.get_by_role("button", name="Sign in with your university account")
        await expect(button).to_be_visible()
        only_home_and_provider(app)


async def waitlisted(
    api: Api, catalog: Catalog, provider: OidcProvider
) -> tuple[Offered, Any, Any]:
    """A one-seat section held by `holder` (signed in at the provider by the API's own
    client), and a student who will sign in in the browser."""
    semester = await catalog.semester()
    section = await offered(api, catalog, semester, 1, [MON_9], credits=3)
    holder, student = await catalog.students(2)
    token = await provider.login(f"s-{holder.student_number}")
    body = await api.gql(REGISTER, token, i=register_input(holder.id, [section.id]))
    assert body["data"]["register"]["results"][0]["outcome"] == "ENROLLED", body
    return section, holder, student


async def test_the_token_is_renewed_before_it_lapses_and_the_live_waitlist_goes_on(
    api: Api,
    catalog: Catalog,
    worker: Worker,
    provider: OidcProvider,
    server: str,
    browser: Any,
) -> None:
    section, holder, student = await waitlisted(api, catalog, provider)
    opened_with: list[str] = []  # the Authorization of each live connection's init

    def through(ws: Any) -> None:
        api_side = ws.connect_to_server()

        def page_to_api(message: str | bytes) -> None:
            sent = json.loads(message)
            if sent.get("type") == "connection_init":
                opened_with.append(sent["payload"]["Authorization"])
            api_side.send(message)

        ws.on_message(page_to_api)

    async with app_page(browser, server, also=(provider.issuer,)) as app:
        page = app.page
        await page.context.route_web_socket(re.compile(r"/graphql$"), through)
        await page.goto(f"{server}/")
        await sign_in_at_the_provider(app, f"s-{student.student_number}")
        await signed_in_as(app, student)
        first = await access_token(app)
        await app.add_to_cart(section)
        await app.register()
        await expect(app.outcome(section)).to_contain_text("waitlist at position 1")
        await app.view("My schedule")
        await expect(app.waiting(section)).to_be_visible()

        # Past the first token's lifetime (the API ends a feed at its token's exp): renewed,
        # and the live feeds opened again with the renewed token.
        await asyncio.sleep(TOKEN_TTL + 1)
        renewed = await access_token(app)
        assert renewed != first, "the token was not renewed"
        await expect(page.locator(".live-status")).to_have_attribute("data-status", "live")
        assert opened_with[0] == f"Bearer {first}"
        assert opened_with[-1] == f"Bearer {renewed}", "the live feed kept the lapsed token"

        token = await provider.login(f"s-{holder.student_number}")
        body = await api.gql(DROP, token, i=drop_input(holder.id, section.id))
        assert "errors" not in body, body
        await expect(app.enrolled(section)).to_be_visible(timeout=5000)
        await expect(page.locator(".notices")).to_contain_text("you got a seat")

        # Away until the token held for the tab lapsed: back, the page renews it at once
        # (the provider's session is still there), no login form and no expiry notice.
        held = await access_token(app)
        await page.goto("about:blank")
        lapses = jwt.decode(held, options={"verify_signature": False})["exp"]
        await asyncio.sleep(max(lapses - time.time() + 0.5, 0))
        await page.goto(f"{server}/#schedule")
        await expect(app.enrolled(section)).to_be_visible()
        assert await access_token(app) != held
        only_home_and_provider(app)


async def test_when_the_sign_in_cannot_be_renewed_the_page_says_so_and_signs_in_again(
    api: Api, catalog: Catalog, provider: OidcProvider, server: str, browser: Any
) -> None:
    section, _, student = await waitlisted(api, catalog, provider)
    async with app_page(browser, server, also=(provider.issuer,)) as app:
        page = app.page
        await page.goto(f"{server}/")
        await sign_in_at_the_provider(app, f"s-{student.student_number}")
        await signed_in_as(app, student)
        await app.add_to_cart(section)
        await app.register()
        await app.view("My schedule")
        await expect(app.waiting(section)).to_be_visible()
        await expect(page.locator(".live-status")).to_have_attribute("data-status", "live")

        # The provider's session ends (its cookie gone): prompt=none cannot renew.
        await page.context.clear_cookies()
        expired = page.get_by_role("heading", name="Your session has expired — sign in again")
        await expect(expired).to_be_visible(timeout=(TOKEN_TTL + 4) * 1000)
        violations = await serious_accessibility_violations(page)
        assert violations == [], describe(violations)

        await page.get_by_role("button", name="Sign in again").click()
        await page.locator('input[name="login"]').fill(f"s-{student.student_number}")
        await page.locator('input[name="password"]').fill("any password")
        await page.get_by_role("button", name="Sign-in").click()
        await signed_in_as(app, student)
        assert page.url == f"{server}/#schedule", "not back on the view the student was on"
        await expect(app.waiting(section)).to_be_visible()
        await expect(page.locator(".live-status")).to_have_attribute("data-status", "live")
        only_home_and_provider(app)

"""The student app at / in headless Chromium on a real uvicorn, each page in a browser context
of its own whose network reaches the API's origin only (tests/browser/pages.py): students
sign in through the demo picker, register from a cart, see promotions and offers live, and
the page reads on a phone and a desktop without serious accessibility violations."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from infrastructure.settings import Settings
from tests.browser.student_app import (
    DESKTOP,
    PHONE,
    SET_MAX,
    app_page,
    artifacts,
    bulk_sections,
    describe,
    offered,
    serious_accessibility_violations,
)
from tests.client import drop, outcome
from tests.conftest import Api, Catalog, Worker

MON_9 = {"days": ["MON", "WED"], "startTime": "09:00", "endTime": "10:30", "location": "Hall A"}
MON_10 = {"days": ["MON"], "startTime": "10:00", "endTime": "11:00"}
TUE_9 = {"days": ["TUE", "THU"], "startTime": "09:00", "endTime": "10:15"}
FRI_14 = {"days": ["FRI"], "startTime": "14:00", "endTime": "16:30", "location": "Lab 3"}


@pytest.fixture
def settings(settings: Settings) -> Iterator[Settings]:
    """The demo picker on: these tests sign in as a student would in `make demo`."""
    yield settings.model_copy(update={"demo_login": True})


async def test_a_student_waitlisted_at_one_sees_the_promotion_within_two_seconds(
    api: Api, catalog: Catalog, worker: Worker, server: str, browser: Any
) -> None:
    semester = await catalog.semester()
    last_seat = await offered(api, catalog, semester, 1, [MON_9], credits=3)
    a, b = await catalog.students(2)
    async with app_page(browser, server) as first, app_page(browser, server) as second:
        await first.sign_in(a)
        await second.sign_in(b)

        await first.add_to_cart(last_seat)
        await first.register()
        await expect(first.outcome(last_seat)).to_contain_text("Enrolled.")
        await second.add_to_cart(last_seat)
        await second.register()
        await expect(second.outcome(last_seat)).to_contain_text(
            "you are on the waitlist at position 1"
        )
        await second.view("My schedule")
        await expect(second.waiting(last_seat).locator(".rank")).to_have_text("1")

        await first.view("My schedule")
        await first.enrolled(last_seat).get_by_role("button", name="Drop").click()
        await first.page.get_by_role("dialog").get_by_role("button", name="Drop it").click()
        dropped_at = time.monotonic()
        await expect(second.enrolled(last_seat)).to_be_visible(timeout=2000)
        await expect(second.page.locator(".notices")).to_contain_text("you got a seat")
        seen_after = time.monotonic() - dropped_at
        await expect(second.waiting(last_seat)).to_have_count(0)
        await expect(first.enrolled(last_seat)).to_have_count(0)
        print(
            f"promotion shown on the waiting student's page {seen_after * 1000:.0f} ms after Drop"
        )
        first.assert_only_home_reached()
        second.assert_only_home_reached()


async def test_a_cart_with_a_clash_and_one_over_the_credit_limit_says_both_in_words(
    api: Api, catalog: Catalog, worker: Worker, server: str, browser: Any
) -> None:
    semester = await catalog.semester()
    morning = await offered(api, catalog, semester, 10, [MON_9], credits=4)
    clashing = await offered(api, catalog, semester, 10, [MON_10], credits=1)
    too_many = await offered(api, catalog, semester, 10, [TUE_9], credits=4)
    (student,) = await catalog.students(1)
    await api.staff(SET_MAX, s=str(student.id), m=6.0)
    async with app_page(browser, server) as app:
        await app.sign_in(student)
        for section in (morning, clashing, too_many):
            await app.add_to_cart(section)
        await app.view("Cart")
        cart = app.page.locator(".cart")
        clash = cart.locator(f'[data-section-id="{clashing.id}"] [data-reason="TIME_CONFLICT"]')
        await expect(clash).to_contain_text("meets at the same time as another of your classes")
        await expect(clash).to_contain_text(f"Clashes with {morning.label}")
        over = cart.locator(f'[data-section-id="{too_many.id}"] [data-reason="CREDIT_LIMIT"]')
        await expect(over).to_contain_text("over your credit limit")
        await expect(app.page.locator(".credits")).to_contain_text("= 9 of 6 allowed")

        await app.register()
        await expect(app.outcome(morning)).to_contain_text("Enrolled.")
        await expect(app.outcome(clashing)).to_contain_text(
            "Refused: It meets at the same time as another of your classes."
        )
        await expect(app.outcome(too_many)).to_contain_text(
            "Refused: It would take you over your credit limit."
        )
        await app.view("My schedule")
        attempts = app.page.locator(".attempts")
        await expect(attempts).to_contain_text("meets at the same time")
        await expect(attempts).to_contain_text("over your credit limit")
        app.assert_only_home_reached()


async def test_an_offer_counts_down_decline_passes_it_on_and_claim_enrolls(
    api: Api, catalog: Catalog, worker: Worker, server: str, browser: Any
) -> None:
    semester = await catalog.semester()
    section = await offered(
        api, catalog, semester, 1, [TUE_9], credits=3, waitlistMode="OFFER", offerHours=1
    )
    holder, b, c = await catalog.students(3)
    assert await outcome(api, holder, section) == "ENROLLED"
    assert await outcome(api, b, section) == "WAITLISTED"
    assert await outcome(api, c, section) == "WAITLISTED"
    await worker.drain()
    async with app_page(browser, server) as first, app_page(browser, server) as second:
        for app, student, rank in ((first, b, "1"), (second, c, "2")):
            await app.sign_in(student)
            await app.view("My schedule")
            await expect(app.waiting(section).locator(".rank")).to_have_text(rank)

        await drop(api, holder, section)
        offer = first.waiting(section)
        await expect(offer).to_have_attribute("data-status", "OFFERED")
        countdown = offer.locator(".countdown")
        before = int(await countdown.get_attribute("data-seconds") or 0)
        assert 3500 < before <= 3600, before
        await expect(countdown).not_to_have_attribute("data-seconds", str(before), timeout=3000)
        after = int(await countdown.get_attribute("data-seconds") or 0)
        assert after < before, "the offer does not count down"

        await offer.get_by_role("button", name="Decline").click()
        await expect(first.waiting(section)).to_have_count(0)
        await expect(first.page.locator(".notices")).to_contain_text("You declined the seat")
        passed_on = second.waiting(section)
        await expect(passed_on).to_have_attribute("data-status", "OFFERED")
        await passed_on.get_by_role("button", name="Claim seat").click()
        await expect(second.enrolled(section)).to_be_visible()
        await expect(second.waiting(section)).to_have_count(0)
        await expect(second.page.locator(".notices")).to_contain_text("you are enrolled")
        first.assert_only_home_reached()
        second.assert_only_home_reached()


async def schedule_to_show(api: Api, catalog: Catalog, student: Any, semester: Any) -> list[Any]:
    """Enrolled in two sections with meetings, waitlisted in a third: every view has content."""
    sections = [
        await offered(api, catalog, semester, 30, [MON_9], credits=3),
        await offered(api, catalog, semester, 30, [TUE_9], credits=4),
        await offered(api, catalog, semester, 1, [FRI_14], credits=3),
    ]
    assert await outcome(api, await catalog.student(), sections[2]) == "ENROLLED"
    assert [await outcome(api, student, s) for s in sections] == [
        "ENROLLED",
        "ENROLLED",
        "WAITLISTED",
    ]
    return sections


@pytest.mark.parametrize(("size", "options"), [("375x812", PHONE), ("1280x800", DESKTOP)])
async def test_each_view_reads_at_its_size_with_no_serious_accessibility_violation(
    api: Api,
    catalog: Catalog,
    worker: Worker,
    server: str,
    browser: Any,
    size: str,
    options: dict[str, Any],
) -> None:
    semester = await catalog.semester()
    (student,) = await catalog.students(1)
    _, _, full = await schedule_to_show(api, catalog, student, semester)
    extra = await offered(api, catalog, semester, 12, [TUE_9], credits=3)
    await worker.drain()
    folder = artifacts()
    async with app_page(browser, server, **options) as app:
        page = app.page
        await page.goto(f"{server}/")
        await expect(page.get_by_role("heading", name="Sign in as a demo student")).to_be_visible()
        await check_view(page, folder / f"app-sign-in-{size}.png")
        await app.sign_in(student)
        await app.add_to_cart(extra)
        await app.page.get_by_label("Course code or title").fill("")
        for name, view in (
            ("find", "Find sections"),
            ("cart", "Cart"),
            ("schedule", "My schedule"),
        ):
            await app.view(view)
            if name == "schedule":
                await expect(app.waiting(full).locator(".rank")).to_have_text("1")
            await check_view(page, folder / f"app-{name}-{size}.png")
        app.assert_only_home_reached()
    print(f"screenshots of the sign-in, find, cart and schedule views at {size} in {folder}")


async def check_view(page: Any, shot: Path) -> None:
    await page.screenshot(path=shot, full_page=True)
    assert shot.stat().st_size > 0
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{shot.name}: the page scrolls sideways by {overflow} px"
    violations = await serious_accessibility_violations(page)
    assert violations == [], f"{shot.name}: {describe(violations)}"


async def test_keyboard_alone_finds_adds_and_registers_with_focus_visible(
    api: Api, catalog: Catalog, server: str, browser: Any
) -> None:
    semester = await catalog.semester()
    section = await offered(api, catalog, semester, 5, [MON_9], credits=3)
    (student,) = await catalog.students(1)
    async with app_page(browser, server) as app:
        page = app.page
        await app.sign_in(student)
        await page.get_by_label("Course code or title").focus()
        await page.keyboard.type(section.code)
        add = page.get_by_role("button", name=f"Add to cart: {section.label}")
        for _ in range(40):  # Tab from the search field to the section's button
            await page.keyboard.press("Tab")
            if await add.evaluate("b => b === document.activeElement"):
                break
        outline = await add.evaluate("b => getComputedStyle(b).outlineStyle")
        assert outline != "none", "the focused button shows no focus ring"
        await page.keyboard.press("Enter")
        remove = page.get_by_role("button", name=f"Remove from cart: {section.label}")
        await expect(remove).to_be_focused()
        cart = page.get_by_role("link", name="Cart (1)")
        await cart.focus()
        await page.keyboard.press("Enter")
        register = page.get_by_role("button", name="Register for 1 section")
        await register.focus()
        await page.keyboard.press("Enter")
        await expect(app.outcome(section)).to_contain_text("Enrolled.")
        app.assert_only_home_reached()


async def test_a_lost_network_is_said_in_words_and_try_again_registers_once(
    api: Api, catalog: Catalog, server: str, browser: Any
) -> None:
    semester = await catalog.semester()
    section = await offered(api, catalog, semester, 5, [MON_9], credits=3)
    (student,) = await catalog.students(1)
    async with app_page(browser, server) as app:
        page = app.page
        await app.sign_in(student)
        await app.add_to_cart(section)
        await app.view("Cart")
        await page.context.set_offline(True)
        await page.get_by_role("button", name="Register for 1 section").click()
        problem = page.get_by_role("alert")
        await expect(problem).to_contain_text("cannot be reached")
        await page.context.set_offline(False)
        await problem.get_by_role("button", name="Try again").click()
        await expect(app.outcome(section)).to_contain_text("Enrolled.")
        await expect(page.get_by_role("alert")).to_have_count(0)
    seats = await api.staff(
        "query($id: UUID!) { section(id: $id) { availableSeats } }", id=str(section.id)
    )
    assert seats["section"]["availableSeats"] == 4


async def test_a_staff_token_gets_a_notice_pointing_to_graphiql_and_the_dashboard(
    api: Api, server: str, browser: Any
) -> None:
    async with app_page(browser, server) as app:
        page = app.page
        await page.goto(f"{server}/")
        await page.get_by_label("Access token from your university sign-in").fill(api.token())
        await page.get_by_role("button", name="Sign in", exact=True).click()
        await expect(page.get_by_role("heading", name="This is a staff sign-in")).to_be_visible()
        await expect(page.get_by_role("link", name="GraphiQL")).to_have_attribute(
            "href", "/graphql"
        )
        await expect(page.get_by_role("link", name="live seat dashboard")).to_have_attribute(
            "href", "/dashboard"
        )
        app.assert_only_home_reached()


async def test_a_pasted_student_token_signs_in_and_the_cart_survives_a_reload(
    api: Api, catalog: Catalog, server: str, browser: Any
) -> None:
    semester = await catalog.semester()
    section = await offered(api, catalog, semester, 5, [MON_9], credits=3)
    (student,) = await catalog.students(1)
    async with app_page(browser, server) as app:
        page = app.page
        await page.goto(f"{server}/")
        field = page.get_by_label("Access token from your university sign-in")
        await field.fill(api.student_token(student.id))
        await page.get_by_role("button", name="Sign in", exact=True).click()
        await expect(page.locator(".top")).to_contain_text(student.student_number)
        await app.add_to_cart(section)
        await page.reload()
        await expect(page.get_by_role("link", name="Cart (1)")).to_be_visible()
        app.assert_only_home_reached()


async def test_two_thousand_sections_load_and_filter_fast(
    api: Api, catalog: Catalog, server: str, browser: Any
) -> None:
    semester = await catalog.semester()
    codes = await bulk_sections(api, semester, 2000)
    (student,) = await catalog.students(1)
    async with app_page(browser, server) as app:
        page = app.page
        await page.goto(f"{server}/")
        started = time.monotonic()
        await page.get_by_role("button", name=re.compile(student.student_number)).click()
        count = page.locator(".count")
        await expect(count).to_have_text("2000 of 2000 sections", timeout=20_000)
        loaded = time.monotonic() - started
        await expect(page.locator(".results > li")).to_have_count(20)

        started = time.monotonic()
        await page.get_by_label("Course code or title").fill(codes[123])
        await expect(count).to_have_text("5 of 2000 sections")
        searched = time.monotonic() - started
        await page.get_by_label("Course code or title").fill("topic 1")
        await expect(page.locator(".pager")).to_contain_text("Page 1 of")
        await page.get_by_role("button", name="Next").click()
        await expect(page.locator(".pager")).to_contain_text("Page 2 of")
        app.assert_only_home_reached()
    print(
        f"2,000 sections: signed in to all listed {loaded:.2f} s, a search shown {searched:.3f} s"
    )
    # A guard against a regression by an order of magnitude (3.6-5.8 s alone, up to 8.5 s
    # with the rest of the suite beside it on 2 cores), not a measurement.
    assert loaded < 15, f"2,000 sections took {loaded:.1f} s to list"
    assert searched < 1, f"a search took {searched:.2f} s to show"


async def test_the_live_feeds_reconnect_by_themselves_and_catch_up(
    api: Api, catalog: Catalog, server: str, browser: Any
) -> None:
    semester = await catalog.semester()
    section = await offered(api, catalog, semester, 5, [MON_9], credits=3)
    student, other = await catalog.students(2)
    sockets: list[Any] = []

    def through(ws: Any) -> None:  # passes the page's websockets on, to cut them later
        ws.connect_to_server()
        sockets.append(ws)

    async with app_page(browser, server) as app:
        page = app.page
        await page.context.route_web_socket(re.compile(r"/graphql$"), through)
        await app.sign_in(student)
        await page.get_by_label("Course code or title").fill(section.code)
        status = page.locator(".live-status")
        await expect(status).to_have_attribute("data-status", "live")
        taken = page.locator(f'.results [data-section-id="{section.id}"] .taken')
        await expect(taken).to_have_text("0")

        await sockets[0].close(code=1012, reason="service restart")
        assert await outcome(api, other, section) == "ENROLLED"  # while the page is cut off
        await expect(taken).to_have_text("1", timeout=10_000)
        await expect(status).to_have_attribute("data-status", "live")
        assert len(sockets) == 2, "the page did not open a new connection"
        app.assert_only_home_reached()

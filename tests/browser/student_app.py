"""Driving the student app (/) in the browser tests: a catalog with meetings and credits made
through the staff API, a student signed in through the demo picker, and the page's views."""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.async_api import expect

from tests.browser.pages import OfflinePage, offline_page
from tests.conftest import Api, Catalog

SECTION_RULES = """mutation($s: UUID!, $i: SectionRulesInput!) {
  setSectionRules(sectionId: $s, input: $i) { id } }"""
COURSE_RULES = """mutation($c: UUID!, $cr: Float) { setCourseRules(courseId: $c, credits: $cr) {
  id } }"""
SET_MAX = """mutation($s: UUID!, $m: Float!) { setMaxCredits(studentId: $s, maxCredits: $m) {
  id } }"""

PHONE = {"viewport": {"width": 375, "height": 812}, "device_scale_factor": 2, "is_mobile": True}
DESKTOP = {"viewport": {"width": 1280, "height": 800}}
AXE = Path(__file__).parent / "vendor"


def artifacts() -> Path:
    """Where screenshots are kept: BROWSER_ARTIFACTS, else tests/browser/artifacts/
    (git-ignored), else a temporary folder; printed by the tests that write there."""
    chosen = os.environ.get("BROWSER_ARTIFACTS") or str(Path(__file__).parent / "artifacts")
    try:
        Path(chosen).mkdir(parents=True, exist_ok=True)
    except OSError:
        chosen = tempfile.mkdtemp(prefix="coursereg-browser-")
    return Path(chosen)


@dataclass
class Offered:
    """A section made for a test, with what the page shows of it."""

    id: Any
    code: str
    number: str

    @property
    def label(self) -> str:
        return f"{self.code} §{self.number}"


async def offered(
    api: Api,
    catalog: Catalog,
    semester: Any,
    seats: int,
    meetings: list[dict[str, Any]] | None = None,
    credits: float | None = None,
    **rules: Any,
) -> Offered:
    course = await catalog.course()
    section = await catalog.section(seats, semester, course)
    if credits is not None:
        await api.staff(COURSE_RULES, c=str(course.id), cr=credits)
    if meetings is not None or rules:
        await api.staff(SECTION_RULES, s=str(section.id), i={"meetings": meetings or [], **rules})
    return Offered(section.id, course.code, section.section_number)


@dataclass
class AppPage:
    """One student's page: a browser context of its own, cut off from every other host."""

    offline: OfflinePage
    base: str

    @property
    def page(self) -> Any:
        return self.offline.page

    async def sign_in(self, student: Any) -> None:
        page = self.page
        await page.goto(f"{self.base}/")
        picker = page.get_by_role("button", name=re.compile(re.escape(student.student_number)))
        await picker.click()
        await expect(page.locator(".top")).to_contain_text(student.student_number)
        await expect(page.locator(".count")).to_contain_text(re.compile(r"^\d+ of \d+ sections$"))

    async def view(self, name: str) -> None:
        await self.page.get_by_role("link", name=re.compile(f"^{name}")).click()

    async def add_to_cart(self, section: Offered) -> None:
        await self.view("Find sections")
        await self.page.get_by_label("Course code or title").fill(section.code)
        await self.page.get_by_role("button", name=f"Add to cart: {section.label}").click()

    async def register(self) -> Any:
        """Register the cart; the outcomes shown, one list item per section."""
        await self.view("Cart")
        await self.page.get_by_role("button", name=re.compile("^Register for")).click()
        outcomes = self.page.locator(".outcomes li")
        await expect(outcomes.first).to_be_visible()
        return outcomes

    def outcome(self, section: Offered) -> Any:
        return self.page.locator(f'.outcomes li[data-section-id="{section.id}"]')

    def enrolled(self, section: Offered) -> Any:
        return self.page.locator(f'.enrolled li[data-section-id="{section.id}"]')

    def waiting(self, section: Offered) -> Any:
        return self.page.locator(f'.waitlist li[data-section-id="{section.id}"]')

    def assert_only_home_reached(self) -> None:
        assert self.offline.outside == [], f"asked other hosts: {self.offline.outside}"
        assert self.offline.console_errors == [], self.offline.console_errors


@contextlib.asynccontextmanager
async def app_page(browser: Any, base: str, **options: Any) -> AsyncIterator[AppPage]:
    async with offline_page(browser, base, **options) as offline:
        yield AppPage(offline, base)


async def serious_accessibility_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations of WCAG 2.x A/AA on the page as it is."""
    await page.add_script_tag(path=str(next(AXE.glob("axe-core@*/axe.min.js"))))
    result = await page.evaluate(
        """async () => {
          const found = await axe.run(document, {
            runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
          });
          return found.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map(n => n.target.join(" ")).slice(0, 5)}));
        }"""
    )
    return [v for v in result if v["impact"] in ("serious", "critical")]


def describe(violations: list[dict[str, Any]]) -> str:
    return json.dumps(violations, indent=2)


async def bulk_sections(api: Api, semester: Any, count: int, per_course: int = 5) -> list[str]:
    """`count` sections of `semester` (`per_course` to a course) written in bulk, then loaded
    into Redis as the demo seed does (infrastructure/cli/demo_catalog.py): one at a time
    through the staff API would take most of a minute. Returns the course codes."""
    from sqlalchemy import insert

    from infrastructure.postgres.catalog import load_setups
    from infrastructure.postgres.database import unit_of_work
    from infrastructure.postgres.models import CourseRow, SectionRow

    courses: list[dict[str, Any]] = [
        {"course_id": uuid.uuid4(), "course_code": f"B{n:05d}", "course_name": f"Topic {n}"}
        for n in range(count // per_course)
    ]
    sections = [
        {
            "section_id": uuid.uuid4(),
            "course_id": course["course_id"],
            "semester_id": semester.id,
            "section_number": f"{k + 1:03d}",
            "total_seats": 30,
        }
        for course in courses
        for k in range(per_course)
    ]
    async with unit_of_work(api.container.sessions) as session:
        await session.execute(insert(CourseRow), courses)
        await session.execute(insert(SectionRow), sections)
    ids = [s["section_id"] for s in sections]
    async with unit_of_work(api.container.sessions) as session:
        setups = await load_setups(session, SectionRow.section_id.in_(ids))
    await api.container.state.load(setups)
    return [c["course_code"] for c in courses]

"""`coursereg seed-demo`: load the demo catalog (demo_catalog.py) once and print a staff
token and the URLs to open."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from infrastructure.cli.command import EXIT_OK, Command, progress_bar, with_container
from infrastructure.settings import Settings

if TYPE_CHECKING:  # imported when a command runs: `coursereg --help` stays quick
    from infrastructure.cli.demo_catalog import DemoCatalog
    from infrastructure.container import Container


def demo_urls(settings: Settings, semester: object) -> list[str]:
    base = f"http://{settings.host}:{settings.port}"
    return [
        f"GraphiQL:  {base}/graphql",
        f"dashboard: {base}/dashboard?semester={semester}",
        f"student app (sign in as a demo student with COURSEREG_DEMO_LOGIN=true): {base}/",
    ]


def seed(settings: Settings) -> DemoCatalog:
    from infrastructure.cli.demo_catalog import seed_demo, total_steps

    async def work(container: Container) -> DemoCatalog:
        with progress_bar("seeding the demo catalog", "row", total_steps()) as bar:
            return await seed_demo(container, bar.update)

    return with_container(settings, work)


def describe_demo(settings: Settings, demo: DemoCatalog) -> list[str]:
    from domain.model import Role
    from infrastructure.auth import TokenService

    done = "seeded" if demo.seeded else "already there"
    lines = [
        f"demo catalog {done}: {demo.courses} courses, {demo.sections} sections, "
        f"{demo.students} students in semester {demo.semester_id}",
        "staff token (paste as Authorization: Bearer <token> in GraphiQL's Headers):",
        "  " + TokenService(settings.jwt_secret).issue(Role.STAFF, "demo-staff", 8 * 3600),
    ]
    if demo.sample_student is not None:
        lines.append(f"a student to act as: {demo.sample_student}")
    return [*lines, *demo_urls(settings, demo.semester_id)]


def cmd_seed_demo(args: argparse.Namespace, settings: Settings) -> int:
    print("\n".join(describe_demo(settings, seed(settings))))
    return EXIT_OK


SEED_DEMO = Command(
    "seed-demo",
    "load a demo catalog: 1 open semester, 50 courses, 200 sections, 5,000 students",
    cmd_seed_demo,
    description="Load the demo catalog once (a second run changes nothing) and print a "
    "staff token and the URLs to open.",
)

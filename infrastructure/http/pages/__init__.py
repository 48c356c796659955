"""Browser pages the app serves: the student app at /, the live seat dashboard, and GraphiQL
with its assets."""

from __future__ import annotations

from pathlib import Path

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from infrastructure.http.pages.dashboard import dashboard
from infrastructure.http.pages.student_app import student_app

STATIC = Path(__file__).parent / "static"


def routes() -> list[BaseRoute]:
    return [
        Route("/", student_app, methods=["GET"]),
        Route("/dashboard", dashboard, methods=["GET"]),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]

"""Browser pages the app serves: the student app at / (with its sign-in config and callback),
the live seat dashboard, and GraphiQL with its assets."""

from __future__ import annotations

from pathlib import Path

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from infrastructure.http.pages import student_app
from infrastructure.http.pages.dashboard import dashboard
from infrastructure.settings import Settings

STATIC = Path(__file__).parent / "static"


def routes(settings: Settings) -> list[BaseRoute]:
    return [
        *student_app.routes(settings),
        Route("/dashboard", dashboard, methods=["GET"]),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]

"""GET /: the student web app, a static page (static/app/index.html) whose modules and
vendored libraries are served under /static/app/; it talks to /graphql like any client."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse

PAGE = Path(__file__).parent / "static" / "app" / "index.html"


async def student_app(request: Request) -> FileResponse:
    return FileResponse(PAGE, media_type="text/html; charset=utf-8")

"""GET /dashboard: the live seat dashboard, a static page; its script reads ?semester=."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse

PAGE = Path(__file__).parent / "static" / "dashboard.html"


async def dashboard(request: Request) -> FileResponse:
    return FileResponse(PAGE, media_type="text/html; charset=utf-8")

"""GET /: the student web app, a static page (static/app/index.html) whose modules and
vendored libraries are served under /static/app/; it talks to /graphql like any client.

GET /app/config.json tells the page how students sign in: through the university's OpenID
provider when COURSEREG_OIDC_ISSUER is set ({"oidc": {issuer, clientId, scopes}}), else
{"oidc": null} and the page offers the token field (and the demo picker when it is on).
/app/callback is the page again: the provider sends the browser back there with the
authorization code (the redirect URI to register for the app's client is this origin's
/app/callback; after sign-out the provider sends it to /)."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from infrastructure.settings import Settings

PAGE = Path(__file__).parent / "static" / "app" / "index.html"
CALLBACK = "/app/callback"


async def student_app(request: Request) -> FileResponse:
    return FileResponse(PAGE, media_type="text/html; charset=utf-8")


def sign_in_config(settings: Settings) -> dict[str, object]:
    if not settings.oidc_issuer:
        return {"oidc": None}
    return {
        "oidc": {
            "issuer": settings.oidc_issuer,
            "clientId": settings.oidc_client_id,
            "scopes": settings.oidc_scopes,
        }
    }


def routes(settings: Settings) -> list[BaseRoute]:
    config = sign_in_config(settings)

    async def app_config(request: Request) -> Response:
        # Read on every page load; no-cache so a changed setting reaches pages at once.
        return JSONResponse(config, headers={"Cache-Control": "no-cache"})

    return [
        Route("/", student_app, methods=["GET"]),
        Route(CALLBACK, student_app, methods=["GET"]),
        Route("/app/config.json", app_config, methods=["GET"]),
    ]

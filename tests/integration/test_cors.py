"""CORS for frontends on other origins (COURSEREG_CORS_ORIGINS): a listed origin's preflight
is answered (Authorization and Content-Type allowed, no credentials) and its responses carry
Access-Control-Allow-Origin; any other origin gets none. Websockets, to which a browser
applies no CORS, check Origin themselves: listed, same-origin or absent is let in, anything
else refused with 403. The browser's side of it: tests/browser/test_cors.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import websockets

from infrastructure.settings import Settings
from tests.conftest import Api, forget_keys, running_app
from tests.servers import serve, ws_url
from tests.wsclient import GqlSocket

FRONTEND = "http://app.example.edu:5173"
OTHER = "http://evil.example.com"
PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type",
}
QUERY = {"query": "{ __typename }"}


@pytest.fixture
async def cors_api(settings: Settings) -> AsyncIterator[Api]:
    async with running_app(settings.model_copy(update={"cors_origins": (FRONTEND,)})) as api:
        yield api
        await forget_keys(api.container)


async def test_a_listed_origins_preflight_is_answered(cors_api: Api) -> None:
    response = await cors_api.client.options("/graphql", headers={"Origin": FRONTEND, **PREFLIGHT})
    assert response.status_code == 200
    headers = response.headers
    assert headers["access-control-allow-origin"] == FRONTEND
    assert {m.strip() for m in headers["access-control-allow-methods"].split(",")} == {
        "GET",
        "POST",
        "OPTIONS",
    }
    allowed = {h.strip().lower() for h in headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type"} <= allowed
    assert "access-control-allow-credentials" not in headers
    assert int(headers["access-control-max-age"]) > 0


async def test_another_origins_preflight_is_refused(cors_api: Api) -> None:
    response = await cors_api.client.options("/graphql", headers={"Origin": OTHER, **PREFLIGHT})
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


async def test_a_listed_origins_request_is_answered_with_cors_headers(cors_api: Api) -> None:
    response = await cors_api.client.post("/graphql", json=QUERY, headers={"Origin": FRONTEND})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == FRONTEND
    exposed = response.headers["access-control-expose-headers"].lower()
    assert "x-request-id" in exposed and "retry-after" in exposed
    assert "access-control-allow-credentials" not in response.headers


async def test_another_origins_request_gets_no_cors_headers(cors_api: Api) -> None:
    response = await cors_api.client.post("/graphql", json=QUERY, headers={"Origin": OTHER})
    assert "access-control-allow-origin" not in response.headers


async def test_a_refusal_by_a_limit_still_reaches_the_page(cors_api: Api) -> None:
    body = {"query": "{ __typename }", "pad": "x" * 2_000_000}
    response = await cors_api.client.post("/graphql", json=body, headers={"Origin": FRONTEND})
    assert response.status_code == 413
    assert response.headers["access-control-allow-origin"] == FRONTEND


async def test_no_origin_is_allowed_by_default(api: Api) -> None:
    preflight = await api.client.options("/graphql", headers={"Origin": FRONTEND, **PREFLIGHT})
    assert "access-control-allow-origin" not in preflight.headers
    answer = await api.client.post("/graphql", json=QUERY, headers={"Origin": FRONTEND})
    assert "access-control-allow-origin" not in answer.headers


@pytest.mark.parametrize(
    "origin", [FRONTEND, None, "same"], ids=["listed", "no-origin", "same-origin"]
)
async def test_a_websocket_from_a_listed_same_or_no_origin_is_let_in(
    cors_api: Api, origin: str | None
) -> None:
    async with serve(cors_api.app) as url:
        sent = url if origin == "same" else origin
        connect: dict[str, Any] = {"origin": sent} if sent else {}
        async with GqlSocket.open(ws_url(url), **connect) as socket:
            assert socket.closed is None


async def refused_status(app: Any) -> int:
    async with serve(app) as url:
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with GqlSocket.open(ws_url(url), origin=OTHER):
                pass
    return refused.value.response.status_code


async def test_a_websocket_from_an_unlisted_origin_is_refused(cors_api: Api) -> None:
    assert await refused_status(cors_api.app) == 403


async def test_a_websocket_from_another_origin_is_refused_by_default(api: Api) -> None:
    assert await refused_status(api.app) == 403

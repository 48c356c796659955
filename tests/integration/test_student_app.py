"""The student app is served at / with every module it imports, each matching the hash of the
page's import map; the demo sign-in exists only with COURSEREG_DEMO_LOGIN=true; the page
learns from /app/config.json whether students sign in through an OpenID provider."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import AsyncIterator

import pytest

from domain.model import Role
from infrastructure.settings import Settings
from tests.conftest import Api, Catalog, running_app

ME = "query Me { me { id firstName } }"


@pytest.fixture
async def demo_api(api: Api, settings: Settings) -> AsyncIterator[Api]:
    """A second app on the same database and key prefix as `api`, with demo login on."""
    async with running_app(settings.model_copy(update={"demo_login": True})) as demo:
        yield demo


async def test_the_app_page_and_its_modules_are_served_with_their_hashes(api: Api) -> None:
    page = await api.client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert re.findall(r"https?://", page.text) == [], "the page names another host"
    import_map = json.loads(re.findall(r'importmap">(.*?)</script>', page.text, re.DOTALL)[0])
    assert import_map["integrity"]
    for url, integrity in import_map["integrity"].items():
        response = await api.client.get(url)
        assert response.status_code == 200, url
        assert response.headers["content-type"].startswith("text/javascript"), url
        digest = hashlib.sha384(response.content).digest()
        assert integrity == "sha384-" + base64.b64encode(digest).decode(), url
    for own in ("app.js", "api.js", "words.js", "operations.js", "app.css"):
        assert (await api.client.get(f"/static/app/{own}")).status_code == 200, own


async def test_demo_login_is_not_there_by_default(api: Api, catalog: Catalog) -> None:
    student = await catalog.student()
    assert (await api.client.get("/demo/students")).status_code == 404
    asked = await api.client.post("/demo/token", json={"studentId": str(student.id)})
    assert asked.status_code == 404


async def test_demo_login_lists_active_students_and_mints_a_working_token(
    demo_api: Api, api: Api, catalog: Catalog
) -> None:
    active, suspended = await catalog.students(2)
    await api.staff(
        'mutation($s: UUID!) { setStudentStatus(studentId: $s, enrollmentStatus: "suspended") '
        "{ id } }",
        s=str(suspended.id),
    )
    listed = (await demo_api.client.get("/demo/students")).json()["students"]
    assert [s["id"] for s in listed] == [str(active.id)]
    assert listed[0]["name"] == "Ada Lovelace"

    minted = await demo_api.client.post("/demo/token", json={"studentId": str(active.id)})
    assert minted.status_code == 200
    token = minted.json()["token"]
    actor = demo_api.container.tokens.actor(f"Bearer {token}")
    assert actor is not None and actor.role is Role.STUDENT
    body = await demo_api.gql(ME, token)
    assert body["data"]["me"]["id"] == str(active.id)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"studentId": "00000000-0000-0000-0000-000000000000"}, 404, "NOT_FOUND"),
        ({"studentId": "not-a-uuid"}, 400, "BAD_USER_INPUT"),
        ({}, 400, "BAD_USER_INPUT"),
        ([1, 2], 400, "BAD_USER_INPUT"),
    ],
)
async def test_demo_login_refuses_what_is_not_a_student_with_a_code(
    demo_api: Api, body: object, status: int, code: str
) -> None:
    answer = await demo_api.client.post("/demo/token", json=body)
    assert answer.status_code == status
    assert answer.json()["errors"][0]["extensions"]["code"] == code


async def test_demo_login_refuses_a_body_that_is_not_json(demo_api: Api) -> None:
    answer = await demo_api.client.post("/demo/token", content=b"\xff{")
    assert answer.status_code == 400


async def test_without_oidc_the_app_config_names_no_provider(api: Api) -> None:
    answer = await api.client.get("/app/config.json")
    assert answer.status_code == 200
    assert answer.json() == {"oidc": None}
    assert answer.headers["cache-control"] == "no-cache"


async def test_with_oidc_the_app_config_names_the_provider_and_the_callback_is_the_page(
    api: Api, settings: Settings
) -> None:
    oidc = settings.model_copy(
        update={
            "oidc_issuer": "https://login.example.edu/realms/students",
            "oidc_audience": "urn:coursereg:api",
            "oidc_scopes": "openid profile offline_access",
        }
    )
    async with running_app(oidc) as app:
        answer = await app.client.get("/app/config.json")
        callback = await app.client.get("/app/callback?code=abc&state=xyz")
    assert answer.json() == {
        "oidc": {
            "issuer": "https://login.example.edu/realms/students",
            "clientId": "coursereg-app",
            "scopes": "openid profile offline_access",
        }
    }
    assert callback.status_code == 200
    assert callback.text == (await api.client.get("/")).text

"""GraphQL over HTTP (the draft spec), one test per MUST or SHOULD that applies; the table in
docs/graphql-over-http.md names each. `application/graphql-response+json` gets the draft's
status codes; a request that accepts only `application/json`, wildcards, or sends no Accept
keeps the contract's behaviour (200 once the document reaches execution)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from tests.client import REGISTER, register_input
from tests.conftest import Api, Catalog

GR = "application/graphql-response+json"
JSON = "application/json"
BOTH = f"{GR}, {JSON};q=0.9"  # what the draft tells a client to send
TYPENAME = {"query": "{ __typename }"}


async def post(api: Api, body: Any, accept: str | None = GR, **headers: str) -> httpx.Response:
    if accept is not None:
        headers["Accept"] = accept
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers.setdefault("Content-Type", JSON)
    return await api.client.post("/graphql", content=content, headers=headers)


def media(response: httpx.Response) -> str:
    return response.headers["content-type"].split(";")[0].strip()


# Media types, Accept and the response's Content-Type


@pytest.mark.parametrize("accept", [GR, BOTH, f"*/*, {GR}", f"{JSON};q=0.5, {GR}"])
async def test_a_client_naming_graphql_response_json_first_gets_it(api: Api, accept: str) -> None:
    response = await post(api, TYPENAME, accept)
    assert response.status_code == 200
    assert media(response) == GR
    assert response.json() == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize(
    "accept", [JSON, None, "*/*", "application/*", f"{JSON}, {GR};q=0.5", "text/html, */*;q=0.8"]
)
async def test_json_wildcards_and_no_accept_get_application_json(
    api: Api, accept: str | None
) -> None:
    response = await post(api, TYPENAME, accept)
    assert response.status_code == 200
    assert response.headers["content-type"] == JSON  # exactly as before this negotiation
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_the_graphql_response_media_type_names_its_encoding(api: Api) -> None:
    response = await post(api, TYPENAME, GR)
    assert response.headers["content-type"] == f"{GR}; charset=utf-8"


@pytest.mark.parametrize("accept", ["text/plain", "text/html", f"{GR};q=0, {JSON};q=0"])
async def test_an_accept_allowing_neither_media_type_is_406(api: Api, accept: str) -> None:
    response = await post(api, TYPENAME, accept)
    assert response.status_code == 406
    assert media(response) == "text/plain"  # not a GraphQL response: not graphql-response+json


async def test_graphiql_is_still_served_to_a_browser_asking_for_html(api: Api) -> None:
    response = await api.client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200 and media(response) == "text/html"


async def test_an_accept_header_that_does_not_parse_counts_as_absent(api: Api) -> None:
    response = await post(api, TYPENAME, "garbage")
    assert response.status_code == 200 and response.headers["content-type"] == JSON


# Requests: POST, GET, encodings, parameters


@pytest.mark.parametrize("accept", [GR, JSON])
async def test_utf8_is_assumed_without_a_charset(api: Api, accept: str) -> None:
    body = '{"query": "{ __typename } # café ☕"}'.encode()
    response = await post(api, body, accept)  # Content-Type: application/json, no charset
    assert response.status_code == 200
    assert json.loads(response.content.decode("utf-8")) == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize("accept", [GR, JSON])
async def test_null_optional_parameters_are_as_good_as_none(api: Api, accept: str) -> None:
    body = {"query": "{ __typename }", "variables": None, "operationName": None, "extensions": None}
    response = await post(api, body, accept)
    assert response.status_code == 200 and response.json() == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize("accept", [GR, JSON])
async def test_properties_the_server_does_not_know_are_ignored(api: Api, accept: str) -> None:
    response = await post(api, {**TYPENAME, "documentIdx": "x", "foo": [1]}, accept)
    assert response.status_code == 200 and response.json() == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize("accept", [GR, JSON])
async def test_a_get_request_carries_its_parameters_in_the_url(api: Api, accept: str) -> None:
    params = {
        "query": "query Q($x: Boolean!) { __typename @include(if: $x) }",
        "variables": json.dumps({"x": True}),
        "operationName": "Q",
    }
    response = await api.client.get("/graphql", params=params, headers={"Accept": accept})
    assert response.status_code == 200 and media(response) == accept
    assert response.json() == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize("accept", [GR, JSON])
async def test_empty_optional_get_parameters_are_as_good_as_none(api: Api, accept: str) -> None:
    params = {"query": "{ __typename }", "variables": "", "operationName": "", "extensions": ""}
    response = await api.client.get("/graphql", params=params, headers={"Accept": accept})
    assert response.status_code == 200 and response.json() == {"data": {"__typename": "Query"}}


async def test_a_mutation_over_get_is_405_and_not_executed(api: Api, catalog: Catalog) -> None:
    section = await catalog.section(seats=1)
    student = await catalog.student()
    params = {
        "query": REGISTER,
        "variables": json.dumps({"i": register_input(student.id, [section.id])}),
    }
    token = {"Authorization": f"Bearer {api.student_token(student.id)}"}
    spec = await api.client.get("/graphql", params=params, headers={"Accept": GR, **token})
    assert spec.status_code == 405 and spec.headers["allow"] == "POST"
    assert media(spec) == GR and "data" not in spec.json()
    legacy = await api.client.get("/graphql", params=params, headers={"Accept": JSON, **token})
    assert legacy.status_code == 400  # as before: a 4xx, which the draft requires of both
    seats = await api.staff(
        "query($id: UUID!) { section(id: $id) { availableSeats } }", id=str(section.id)
    )
    assert seats["section"]["availableSeats"] == 1, "the mutation ran"


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "HEAD"])
async def test_an_unsupported_method_is_405_with_allow(api: Api, method: str) -> None:
    response = await api.client.request(method, "/graphql", headers={"Accept": GR})
    assert response.status_code == 405
    assert {m.strip() for m in response.headers["allow"].split(",")} >= {"GET", "POST"}


@pytest.mark.parametrize(("accept", "status"), [(GR, 415), (JSON, 400)])
async def test_a_post_without_a_json_content_type_is_refused(
    api: Api, accept: str, status: int
) -> None:
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = {"Accept": accept, **({"Content-Type": content_type} if content_type else {})}
        response = await api.client.post(
            "/graphql", content=b'{"query": "{ __typename }"}', headers=headers
        )
        assert response.status_code == status, content_type


async def test_a_body_over_the_limit_is_413(api: Api) -> None:
    response = await post(api, {"query": "{ __typename }", "pad": "x" * 2_000_000}, GR)
    assert response.status_code == 413


# Status codes of application/graphql-response+json, against application/json's


def request_error(response: httpx.Response) -> dict[str, Any]:
    """A request error in graphql-response+json: no data, coded errors."""
    assert media(response) == GR
    body = response.json()
    assert "data" not in body, body
    assert body["errors"] and all(e["extensions"]["code"] for e in body["errors"])
    return body


@pytest.mark.parametrize("body", [b"NONSENSE", b'{"query":', b"", b"[" * 100_000])
async def test_a_body_that_is_not_json_is_400(api: Api, body: bytes) -> None:
    response = await post(api, body, GR)
    assert response.status_code == 400
    request_error(response)
    legacy = await post(api, body, JSON)
    assert legacy.status_code == 400 and media(legacy) == "text/plain"  # as before


@pytest.mark.parametrize(
    "body",
    [
        {"qeury": "{ __typename }"},
        {"query": {"obj": "ect"}},
        {"query": 7},
        {"query": ["{ __typename }"]},
        {"query": "{ __typename }", "variables": [7]},
        {"query": "{ __typename }", "variables": "{}"},
        {"query": "{ __typename }", "extensions": 1},
        [TYPENAME],
        "{ __typename }",
    ],
)
async def test_a_request_that_is_not_well_formed_is_400(api: Api, body: Any) -> None:
    response = await post(api, body, GR)
    assert response.status_code == 400
    request_error(response)
    legacy = await post(api, body, JSON)
    assert legacy.status_code == 400  # as before


async def test_a_document_that_does_not_parse_is_400(api: Api) -> None:
    response = await post(api, {"query": "{"}, GR)
    assert response.status_code == 400
    assert request_error(response)["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    legacy = await post(api, {"query": "{"}, JSON)
    assert legacy.status_code == 200 and legacy.json()["data"] is None  # the contract's


async def test_a_document_that_does_not_validate_is_400(api: Api) -> None:
    body = {"query": "{ noSuchField }"}
    response = await post(api, body, GR)
    assert response.status_code == 400
    assert "noSuchField" in request_error(response)["errors"][0]["message"]
    legacy = await post(api, body, JSON)
    assert legacy.status_code == 200 and legacy.json()["data"] is None


async def test_an_operation_that_cannot_be_determined_is_400(api: Api) -> None:
    """An operationName the document lacks. (Two operations and no name: Strawberry runs the
    first, a gap docs/graphql-over-http.md names.)"""
    body = {"query": "query A { __typename }", "operationName": "B"}
    response = await post(api, body, GR)
    assert response.status_code == 400
    request_error(response)
    legacy = await post(api, body, JSON)
    assert legacy.status_code == 400  # as before


@pytest.mark.parametrize(
    "variables", [{}, {"id": "not-a-uuid"}, {"id": 7}, {"id": None}, {"id": ["a"]}]
)
async def test_variables_that_fail_coercion_are_400(api: Api, variables: Any) -> None:
    body = {"query": "query($id: UUID!) { section(id: $id) { id } }", "variables": variables}
    response = await post(api, body, GR)
    assert response.status_code == 400
    request_error(response)
    legacy = await post(api, body, JSON)
    assert legacy.status_code == 200 and legacy.json()["data"] is None  # the contract's


async def test_data_without_errors_is_200(api: Api, catalog: Catalog) -> None:
    section = await catalog.section(seats=3)
    body = {"query": "query($id: UUID!) { section(id: $id) { totalSeats } }"}
    response = await post(api, {**body, "variables": {"id": str(section.id)}}, GR)
    assert response.status_code == 200
    assert response.json() == {"data": {"section": {"totalSeats": 3}}}


async def test_execution_that_began_is_2xx_even_with_errors(api: Api) -> None:
    """Field errors (here: `me` without a token) leave data: the draft requires 2xx. Its rule
    says 294 and its own example 200; this server answers 200 (docs/graphql-over-http.md)."""
    response = await post(api, {"query": "{ me { id } }"}, GR)
    assert response.status_code == 200 and media(response) == GR
    body = response.json()
    assert "data" in body and body["errors"][0]["path"] == ["me"]


async def test_a_mutation_refused_during_execution_is_2xx_with_null_data(api: Api) -> None:
    """No token: register's resolver refuses (UNAUTHENTICATED) once execution began."""
    variables = {"i": register_input(uuid.uuid4(), [uuid.uuid4()])}
    response = await post(api, {"query": REGISTER, "variables": variables}, GR)
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None and body["errors"][0]["path"] == ["register"]
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_two_operations_and_no_name_is_a_request_error(api: Api) -> None:
    """The GraphQL spec's GetOperation: several operations and no operationName is an error."""
    body = {"query": "query A { __typename } query B { __typename }"}
    response = await post(api, body, GR)
    assert response.status_code == 400, response.text
    request_error(response)

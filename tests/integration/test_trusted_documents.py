"""Trusted documents (persisted operations) through the real app: the student app's
operations run by id (`documentId`, GET or POST) and by Apollo's persistedQuery hash, with or
without their text; an unknown id or a text that is not its id's is a coded error; with
COURSEREG_TRUSTED_DOCUMENTS=students a student or anonymous caller runs only listed
documents while staff run anything; the same over graphql-transport-ws."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from infrastructure.http.documents import operations
from tests.client import REGISTER, register_input
from tests.conftest import Api, Catalog
from tests.servers import serve, ws_url
from tests.wsclient import SEAT_UPDATES, GqlSocket

# The app's operations as the committed manifest lists them (tests/unit/test_documents.py
# checks the manifest is built from these files).
DOCUMENTS = operations(Path(__file__).resolve().parents[2] / "webapp" / "operations")
UNLISTED = "query Unlisted { sections(first: 1) { totalCount } }"


def hex_of(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def id_of(name: str) -> str:
    return "sha256:" + hex_of(DOCUMENTS[name])


def apollo(digest: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


async def post(api: Api, body: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await api.client.post("/graphql", json=body, headers=headers)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def code(answer: dict[str, Any]) -> str:
    assert answer.get("data") is None, answer
    (error,) = answer["errors"]
    return str(error["extensions"]["code"])


async def available(api: Api, section: Any) -> int:
    query = "query($id: UUID!) { section(id: $id) { availableSeats } }"
    data = await api.staff(query, id=str(section))
    return int(data["section"]["availableSeats"])


async def test_a_listed_document_runs_by_its_id_over_post_and_get(
    api: Api, catalog: Catalog
) -> None:
    section = await catalog.section(seats=2)
    student = await catalog.student()
    token = api.student_token(student.id)
    variables = {"input": register_input(student.id, [section.id])}
    answer = await post(api, {"documentId": id_of("Register"), "variables": variables}, token)
    assert answer["data"]["register"]["results"][0]["outcome"] == "ENROLLED", answer

    params = {
        "documentId": id_of("DashboardSections"),
        "variables": json.dumps({"filter": {"semesterId": str(section.semester_id)}}),
        "operationName": "DashboardSections",
    }
    response = await api.client.get("/graphql", params=params)
    assert response.status_code == 200, response.text
    (edge,) = response.json()["data"]["sections"]["edges"]
    assert edge["node"]["availableSeats"] == 1


async def test_apollo_hashes_run_listed_documents_and_learn_others_sent_with_their_text(
    api: Api, catalog: Catalog
) -> None:
    section = await catalog.section(seats=3)
    by_hash = {
        "extensions": apollo(hex_of(DOCUMENTS["DashboardSections"])),
        "variables": {"first": 1},
    }
    assert (await post(api, by_hash))["data"]["sections"]["totalCount"] >= 1

    unknown = {"extensions": apollo(hex_of(UNLISTED))}
    answer = await post(api, unknown)
    assert code(answer) == "PERSISTED_QUERY_NOT_FOUND"
    assert answer["errors"][0]["message"] == "PersistedQueryNotFound"  # what Apollo matches
    # As an Apollo client does next: the same hash with the text, then the hash alone again.
    assert "errors" not in await post(api, {**unknown, "query": UNLISTED})
    learned = await post(api, unknown)
    assert learned["data"]["sections"]["totalCount"] >= 1, learned
    assert await available(api, section.id) == 3


@pytest.mark.parametrize("form", ["documentId", "persistedQuery"])
async def test_a_text_that_is_not_its_ids_document_is_refused_and_nothing_runs(
    api: Api, catalog: Catalog, form: str
) -> None:
    section = await catalog.section(seats=1)
    student = await catalog.student()
    body: dict[str, Any] = {
        "query": DOCUMENTS["Register"],
        "variables": {"input": register_input(student.id, [section.id])},
    }
    wrong = hex_of(DOCUMENTS["Drop"])
    if form == "documentId":
        body["documentId"] = "sha256:" + wrong
    else:
        body["extensions"] = apollo(wrong)
    assert code(await post(api, body, api.student_token(student.id))) == "BAD_USER_INPUT"
    assert await available(api, section.id) == 1


async def test_an_unknown_document_id_is_a_coded_error_over_post_and_get(api: Api) -> None:
    unknown = "sha256:" + "0" * 64
    assert code(await post(api, {"documentId": unknown})) == "PERSISTED_QUERY_NOT_FOUND"
    # A GET with no `query` but an id is an operation, not a browser asking for GraphiQL.
    browser = {"Accept": "text/html,*/*"}
    for params in ({"documentId": unknown}, {"extensions": json.dumps(apollo("0" * 64))}):
        response = await api.client.get("/graphql", params=params, headers=browser)
        assert response.status_code == 200, response.text
        assert code(response.json()) == "PERSISTED_QUERY_NOT_FOUND"


@pytest.mark.parametrize(
    "body",
    [
        {"documentId": 5},
        {"documentId": "md5:" + "0" * 32},
        {"documentId": "sha256:" + "0" * 63},
        {"documentId": "sha256:" + "g" * 64},
        {"documentId": "0" * 64},
        {"extensions": {"persistedQuery": "x"}},
        {"extensions": {"persistedQuery": {"version": 2, "sha256Hash": "0" * 64}}},
        {"extensions": {"persistedQuery": {"version": True, "sha256Hash": "0" * 64}}},
        {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": 5}}},
        {"extensions": {"persistedQuery": {"version": 1}}},
        {"documentId": "sha256:" + "0" * 64, "extensions": apollo("1" * 64)},
        {"documentId": id_of("DashboardSections"), "variables": {"first": "many"}},
    ],
)
async def test_a_malformed_document_reference_is_bad_user_input(
    api: Api, body: dict[str, Any]
) -> None:
    assert code(await post(api, body)) == "BAD_USER_INPUT"


@pytest.mark.parametrize(
    "body",
    [
        {"documentId": id_of("DashboardSections"), "extensions": "x"},
        {"documentId": id_of("DashboardSections"), "variables": "x"},
        [{"documentId": id_of("DashboardSections")}],
        {"documentId": None},
    ],
)
async def test_a_request_strawberry_refuses_stays_a_4xx_with_a_document_id(
    api: Api, body: Any
) -> None:
    response = await api.client.post("/graphql", json=body)
    assert 400 <= response.status_code < 500, response.text


async def test_under_students_a_student_runs_listed_documents_only_and_staff_run_any(
    students_api: Api,
) -> None:
    api = students_api
    catalog = Catalog(api.container)
    section = await catalog.section(seats=2)
    student, other = await catalog.students(2)
    token = api.student_token(student.id)
    mine = {"input": register_input(student.id, [section.id])}

    by_id = await post(api, {"documentId": id_of("Register"), "variables": mine}, token)
    assert by_id["data"]["register"]["results"][0]["outcome"] == "ENROLLED", by_id
    as_text = await post(api, {"query": DOCUMENTS["MySchedule"]}, token)
    assert as_text["data"]["me"]["id"] == str(student.id), as_text

    theirs = {"i": register_input(other.id, [section.id])}
    other_token = api.student_token(other.id)
    refused = await post(api, {"query": REGISTER, "variables": theirs}, other_token)
    assert code(refused) == "FORBIDDEN"
    assert "trusted documents" in refused["errors"][0]["message"]
    assert await available(api, section.id) == 1  # the refused register took nothing

    assert code(await post(api, {"query": UNLISTED})) == "FORBIDDEN"  # anonymous
    assert code(await post(api, {"query": UNLISTED}, "not-a-jwt")) == "UNAUTHENTICATED"
    public = await post(api, {"documentId": id_of("DashboardSections"), "variables": {"first": 1}})
    assert public["data"]["sections"]["totalCount"] >= 1, public

    staff = await post(api, {"query": REGISTER, "variables": theirs}, api.token())
    assert staff["data"]["register"]["results"][0]["outcome"] == "ENROLLED", staff
    assert await available(api, section.id) == 0


async def test_under_students_an_apollo_client_cannot_register_an_unlisted_document(
    students_api: Api,
) -> None:
    student = await Catalog(students_api.container).student()
    token = students_api.student_token(student.id)
    hashed = {"extensions": apollo(hex_of(UNLISTED))}
    assert code(await post(students_api, {**hashed, "query": UNLISTED}, token)) == "FORBIDDEN"
    assert code(await post(students_api, hashed, token)) == "PERSISTED_QUERY_NOT_FOUND"
    assert "errors" not in await post(
        students_api, {**hashed, "query": UNLISTED}, students_api.token()
    )
    assert "errors" not in await post(students_api, hashed, students_api.token())
    # Learned from staff, the document is still not one a student may run.
    assert code(await post(students_api, hashed, token)) == "FORBIDDEN"


def ws_codes(message: dict[str, Any]) -> list[str]:
    assert message["type"] == "error", message
    return [e["extensions"]["code"] for e in message["payload"]]


async def test_over_websockets_subscriptions_run_by_id_and_unlisted_ones_are_refused(
    students_api: Api,
) -> None:
    catalog = Catalog(students_api.container)
    section = await catalog.section(seats=4)
    variables = {"sectionIds": [str(section.id)]}
    async with serve(students_api.app) as server, GqlSocket.open(ws_url(server)) as ws:
        refused = await ws.subscribe(SEAT_UPDATES, ids=[str(section.id)])
        assert ws_codes(await ws.receive(refused)) == ["FORBIDDEN"]
        unknown = await ws.send_subscribe({"documentId": "sha256:" + "0" * 64})
        assert ws_codes(await ws.receive(unknown)) == ["PERSISTED_QUERY_NOT_FOUND"]
        malformed = await ws.send_subscribe({"documentId": "sha256:nope"})
        assert ws_codes(await ws.receive(malformed)) == ["BAD_USER_INPUT"]
        # The socket stays open: the listed subscription runs by id, and by Apollo's hash.
        by_id = await ws.send_subscribe(
            {"documentId": id_of("SeatUpdates"), "variables": variables}
        )
        assert (await ws.data(by_id))["availableSeats"] == 4
        hashed = apollo(hex_of(DOCUMENTS["SeatUpdates"]))
        by_hash = await ws.send_subscribe({"extensions": hashed, "variables": variables})
        assert (await ws.data(by_hash))["totalSeats"] == 4

        student = await catalog.student()
        answer = await post(
            students_api,
            {
                "documentId": id_of("Register"),
                "variables": {"input": register_input(student.id, [section.id])},
            },
            students_api.student_token(student.id),
        )
        assert "errors" not in answer, answer
        assert (await ws.data(by_id))["availableSeats"] == 3

    async with (
        serve(students_api.app) as server,
        GqlSocket.open(ws_url(server), token=students_api.token()) as staff,
    ):
        text = await staff.subscribe(SEAT_UPDATES, ids=[str(section.id)])
        assert (await staff.data(text))["availableSeats"] == 3


async def test_with_the_setting_off_any_document_runs_as_text_as_before(
    api: Api, catalog: Catalog, server: str
) -> None:
    """The default: a student's own document, over HTTP and websockets."""
    section = await catalog.section(seats=2)
    student = await catalog.student()
    answer = await post(api, {"query": UNLISTED}, api.student_token(student.id))
    assert answer["data"]["sections"]["totalCount"] >= 1, answer
    async with GqlSocket.open(ws_url(server), token=api.student_token(student.id)) as ws:
        operation = await ws.subscribe(SEAT_UPDATES, ids=[str(section.id)])
        assert (await ws.data(operation))["availableSeats"] == 2

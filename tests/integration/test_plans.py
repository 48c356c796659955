"""Prepared plans (infrastructure/http/plans.py) against graphql-core, through the real app:
two apps over the same Redis and Postgres, one with plans and one without
(COURSEREG_PLANS=false), answer the same requests with the same HTTP response (status,
headers, body bytes). The requests are generated from a seed: the trusted mutations and
documents of register and drop with aliases, inline and named fragments, __typename,
@include/@skip on literals and variables, merged fields and two root fields; variables valid
and invalid (wrong types, nulls, missing, extra fields, bad UUIDs, lists too long, repeats);
tokens of the student, of another student, staff's, none and a bad one. Each request that
changes state carries an idempotency key, so whichever app runs it second answers as the
first did (the same state, read idempotently). Also: what a plan does not take (a GET, another
operation name) is graphql-core's answer, and the plans exist only for the hot mutations."""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from infrastructure.http.documents import operations
from infrastructure.http.plans import Plan, Plans
from infrastructure.settings import Settings
from tests.conftest import Api, Catalog, running_app

DOCUMENTS = operations(Path(__file__).resolve().parents[2] / "webapp" / "operations")
PREPARED = {"Register", "Drop", "Swap", "ClaimSeat", "DeclineOffer"}
SEED = 1717
CASES = 400
ACCEPTS = [None, "application/json", "application/graphql-response+json"]

SECTION_RESULT = ["sectionId", "outcome", "waitlistPosition", "availableSeats", "reason"]
PAYLOADS: dict[str, tuple[str, str, list[Any]]] = {
    "register": (
        "RegisterInput",
        "RegisterPayload",
        ["studentId", ("results", "SectionResult", SECTION_RESULT)],
    ),
    "drop": ("DropInput", "DropPayload", ["studentId", "sectionId", "outcome", "availableSeats"]),
}


def plans_of(api: Api) -> Plans:
    plans: Plans = api.app.state.graphql_view.plans
    return plans


@dataclass
class Document:
    """A generated document of one root mutation field."""

    rng: random.Random
    fragments: list[str] = field(default_factory=list)
    conditions: dict[str, bool] = field(default_factory=dict)

    def directive(self) -> str:
        if self.rng.random() < 0.7:
            return ""
        name = self.rng.choice(["include", "skip"])
        if self.rng.random() < 0.3:
            return f" @{name}(if: {self.rng.choice(['true', 'false'])})"
        variable = f"c{len(self.conditions)}"
        self.conditions[variable] = self.rng.random() < 0.5
        return f" @{name}(if: ${variable})"

    def selection(self, type_name: str, fields: list[Any]) -> str:
        rng = self.rng
        chosen = rng.sample(fields, k=rng.randint(1, len(fields)))
        if rng.random() < 0.3:
            chosen.insert(rng.randint(0, len(chosen)), "__typename")
        if rng.random() < 0.2:  # the same field again: merged (or two keys when aliased)
            chosen.append(rng.choice(chosen))
        parts = []
        for item in chosen:
            if isinstance(item, tuple):
                name, sub_type, sub_fields = item
                body = " { " + self.selection(sub_type, sub_fields) + " }"
            else:
                name, body = item, ""
            alias = f"{name.strip('_')}Aka: " if rng.random() < 0.3 else ""
            text = f"{alias}{name}{self.directive()}{body}"
            wrap = rng.random()
            if wrap < 0.15:
                text = f"... on {type_name}{self.directive()} {{ {text} }}"
            elif wrap < 0.25:
                text = f"...{self.directive()} {{ {text} }}"
            elif wrap < 0.4:
                fragment = f"F{len(self.fragments)}"
                self.fragments.append(f"fragment {fragment} on {type_name} {{ {text} }}")
                text = f"...{fragment}{self.directive()}"
            parts.append(text)
        return " ".join(parts)

    def mutation(self, root: str) -> str:
        input_type, payload, fields = PAYLOADS[root]
        rng = self.rng
        roots = []
        for alias in ["", "again: "][: 2 if rng.random() < 0.15 else 1]:
            alias = alias or (f"{root}Aka: " if rng.random() < 0.3 else "")
            selected = self.selection(payload, fields)
            roots.append(f"{alias}{root}(input: $input){self.directive()} {{ {selected} }}")
        conditions = "".join(f", ${name}: Boolean!" for name in self.conditions)
        head = f"mutation Generated($input: {input_type}!{conditions})"
        return "\n".join([f"{head} {{\n  " + "\n  ".join(roots) + "\n}", *self.fragments])


@dataclass
class World:
    students: list[Any]
    sections: list[Any]
    closed: Any  # a section whose registration window closed


def _uuid_text(rng: random.Random, known: list[Any]) -> Any:
    """Mostly a known id; sometimes an unknown one, a malformed one or not a string."""
    roll = rng.random()
    if roll < 0.75:
        return str(rng.choice(known).id)
    if roll < 0.85:
        return str(uuid.uuid4())
    return rng.choice(["not-a-uuid", 12, None, "", ["a"], {"id": 1}, str(uuid.uuid4())[:-1]])


def register_variables(rng: random.Random, world: World, student: Any) -> dict[str, Any]:
    sections = [*world.sections, world.closed]
    count = rng.choice([1, 1, 2, 3, 0, 11])
    if count <= len(sections):
        ids: Any = [str(s.id) for s in rng.sample(sections, count)]
    else:
        ids = [str(uuid.uuid4()) for _ in range(count)]
    roll = rng.random()
    if roll < 0.05 and ids:
        ids = ids[0]  # one value for a list: coerced as a list of one
    elif roll < 0.1 and ids:
        ids = [*ids, ids[0]]  # a repeat: BAD_USER_INPUT
    elif roll < 0.15:
        ids = [_uuid_text(rng, world.sections), *ids]
    given: dict[str, Any] = {"studentId": str(student.id), "sectionIds": ids}
    return _common(rng, world, given)


def drop_variables(rng: random.Random, world: World, student: Any) -> dict[str, Any]:
    given: dict[str, Any] = {
        "studentId": str(student.id),
        "sectionId": _uuid_text(rng, world.sections),
    }
    return _common(rng, world, given)


def _common(rng: random.Random, world: World, given: dict[str, Any]) -> dict[str, Any]:
    """A fresh idempotency key (mostly), and now and then one thing wrong."""
    roll = rng.random()
    if roll < 0.85:
        given["idempotencyKey"] = uuid.uuid4().hex
    elif roll < 0.9:
        given["idempotencyKey"] = rng.choice([7, "k" * 300, ""])
    wrong = rng.random()
    if wrong < 0.06:
        given["studentId"] = _uuid_text(rng, world.students)
    elif wrong < 0.1:
        given.pop(rng.choice(sorted(given)))
    elif wrong < 0.13:
        given["extra"] = 1
    return given


@dataclass
class Case:
    document: str
    variables: Any
    token: str | None
    accept: str | None
    changes_state: bool


def make_case(rng: random.Random, api: Api, world: World, generated: bool) -> Case:
    student = rng.choice(world.students)
    kind = rng.choice(["register", "register", "drop", "swap", "claimSeat", "declineOffer"])
    text, variables = _request(rng, world, student, kind, generated)
    inputs = variables.get("input")
    keyed = isinstance(inputs, dict) and isinstance(inputs.get("idempotencyKey"), str)
    roll = rng.random()
    if roll < 0.04:
        variables = {}
    elif roll < 0.07:
        variables["input"] = None
    elif roll < 0.1:
        variables["unused"] = {"extra": True}
    state = kind not in ("claimSeat", "declineOffer")
    token = _token(rng, api, world, student)
    return Case(text, variables, token, rng.choice(ACCEPTS), state and not keyed)


def _request(
    rng: random.Random, world: World, student: Any, kind: str, generated: bool
) -> tuple[str, dict[str, Any]]:
    """A document of `kind` and its variables."""
    if kind in PAYLOADS:
        make = register_variables if kind == "register" else drop_variables
        variables: dict[str, Any] = {"input": make(rng, world, student)}
        if not generated:
            return DOCUMENTS[kind[0].upper() + kind[1:]], variables
        doc = Document(rng)
        text = doc.mutation(kind)
        variables.update(doc.conditions)
        if doc.conditions and rng.random() < 0.1:  # a condition that fails coercion
            variables[rng.choice(sorted(doc.conditions))] = rng.choice(["yes", None, 1])
        return text, variables
    if kind == "swap":
        drop, add = rng.sample(world.sections, 2)
        swap = {"studentId": str(student.id), "dropSectionId": str(drop.id)}
        swap["addSectionId"] = str(add.id) if rng.random() < 0.9 else swap["dropSectionId"]
        return DOCUMENTS["Swap"], {"input": _common(rng, world, swap)}
    text = DOCUMENTS["ClaimSeat" if kind == "claimSeat" else "DeclineOffer"]
    return text, {"studentId": str(student.id), "sectionId": _uuid_text(rng, world.sections)}


def _token(rng: random.Random, api: Api, world: World, student: Any) -> str | None:
    """Mostly the student's own; another student's (FORBIDDEN), staff's, none, a bad one."""
    who = rng.random()
    if who < 0.7:
        return api.student_token(student.id)
    if who < 0.8:
        return api.student_token(rng.choice(world.students).id)
    if who < 0.9:
        return api.token()
    return None if who < 0.95 else "not-a-token"


async def answer(api: Api, case: Case, request_id: str) -> tuple[int, list[Any], bytes]:
    headers = {"Content-Type": "application/json", "X-Request-ID": request_id}
    if case.token:
        headers["Authorization"] = f"Bearer {case.token}"
    if case.accept:
        headers["Accept"] = case.accept
    body = {"query": case.document, "variables": case.variables}
    response = await api.client.post("/graphql", content=json.dumps(body), headers=headers)
    return response.status_code, response.headers.multi_items(), response.content


async def world_of(catalog: Catalog) -> World:
    semester = await catalog.semester()
    sections = [await catalog.section(seats=seats, semester=semester) for seats in (1, 2, 3, 5)]
    students = await catalog.students(5)
    now = datetime.now(UTC)
    closed_term = await catalog.semester(now - timedelta(days=3), now - timedelta(days=1))
    closed = await catalog.section(seats=3, semester=closed_term)
    return World(students, sections, closed)


def _json(content: bytes) -> dict[str, Any]:
    try:
        found = json.loads(content)
    except ValueError:
        return {}  # a request refused in plain text (application/json)
    return found if isinstance(found, dict) else {}


def _prepared(api: Api) -> dict[str, Plan]:
    plans = plans_of(api)
    return {name: plan for name, text in DOCUMENTS.items() if (plan := plans.get(text))}


async def test_the_trusted_mutations_are_prepared_and_nothing_else(
    api: Api, settings: Settings
) -> None:
    assert set(_prepared(api)) == PREPARED
    assert len(plans_of(api)) == len(PREPARED)
    async with running_app(settings.model_copy(update={"plans": False})) as plain:
        assert len(plans_of(plain)) == 0


async def test_plans_answer_as_graphql_core_byte_for_byte(
    api: Api, catalog: Catalog, settings: Settings
) -> None:
    world = await world_of(catalog)
    rng = random.Random(SEED)
    plans = plans_of(api)
    answered = fallbacks = 0
    async with running_app(settings.model_copy(update={"plans": False})) as plain:
        for number in range(CASES):
            case = make_case(rng, api, world, generated=number % 3 != 0)
            if case.changes_state:
                continue  # without a key the second app would see the first one's write
            plan = plans.get(case.document) or plans.add(case.document)
            assert plan is not None, case.document
            before = plan.answered
            request_id = f"case-{number}"
            first, second = (api, plain) if rng.random() < 0.5 else (plain, api)
            got = await answer(first, case, request_id)
            again = await answer(second, case, request_id)
            planned, core = (got, again) if first is api else (again, got)
            assert planned == core, (case, planned, core)
            body = _json(planned[2])
            request_error = (
                bool(body.get("errors"))
                and body.get("data") is None
                and not any("path" in e for e in body["errors"])
            )
            # The plan answered unless graphql-core refuses the request before execution.
            assert plan.answered - before == (0 if request_error else 1), (case, body)
            answered += plan.answered - before
            fallbacks += 1 if request_error else 0
    assert answered > CASES // 2 and fallbacks > 5, (answered, fallbacks)


async def test_a_resolver_error_under_a_plan_is_graphql_core_s(
    api: Api, catalog: Catalog, settings: Settings
) -> None:
    """One of each coded error, named: FORBIDDEN, BAD_USER_INPUT, NOT_FOUND, and a request
    error (a bad UUID), each the same bytes and status from both paths."""
    world = await world_of(catalog)
    student, other = world.students[:2]
    section = world.sections[0]
    register = DOCUMENTS["Register"]
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("FORBIDDEN", register, {"studentId": str(other.id), "sectionIds": [str(section.id)]}),
        ("BAD_USER_INPUT", register, {"studentId": str(student.id), "sectionIds": []}),
        (
            "NOT_FOUND",
            DOCUMENTS["Drop"],
            {"studentId": str(student.id), "sectionId": str(uuid.uuid4())},
        ),
        ("BAD_USER_INPUT", register, {"studentId": "nope", "sectionIds": [str(section.id)]}),
    ]
    prepared = _prepared(api)
    async with running_app(settings.model_copy(update={"plans": False})) as plain:
        for code, text, given in cases:
            plan = plans_of(api).get(text)
            assert plan is not None
            for accept in ACCEPTS:
                case = Case(text, {"input": given}, api.student_token(student.id), accept, False)
                before = plan.answered
                planned = await answer(api, case, "named")
                assert planned == await answer(plain, case, "named")
                errors = json.loads(planned[2])["errors"]
                assert [e["extensions"]["code"] for e in errors] == [code], planned
                # The bad UUID is refused before execution: graphql-core answers it.
                assert plan.answered - before == (0 if given["studentId"] == "nope" else 1)
    assert prepared["Register"].answered and prepared["Drop"].answered


async def test_what_a_plan_does_not_take_graphql_core_answers(
    api: Api, catalog: Catalog, settings: Settings
) -> None:
    """A prepared document over GET (a mutation: 405), under another operation name, or
    named by its documentId over POST: the same response from both apps, and the plan runs
    only for the last."""
    student = await catalog.student()
    section = await catalog.section(seats=2)
    text = DOCUMENTS["Register"]
    plan = plans_of(api).get(text)
    assert plan is not None
    given = {"input": {"studentId": str(student.id), "sectionIds": [str(section.id)]}}
    given["input"]["idempotencyKey"] = uuid.uuid4().hex
    headers = {"Authorization": f"Bearer {api.student_token(student.id)}", "X-Request-ID": "r"}
    document_id = "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    requests: list[tuple[str, dict[str, Any], bool]] = [
        ("GET", {"documentId": document_id, "variables": json.dumps(given)}, False),
        ("POST", {"query": text, "variables": given, "operationName": "Other"}, False),
        ("POST", {"documentId": document_id, "variables": given}, True),
    ]
    async with running_app(settings.model_copy(update={"plans": False})) as plain:
        for method, body, planned in requests:
            answers = []
            before = plan.answered
            for app in (api, plain):
                if method == "GET":
                    response = await app.client.get("/graphql", params=body, headers=headers)
                else:
                    response = await app.client.post("/graphql", json=body, headers=headers)
                answers.append(
                    (response.status_code, response.headers.multi_items(), response.content)
                )
            assert answers[0] == answers[1], answers
            assert plan.answered - before == (1 if planned else 0), (method, body)
    assert answers[0][0] == 200 and b"ENROLLED" in answers[0][2], answers

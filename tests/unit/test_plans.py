"""A plan's variable coercer (infrastructure/http/plans.py) against graphql-core's: for any
variables, it refuses what graphql-core refuses (the normal path then answers with its
error) and otherwise coerces to exactly graphql-core's values. Hypothesis draws valid
values from the schema's input types and garbage mixed in at any depth. A plan's completion
against Strawberry's execute, for a resolver that answers malformed payloads or raises: the
same data and formatted errors (nulls propagated, paths, locations, codes). And which
documents are prepared: the trusted mutations, not queries, nor fields that resolve."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, cast

import pytest
import strawberry
from graphql import (
    GraphQLEnumType,
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    OperationDefinitionNode,
    parse,
    type_from_ast,
)
from graphql.execution.values import get_variable_values
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import Forbidden
from domain.model import RegisterOutcome
from infrastructure.http.plans import Plan, Plans, _Refused, _variables_coercer
from infrastructure.settings import load_settings
from resolvers.root import CourseregSchema, Query, build_schema
from schema.errors import CodedErrors
from schema.types import RegisterInput, RegisterPayload, SectionResult

SCHEMA = build_schema()
CORE = SCHEMA._schema
VARIABLES = (
    "$register: RegisterInput!, $drop: DropInput, $swap: SwapInput, $rules: SectionRulesInput, "
    "$filter: SectionFilter!, $ids: [UUID!], $nested: [[Int]!], $flag: Boolean!, $f: Float, "
    "$mode: WaitlistMode, $when: DateTime, $prefs: [NotificationPreferenceInput!]!"
)
DOCUMENT = parse(f"mutation M({VARIABLES}) {{ __typename }}")
(OPERATION,) = [d for d in DOCUMENT.definitions if isinstance(d, OperationDefinitionNode)]
DEFINED = OPERATION.variable_definitions or ()
COERCE = _variables_coercer(CORE, OPERATION)
SETTINGS = load_settings(
    database_url="postgresql://x@127.0.0.1/x", redis_url="redis://127.0.0.1/0", jwt_secret="x" * 40
)

SCALARS: dict[str, st.SearchStrategy[Any]] = {
    "UUID": st.uuids().map(str),
    "Int": st.integers(-(2**31), 2**31 - 1),
    "Float": st.floats(allow_nan=False, allow_infinity=False),
    "String": st.text(max_size=4),
    "Boolean": st.booleans(),
    "DateTime": st.datetimes().map(lambda d: d.isoformat()),
    "Date": st.dates().map(lambda d: d.isoformat()),
}
GARBAGE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=4)
    | st.sampled_from(["not-a-uuid", "00000000-0000-0000-0000-00000000000g", "MONDAY", "AUTO"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)


def valid(type_: GraphQLInputType) -> st.SearchStrategy[Any]:
    """Values graphql-core accepts, now and then with garbage at any depth."""
    return st.one_of(_valid(type_), _valid(type_), _valid(type_), GARBAGE)


def _valid(type_: GraphQLInputType) -> st.SearchStrategy[Any]:
    if isinstance(type_, GraphQLNonNull):
        return st.deferred(lambda: _inner(type_.of_type))
    return st.none() | st.deferred(lambda: _inner(type_))


def _inner(type_: GraphQLInputType) -> st.SearchStrategy[Any]:
    if isinstance(type_, GraphQLList):
        item = valid(type_.of_type)
        return st.lists(item, max_size=3) | item  # one value is a list of one
    if isinstance(type_, GraphQLInputObjectType):
        required = {
            name: valid(f.type)
            for name, f in type_.fields.items()
            if isinstance(f.type, GraphQLNonNull)
        }
        optional = {
            name: valid(f.type)
            for name, f in type_.fields.items()
            if not isinstance(f.type, GraphQLNonNull)
        }
        extra = st.fixed_dictionaries({}, optional={"unknownField": st.integers()})
        made = st.fixed_dictionaries(required, optional=optional)
        return st.one_of(made, st.tuples(made, extra).map(lambda p: {**p[0], **p[1]}))
    if isinstance(type_, GraphQLEnumType):
        return st.sampled_from(sorted(type_.values))
    assert isinstance(type_, GraphQLScalarType)
    return SCALARS[type_.name]


NAMES = [d.variable.name.value for d in DEFINED]


def _type_of(name: str) -> GraphQLInputType:
    (definition,) = [d for d in DEFINED if d.variable.name.value == name]
    found = type_from_ast(CORE, definition.type)
    assert found is not None
    return found  # type: ignore[return-value]


VARIABLE_VALUES = st.fixed_dictionaries(
    {},
    optional={name: valid(_type_of(name)) for name in NAMES} | {"extra": GARBAGE},
)


@settings(max_examples=400, deadline=None)
@given(VARIABLE_VALUES)
def test_the_coercer_refuses_what_graphql_core_refuses_and_agrees_on_the_rest(
    inputs: dict[str, Any],
) -> None:
    expected = get_variable_values(CORE, DEFINED, inputs)
    try:
        coerced = COERCE(inputs)
    except _Refused:
        assert isinstance(expected, list), (inputs, expected)
        return
    assert not isinstance(expected, list), (inputs, [e.message for e in expected])
    assert coerced == expected.coerced


def test_valid_variables_are_coerced_not_refused() -> None:
    """The coercer is not one that refuses everything (the test above would pass)."""
    kinds = CORE.get_type("NotificationKind")
    assert isinstance(kinds, GraphQLEnumType)
    inputs = {
        "register": {"studentId": "8c2f6c6e-54a4-4f1e-8d1d-2b2f3c4d5e6f", "sectionIds": []},
        "filter": {},
        "flag": True,
        "prefs": [{"kind": sorted(kinds.values)[0], "email": False}],
        "nested": [[1, None], 2],
    }
    coerced = COERCE(inputs)
    expected = get_variable_values(CORE, DEFINED, inputs)
    assert not isinstance(expected, list), expected
    assert coerced == expected.coerced
    assert coerced["nested"] == [[1, None], [2]]


@pytest.mark.parametrize(
    ("document", "prepared"),
    [
        ("mutation R($i: RegisterInput!) { register(input: $i) { studentId } }", True),
        (
            'mutation { drop(input: {studentId: "8c2f6c6e-54a4-4f1e-8d1d-2b2f3c4d5e6f", '
            'sectionId: "8c2f6c6e-54a4-4f1e-8d1d-2b2f3c4d5e6f"}) { outcome } }',
            True,
        ),
        ("query { semesters { id } }", False),
        (
            'mutation { createSemester(input: {name: "a", startDate: "2026-01-01", '
            'endDate: "2026-01-02", registrationStart: "2026-01-01T00:00:00Z", '
            'registrationEnd: "2026-01-01T00:00:00Z"}) { id } }',
            False,
        ),
        (
            "mutation($i: RegisterInput!, $c: Boolean = true) { register(input: $i) "
            "@include(if: $c) { studentId } }",
            False,
        ),
        ("mutation R($i: RegisterInput!) { register(input: $i) { nope } }", False),
    ],
)
def test_only_plain_documents_of_the_hot_mutations_are_prepared(
    document: str, prepared: bool
) -> None:
    plans = Plans(SCHEMA, SETTINGS)
    assert isinstance(plans.add(document), Plan) is prepared


# Completion against graphql-core: a register resolver returning malformed payloads (nulls in
# non-null fields, values no scalar or enum takes, a list that is not one) or raising; the
# plan and Strawberry's execute give the same data and the same formatted errors (message,
# locations, path, extensions), the errors coded as the app codes them.

_ID = uuid.UUID("8c2f6c6e-54a4-4f1e-8d1d-2b2f3c4d5e6f")


def _result(**changed: Any) -> SectionResult:
    fields: dict[str, Any] = {
        "section_id": _ID,
        "outcome": RegisterOutcome.ENROLLED,
        "waitlist_position": None,
        "available_seats": 3,
        "reason": None,
    }
    return SectionResult(**(fields | changed))


def _payload(student: Any = _ID, results: Any = None) -> RegisterPayload:
    return RegisterPayload(student_id=student, results=[_result()] if results is None else results)


ANSWERS: dict[str, Callable[[], Any]] = {
    "ok": lambda: _payload(results=[_result(), _result(waitlist_position=2, reason="R")]),
    "null student": lambda: _payload(student=None),
    "null item": lambda: _payload(results=[_result(), None]),
    "null item field": lambda: _payload(results=[_result(section_id=None)]),
    "bad int": lambda: _payload(results=[_result(waitlist_position="two"), _result()]),
    "bad ints": lambda: _payload(
        results=[_result(waitlist_position="x"), _result(available_seats=1.5)]
    ),
    "bad enum": lambda: _payload(results=[_result(outcome="NOPE")]),
    "not a list": lambda: _payload(results=5),
    "empty": lambda: _payload(results=[]),
    "null": lambda: None,
}


def _raises(error: Exception) -> Callable[[], Any]:
    def answer() -> Any:
        raise error

    return answer


ANSWERS |= {
    "forbidden": _raises(Forbidden("no")),
    "coded": _raises(GraphQLError("coded", extensions={"code": "NOT_FOUND"})),
    "crash": _raises(ValueError("boom")),
}


@strawberry.type
class AnsweringMutation:
    @strawberry.mutation
    async def register(self, input: RegisterInput) -> RegisterPayload:
        return cast(RegisterPayload, ANSWERS[cast(str, input.idempotency_key)]())


ANSWERING = CourseregSchema(query=Query, mutation=AnsweringMutation, extensions=[CodedErrors])
SHAPES = [
    "mutation A($input: RegisterInput!) { register(input: $input) { studentId "
    "results { sectionId outcome waitlistPosition availableSeats reason } } }",
    "mutation B($input: RegisterInput!, $on: Boolean!) { first: register(input: $input) { "
    "__typename who: studentId ...R } again: register(input: $input) { results "
    "{ outcome } } } fragment R on RegisterPayload { results { ... on SectionResult "
    "{ availableSeats @include(if: $on) seats: availableSeats waitlistPosition } } }",
]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", sorted(ANSWERS))
async def test_completion_and_errors_are_graphql_core_s(shape: str, name: str) -> None:
    given: dict[str, Any] = {
        "input": {"studentId": str(_ID), "sectionIds": [], "idempotencyKey": name}
    }
    given |= {"on": True} if "$on" in shape else {}
    context = cast(Any, SimpleNamespace(request_id="unit"))
    expected = await ANSWERING.execute(shape, variable_values=given, context_value=context)
    plan = Plan(ANSWERING, parse(shape))
    got = await plan.run(context, given)
    assert got is not None and plan.answered == 1
    formatted = [e.formatted for e in got.errors or []]
    assert (got.data, formatted) == (expected.data, [e.formatted for e in expected.errors or []])

"""`python -m bench.plans`: in-process cost per request of the register mutation with a
constant resolver (as issue 17 timed it), 1 and 5 sections: Strawberry's schema.execute
(parser and validation caches, as the stock framework runs), graphql-core's execute alone
(document parsed and validated beforehand), and the prepared plan (infrastructure/http/
plans.py). Each answer is checked equal to Strawberry's first. Not part of `make bench`."""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import strawberry
from graphql import execute, parse
from strawberry.extensions import ParserCache, ValidationCache

from domain.model import RegisterAnswer, RegisterOutcome, SectionResult
from infrastructure.http.documents import operations
from infrastructure.http.plans import Plan
from resolvers.context import Info
from resolvers.root import Query
from schema.types import RegisterInput, RegisterPayload

REGISTER = operations(Path(__file__).resolve().parents[1] / "webapp" / "operations")["Register"]


@strawberry.type
class ConstantMutation:
    @strawberry.mutation
    async def register(self, info: Info, input: RegisterInput) -> RegisterPayload:
        answer = RegisterAnswer(
            input.student_id,
            tuple(SectionResult(s, RegisterOutcome.ENROLLED, 10) for s in input.section_ids),
        )
        return RegisterPayload.of(answer)


async def per_call(run: Callable[[], Awaitable[Any]], seconds: float) -> float:
    """Microseconds per call, best of three rounds."""
    best = float("inf")
    for _ in range(3):
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds / 3:
            for _ in range(100):
                await run()
            count += 100
        best = min(best, (time.perf_counter() - started) / count * 1e6)
    return best


async def measure(sections: int, seconds: float) -> dict[str, float]:
    schema = strawberry.Schema(
        query=Query,
        mutation=ConstantMutation,
        extensions=[lambda: ParserCache(maxsize=64), lambda: ValidationCache(maxsize=64)],
    )
    given = {
        "input": {
            "studentId": str(uuid.uuid4()),
            "sectionIds": [str(uuid.uuid4()) for _ in range(sections)],
            "idempotencyKey": "k",
        }
    }
    context = cast(Any, SimpleNamespace(request_id="bench"))
    document = parse(REGISTER)
    plan = Plan(schema, document)

    async def strawberry_execute() -> Any:
        return await schema.execute(REGISTER, variable_values=given, context_value=context)

    async def core_execute() -> Any:
        result = execute(schema._schema, document, variable_values=given, context_value=context)
        return await cast(Awaitable[Any], result)

    async def planned() -> Any:
        return await plan.run(context, given)

    expected = await strawberry_execute()
    assert expected.errors is None, expected.errors
    for run in (core_execute, planned):
        got = await run()
        assert (got.data, got.errors) == (expected.data, None), (got, expected)
    return {
        "strawberry_execute_us": await per_call(strawberry_execute, seconds),
        "graphql_core_execute_us": await per_call(core_execute, seconds),
        "plan_us": await per_call(planned, seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.plans")
    parser.add_argument("--seconds", type=float, default=3.0, help="per figure")
    args = parser.parse_args()
    for sections in (1, 5):
        figures = asyncio.run(measure(sections, args.seconds))
        shown = ", ".join(f"{name} {value:.1f}" for name, value in figures.items())
        print(f"register, {sections} section(s): {shown}")


if __name__ == "__main__":
    main()

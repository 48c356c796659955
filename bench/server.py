"""`python -m bench.server --variant ceiling|baseline`: the product's own app (create_app:
middleware, GraphQL view, schema extensions and document caches, context, token check,
resolvers) served by uvicorn with `coursereg serve`'s options, with one thing swapped: the
registrar behind the register mutation.

- ceiling: answers a constant (ENROLLED in every section asked for), no storage at all,
  so what is left is the framework's cost: the ceiling any register can reach.
- baseline: the naive Postgres register (bench/naive.py), behind the same stack.

The product itself is served by `coursereg serve` unchanged.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Sequence
from uuid import UUID

from starlette.applications import Starlette

from bench.naive import RowLockRegistrar, make_pool
from domain.model import Actor, RegisterAnswer, RegisterOutcome, SectionResult
from infrastructure.cli.serve import serve_app
from infrastructure.http.app import create_app
from infrastructure.logs import configure_logging
from infrastructure.settings import load_settings


class ConstantRegistrar:
    async def register(
        self,
        actor: Actor,
        student_id: UUID,
        section_ids: Sequence[UUID],
        idempotency_key: str | None = None,
        request_id: str = "",
    ) -> RegisterAnswer:
        return RegisterAnswer(
            student_id,
            tuple(SectionResult(sid, RegisterOutcome.ENROLLED, 10) for sid in section_ids),
        )


def swap_registrar(app: Starlette, variant: str, database_url: str) -> None:
    """Replace the registrar the app's lifespan hands to the resolvers."""
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with inner(app):
            pool = await make_pool(database_url) if variant == "baseline" else None
            registrar = ConstantRegistrar() if pool is None else RowLockRegistrar(pool)
            app.state.services = dataclasses.replace(app.state.services, registrar=registrar)
            try:
                yield
            finally:
                if pool is not None:
                    await pool.close()

    app.router.lifespan_context = lifespan


def main() -> None:
    p = argparse.ArgumentParser(prog="bench.server")
    p.add_argument("--variant", choices=["ceiling", "baseline"], required=True)
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args()
    # The stock stack: every document through graphql-core (the ceiling is plain
    # Strawberry with its caches), not the product's prepared plans.
    settings = load_settings().model_copy(update={"plans": False})
    configure_logging(settings)
    app = create_app(settings)
    swap_registrar(app, args.variant, settings.postgres)
    serve_app(app, settings, "127.0.0.1", args.port)


if __name__ == "__main__":
    main()

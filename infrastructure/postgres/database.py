"""The engine, sessions, and the one place that turns a lost database into UNAVAILABLE."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from domain.errors import Unavailable

# What a down, restarting or unreachable Postgres raises, as opposed to a bad statement.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    OSError,
    TimeoutError,
    ConnectionError,
)


# SQLSTATEs of a server that is away, starting or stopping, not of a bad statement: class 08
# (connection exception), 57P01-57P03 (admin or crash shutdown, "the database system is
# not yet accepting connections"), 53300 (too many connections). Found by the Postgres
# outage fault test: while Postgres starts, a batch failed with 57P03 and was treated as
# poison, counting attempts towards the dead-letter stream against good changes.
UNAVAILABLE_STATES = ("08", "57P01", "57P02", "57P03", "53300")


def _sqlstates(exc: BaseException) -> Iterator[str]:
    seen: BaseException | None = exc
    for _ in range(5):  # the error, SQLAlchemy's `orig` and their causes
        if seen is None:
            return
        state = getattr(seen, "sqlstate", None)
        if isinstance(state, str):
            yield state
        seen = getattr(seen, "orig", None) or seen.__cause__


def is_connection_error(exc: BaseException) -> bool:
    if isinstance(exc, CONNECTION_ERRORS):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return any(s.startswith(UNAVAILABLE_STATES) for s in _sqlstates(exc))


def make_engine(url: str, pool_size: int) -> AsyncEngine:
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_timeout=10,
        connect_args={"timeout": 5, "command_timeout": 30},
    )


def make_sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@contextlib.asynccontextmanager
async def unit_of_work(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One session and transaction, committed on success. Connection failures surface as
    Unavailable so callers answer UNAVAILABLE instead of an internal error.

    Every repository call opens its own: no use case writes the record twice (a staff
    change is one repository write, then the live state in Redis, which no Postgres
    transaction could include), so the writing call is its use case's whole unit of work.
    A use case that needed two writes together would run both on one session from here."""
    try:
        async with sessions() as session, session.begin():
            yield session
    except Unavailable:
        raise
    except BaseException as exc:
        if is_connection_error(exc):
            raise Unavailable("the database is unavailable; try again shortly") from exc
        raise

"""The one place errors become coded GraphQL errors (extensions.code from the contract).

Domain refusals keep their message and code; malformed documents and variables are
BAD_USER_INPUT; anything unexpected is logged with the request id and masked as INTERNAL.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from domain.errors import DomainError, ErrorCode

log = logging.getLogger("coursereg.errors")


def coded(error: GraphQLError, request_id: str) -> GraphQLError:
    original = error.original_error
    if isinstance(original, DomainError):
        return _with(error, original.message, original.code, original.extensions)
    if isinstance(error.extensions, dict) and "code" in error.extensions:
        return error
    if error.path is None and (original is None or isinstance(original, GraphQLError)):
        # Parsing, validation or variable coercion: the client's document or input.
        return _with(error, error.message, ErrorCode.BAD_USER_INPUT, {})
    log.error(
        "unexpected error in %s (request %s)",
        ".".join(str(p) for p in error.path or ["the operation"]),
        request_id,
        exc_info=original,
    )
    return _with(
        error, f"Internal error (request {request_id}).", ErrorCode.INTERNAL, {}, keep=False
    )


def _with(
    error: GraphQLError,
    message: str,
    code: ErrorCode,
    extra: dict[str, Any],
    keep: bool = True,
) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=error.original_error if keep else None,
        extensions={"code": code.value, **extra},
    )


def code_in_place(errors: list[GraphQLError], request_id: str) -> None:
    """The same codes, for errors raised where CodedErrors cannot reach them: a document the
    parser cache refuses fails inside its parsing hook, before the operation hook resumes."""
    errors[:] = [coded(e, request_id) for e in errors]


class CodedErrors(SchemaExtension):
    """Codes the errors of a query or mutation when it ends, and those of a subscription
    (or any streamed operation) result by result, before each reaches the socket."""

    _streamed = False
    # Its on_stream_result does nothing to a result without errors (resolvers/fanout.py).
    stream_hook_for_errors_only = True

    def on_operation(self) -> Iterator[None]:
        yield
        if not self._streamed:
            self._code(self.execution_context.result)

    def on_stream_result(self, result: Any) -> Iterator[None]:
        self._streamed = True
        self._code(result)
        yield

    def _code(self, result: Any) -> None:
        errors = getattr(result, "errors", None)
        if result is None or not errors:
            return
        context = self.execution_context.context
        request_id = getattr(context, "request_id", "-")
        result.errors = [coded(e, request_id) for e in errors]

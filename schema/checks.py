"""Extensions that turn requests Strawberry would mishandle into coded refusals."""

from __future__ import annotations

from collections.abc import Iterator

from graphql import ExecutionResult, GraphQLError
from strawberry.extensions import ParserCache, SchemaExtension
from strawberry.types.graphql import OperationType


class RefusingParserCache(ParserCache):
    """ParserCache parses inside its hook, where Strawberry does not catch a syntax error:
    over a websocket the client got `complete` and no error at all. A document that does not
    parse is left to Strawberry's own parse, which answers with the (coded) error."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        try:
            context.graphql_document = self.cached_parse_document(
                context.query, **context.parse_options
            )
        except GraphQLError:
            context.graphql_document = None
        yield


class WebsocketSubscriptions(SchemaExtension):
    """A subscription over plain HTTP would run its resolver as a query field and fail as
    an internal error: subscriptions are served over websockets only (where the context has
    the connection_init payload)."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        over_http = getattr(context.context, "connection_params", None) is None
        if context.operation_type is OperationType.SUBSCRIPTION and over_http:
            problem = "subscriptions are served over websockets (graphql-transport-ws)"
            context.result = ExecutionResult(data=None, errors=[GraphQLError(problem)])
        yield

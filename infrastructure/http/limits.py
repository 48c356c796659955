"""Limits on what one request may ask, each refused with a clear, coded error: GraphQL
documents (depth, aliases, tokens), request bodies (413), and websocket subscriptions per
connection. The per-student and per-address rates of register and drop: ../ratelimit.py.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocketDisconnected
from strawberry.extensions import AddValidationRules, MaxTokensLimiter, SchemaExtension
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)

from domain.errors import ErrorCode
from infrastructure.settings import Settings
from resolvers.context import Context

log = logging.getLogger(__name__)
SUBSCRIPTION_LIMIT = "Subscription limit reached"


def document_limits(settings: Settings) -> list[Callable[[], SchemaExtension]]:
    """Depth and alias limits (rules built once, so every request adds the same ones and the
    validation cache, keyed by the rules, keeps hitting) and Strawberry's MaxTokensLimiter,
    as factories for build_schema(limits=...)."""
    rules: list[type[ASTValidationRule]] = [
        depth_rule(settings.max_query_depth),
        aliases_rule(settings.max_aliases),
    ]
    return [
        lambda: AddValidationRules(rules),
        lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
    ]


# Written here rather than Strawberry's QueryDepthLimiter and MaxAliasesLimiter: those walk a
# fragment again at every spread of it, so fragments that each spread the next one twice
# take 2**n steps, and a 40-fragment document pins the event loop for good. These measure
# each fragment once (the same figures: depth below the root, aliases once expanded).


class _Measure:
    """Depth and expanded alias count of selection sets, each fragment measured once."""

    def __init__(self, document: DocumentNode) -> None:
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self._memo: dict[str, tuple[int, int]] = {}
        self._open: set[str] = set()  # a cycle (NoFragmentCycles reports it) counts nothing

    def of(self, selections: SelectionSetNode | None) -> tuple[int, int]:
        """(depth, aliases) of a selection set."""
        depth = aliases = 0
        for node in selections.selections if selections else ():
            if isinstance(node, FieldNode):
                if node.name.value.startswith("__"):  # introspection, as Strawberry does
                    continue
                below, inner = self.of(node.selection_set)
                depth = max(depth, below + 1 if node.selection_set else 0)
                aliases += inner + (1 if node.alias else 0)
            elif isinstance(node, InlineFragmentNode):
                below, inner = self.of(node.selection_set)
                depth, aliases = max(depth, below), aliases + inner
            elif isinstance(node, FragmentSpreadNode):
                below, inner = self._fragment(node.name.value)
                depth, aliases = max(depth, below), aliases + inner
        return depth, aliases

    def _fragment(self, name: str) -> tuple[int, int]:
        if name in self._memo:
            return self._memo[name]
        fragment = self.fragments.get(name)
        if fragment is None or name in self._open:
            return 0, 0
        self._open.add(name)
        self._memo[name] = self.of(fragment.selection_set)
        self._open.discard(name)
        return self._memo[name]


def _operations(document: DocumentNode) -> list[OperationDefinitionNode]:
    return [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]


def depth_rule(max_depth: int) -> type[ASTValidationRule]:
    class MaxDepth(ASTValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            measure = _Measure(context.document)
            for operation in _operations(context.document):
                depth, _ = measure.of(operation.selection_set)
                if depth > max_depth:
                    name = operation.name.value if operation.name else "anonymous"
                    message = f"'{name}' exceeds maximum operation depth of {max_depth}"
                    context.report_error(GraphQLError(message, operation))

    return MaxDepth


def aliases_rule(max_aliases: int) -> type[ASTValidationRule]:
    class MaxAliases(ASTValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            measure = _Measure(context.document)
            total = sum(measure.of(o.selection_set)[1] for o in _operations(context.document))
            if total > max_aliases:
                message = f"{total} aliases found. Allowed: {max_aliases}"
                context.report_error(GraphQLError(message))

    return MaxAliases


def _too_large(path: str, limit: int) -> bytes:
    message = f"request body over {limit} bytes"
    code = ErrorCode.BAD_USER_INPUT.value
    if path.startswith("/api/"):  # the REST adapter's envelope
        body: dict[str, Any] = {
            "success": False,
            "message": message,
            "errors": [{"code": code, "message": message}],
        }
    else:
        body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    return json.dumps(body).encode()


class BodyLimit:
    """Refuses a request body over `limit` bytes with 413 before the app reads it: at once by
    its Content-Length, or, for a body without one (chunked), once the bytes read pass it. A
    websocket message over the limit closes its socket."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self.app(scope, self._frames(receive, send), send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit():
            if int(declared) > self.limit:
                await self._refuse(scope, send)
                return
            await self.app(scope, receive, send)
            return
        received: list[Message] = []
        size = 0
        while True:
            message = await receive()
            received.append(message)
            size += len(message.get("body", b""))
            if size > self.limit:
                await self._refuse(scope, send)
                return
            if message["type"] != "http.request" or not message.get("more_body"):
                break

        async def replay() -> Message:
            return received.pop(0) if received else await receive()

        await self.app(scope, replay, send)

    def _frames(self, receive: Receive, send: Send) -> Receive:
        """A websocket message over the limit closes the socket (1009, message too big)."""

        async def checked() -> Message:
            message = await receive()
            if message["type"] == "websocket.receive":
                size = len(message.get("text") or "") + len(message.get("bytes") or b"")
                if size > self.limit:
                    reason = f"message over {self.limit} bytes"
                    await send({"type": "websocket.close", "code": 1009, "reason": reason})
                    return {"type": "websocket.disconnect", "code": 1009}
            return message

        return checked

    async def _refuse(self, scope: Scope, send: Send) -> None:
        body = _too_large(scope["path"], self.limit)
        headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class CodedTransportWS(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws, with a code on the errors the protocol handler sends itself
    (Strawberry's "Subscription limit reached" has none); the schema codes all the others."""

    async def send_message(self, message: Any) -> None:
        if message.get("type") == "error":
            for error in message.get("payload") or []:
                extensions = error.get("extensions") or {}
                if "code" not in extensions:
                    limited = error.get("message") == SUBSCRIPTION_LIMIT
                    code = ErrorCode.RATE_LIMITED if limited else ErrorCode.BAD_USER_INPUT
                    error["extensions"] = {**extensions, "code": code.value}
        try:
            await super().send_message(message)
        except WebSocketDisconnected:
            # A subscription's result after the handler closed the socket (say, for a
            # client's duplicate operation id): nobody to send it to; not a server error.
            log.debug("dropped a %s message for a closed socket", message.get("type"))

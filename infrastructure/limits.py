"""Limits on what one request may ask, each refused with a clear, coded error: GraphQL
documents (depth, aliases, tokens), request bodies (413), and websocket subscriptions per
connection. The per-student and per-address rates of register and drop are in ratelimit.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from graphql import ASTValidationRule
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.extensions import AddValidationRules, MaxTokensLimiter, SchemaExtension
from strawberry.extensions.max_aliases import create_validator as max_aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as max_depth_rule
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)

from domain.errors import ErrorCode
from infrastructure.settings import Settings
from resolvers.context import Context

SUBSCRIPTION_LIMIT = "Subscription limit reached"


def document_limits(settings: Settings) -> list[Callable[[], SchemaExtension]]:
    """Strawberry's QueryDepthLimiter and MaxAliasesLimiter rules, and MaxTokensLimiter, as
    factories for build_schema(limits=...). The rules are built once, so every request adds
    the same ones and the validation cache (keyed by the rules) keeps hitting."""
    rules: list[type[ASTValidationRule]] = [
        max_depth_rule(settings.max_query_depth, None),
        max_aliases_rule(settings.max_aliases),
    ]
    return [
        lambda: AddValidationRules(rules),
        lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
    ]


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
    its Content-Length, or, for a body without one (chunked), once the bytes read pass it."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
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
        await super().send_message(message)

"""Strawberry types, inputs and enums of the contract, and the Schema object."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    DisableIntrospection,
    SchemaExtension,
    ValidationCache,
)

from schema.checks import RefusingParserCache, WebsocketSubscriptions
from schema.errors import CodedErrors, code_in_place
from schema.operations import Mutation, Query, Subscription

ExtensionFactory = Callable[[], SchemaExtension]


def build_schema(
    introspection: bool = True,
    limits: Sequence[ExtensionFactory] = (),
    observers: Sequence[ExtensionFactory] = (),
) -> strawberry.Schema:
    """`observers` (metrics) come first, so they see each operation whole."""
    # Factories: a fresh extension per request; the document caches are shared by maxsize.
    extensions: list[type[SchemaExtension] | ExtensionFactory] = [
        *observers,
        CodedErrors,
        WebsocketSubscriptions,
        lambda: RefusingParserCache(maxsize=1024),
        lambda: ValidationCache(maxsize=1024),
        *limits,
    ]
    if not introspection:
        extensions.append(DisableIntrospection)
    return CourseregSchema(
        query=Query, mutation=Mutation, subscription=Subscription, extensions=extensions
    )


class CourseregSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        """Client mistakes and refusals are answers, not server errors: nothing to log here
        (coded() logs the unexpected ones with their request id). Strawberry calls this with
        every result's errors, also those CodedErrors never sees (a syntax error)."""
        context = getattr(execution_context, "context", None)
        code_in_place(errors, getattr(context, "request_id", "-"))


schema = build_schema()

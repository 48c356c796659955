"""One execution and one encoded frame per change, shared by every subscriber who would get
the same bytes.

Each subscriber keeps its own stream (resolvers/live.py: its checks, snapshot, version
filter and bounded queue), but a seatUpdates event is the same for everyone: its result
depends only on the document, the variables its selection reads and the section's state,
never on who asks (SeatUpdate's fields read the payload and nothing else). So the
per-event execution is memoized by those, and the JSON of its payload by that result: the
first subscriber of a change executes and encodes it, the next 9,999 reuse both, and the
socket handler (infrastructure/http/fanout.py) splices each subscriber's operation id in.

Only payloads named in SHAREABLE are shared: a waitlistPosition update speaks of one
student and is executed per subscriber, as before. A result with errors is never shared.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, cast

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import FieldNode, Node, OperationDefinitionNode, Visitor, visit
from graphql.pyutils import is_awaitable
from strawberry.extensions import SchemaExtension
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types import ExecutionContext

from schema.types import SeatUpdate


def _seat_update(u: SeatUpdate) -> Hashable:
    return (u.section_id, u.available_seats, u.total_seats, u.waitlist_length, u.version)


# Payload type -> its whole content as a key: equal keys must execute to equal results for
# anyone (no field of the type may depend on the context or the actor).
SHAREABLE: dict[type, Callable[[Any], Hashable]] = {SeatUpdate: _seat_update}

MAX_SHARED = 4096


class _Shared:
    __slots__ = ("encoded", "operation", "result")

    def __init__(self, operation: object, result: GraphQLExecutionResult) -> None:
        self.operation = operation  # held, so the id() in its key is never reused
        self.result = result
        self.encoded: str | None = None


class SharedResults:
    """The process's memo: (id(operation), variables, payload key) -> the result, and the
    result's data (by identity) -> its encoded payload. Bounded, least recently used out."""

    def __init__(self, limit: int = MAX_SHARED) -> None:
        self.limit = limit
        self._by_key: OrderedDict[Hashable, _Shared] = OrderedDict()
        self._by_data: dict[int, _Shared] = {}
        self.executions = 0  # shareable results computed (the rest were reused)
        self.encodings = 0  # shared payloads encoded (the rest were reused)

    def get(self, key: Hashable, operation: object) -> GraphQLExecutionResult | None:
        entry = self._by_key.get(key)
        if entry is None or entry.operation is not operation:
            return None
        self._by_key.move_to_end(key)
        return entry.result

    def put(self, key: Hashable, operation: object, result: GraphQLExecutionResult) -> None:
        self.executions += 1
        if result.errors or not isinstance(result.data, dict):
            return
        entry = _Shared(operation, result)
        old = self._by_key.pop(key, None)
        if old is not None:
            self._forget(old)
        self._by_key[key] = entry
        self._by_data[id(result.data)] = entry
        while len(self._by_key) > self.limit:
            _, evicted = self._by_key.popitem(last=False)
            self._forget(evicted)

    def _forget(self, entry: _Shared) -> None:
        if self._by_data.get(id(entry.result.data)) is entry:
            del self._by_data[id(entry.result.data)]

    def encoded(self, data: object, encode: Callable[[object], str]) -> str | None:
        """The JSON of {"data": data} if `data` is a shared result's (encoded once), else
        None: the caller encodes its own."""
        entry = self._by_data.get(id(data))
        if entry is None or entry.result.data is not data:
            return None
        if entry.encoded is None:
            self.encodings += 1
            entry.encoded = encode({"data": data})
        return entry.encoded

    def clear(self) -> None:
        self._by_key.clear()
        self._by_data.clear()


shared_results = SharedResults()


class _Variables(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def enter_variable(self, node: Any, *_: Any) -> None:
        self.names.add(node.name.value)


def event_variables(operation: OperationDefinitionNode, fragments: dict[str, Any]) -> list[str]:
    """The variables an event's execution may read: all but those only in the root fields'
    arguments, which choose the source stream (Strawberry resolves a subscription field of
    an event to the event itself, its arguments unread). So subscribers of one document
    watching different sections share the results of the sections they have in common."""
    found = _Variables()
    parts: list[Node] = [*(operation.directives or ()), *fragments.values()]
    for selection in operation.selection_set.selections:
        if isinstance(selection, FieldNode):
            parts.extend(selection.directives or ())
            if selection.selection_set is not None:
                parts.append(selection.selection_set)
        else:
            parts.append(selection)
    for part in parts:
        visit(part, found)
    return sorted(found.names)


class _Executed:
    """What graphql-core's map over the source stream asks of a per-event executor
    (execute_subscription_event calls execute_operation), for a result already computed."""

    __slots__ = ("result",)

    def __init__(self, result: GraphQLExecutionResult) -> None:
        self.result = result

    def execute_operation(self, serially: bool | None = None) -> GraphQLExecutionResult:
        return self.result


class SharedEventExecutor(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor, whose per-event copies (one per subscription event) reuse the
    result of an equal event of the same operation and variables."""

    _share_prefix: Hashable | None = None
    _share_key: Hashable | None = None

    def build_per_event_executor(self, payload: Any) -> Any:
        content = SHAREABLE.get(type(payload))
        if content is None:
            return super().build_per_event_executor(payload)
        if self._share_prefix is None:  # once per subscription, not per event
            coerced = self.variable_values.coerced
            read = event_variables(self.operation, self.fragment_definitions)
            values = repr([(name, name in coerced, coerced.get(name)) for name in read])
            self._share_prefix = (id(self.operation), values)
        key = (self._share_prefix, content(payload))
        found = shared_results.get(key, self.operation)
        if found is not None:
            return _Executed(found)  # no copy of the executor: the result is at hand
        executor = cast(SharedEventExecutor, super().build_per_event_executor(payload))
        executor._share_key = key
        return executor

    def execute_operation(self, serially: bool | None = None) -> Any:
        key = self._share_key
        if key is None:
            return super().execute_operation(serially)
        result = super().execute_operation(serially)
        if is_awaitable(result):
            return self._remember(key, result)
        if isinstance(result, GraphQLExecutionResult):
            shared_results.put(key, self.operation, result)
        return result

    async def _remember(self, key: Hashable, pending: Awaitable[Any]) -> Any:
        result = await pending
        if isinstance(result, GraphQLExecutionResult):
            shared_results.put(key, self.operation, result)
        return result


class LeanStreamRunner(SchemaExtensionsRunner):
    """Strawberry's extension runner, without the per-result work that can do nothing: for
    every streamed result it enters each extension's on_stream_result hook and awaits each
    get_results, a fifth of a shared push's CPU. Skipped when no extension could act: a
    result without errors when the only stream hooks act on errors alone (an extension
    saying so with `stream_hook_for_errors_only`), and get_results when none defines it."""

    _checked = False
    _quiet_hooks = False
    _no_results = False

    def _check(self) -> None:
        base = SchemaExtension
        self._quiet_hooks = all(
            type(e).on_stream_result is base.on_stream_result
            or getattr(e, "stream_hook_for_errors_only", False)
            for e in self.extensions
        )
        self._no_results = all(type(e).get_results is base.get_results for e in self.extensions)
        self._checked = True

    def on_stream_result(self, result: Any) -> Any:
        if not self._checked:
            self._check()
        if self._quiet_hooks and not getattr(result, "errors", None):
            return contextlib.nullcontext()
        return super().on_stream_result(result)

    async def get_extensions_results(self, ctx: ExecutionContext) -> dict[str, Any]:
        if not self._checked:
            self._check()
        if self._no_results:
            return dict(ctx.extensions_results)
        return await super().get_extensions_results(ctx)

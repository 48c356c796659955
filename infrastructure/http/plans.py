"""Prepared plans: the hot mutations of the trusted documents (register, drop, swap,
claimSeat, declineOffer) executed without graphql-core's per-request work, as graphql-jit
does for graphql-js. At start-up each document is parsed and validated once (with the
served schema's depth, alias and token limits); a plan holds a variable coercer built from
the document's variable definitions, the root resolvers to call, and the selection sets
collected per outcome of the document's @include/@skip conditions. A request then runs:
coerce the variables, call the resolver, walk the returned objects by the plan.

The answer is graphql-core's, byte for byte: the plan returns the same ExecutionResult
(data in selection order, leaves through each type's own coerce_output_value, errors
located by graphql-core's located_error and coded by schema/errors.py's coded()), and the
view encodes it as it encodes any result. Anything the plan is not sure of before a resolver
runs (variables that do not coerce, an argument graphql-core would refuse, an operation
name that is not the document's) goes to the normal path, which answers with its own error;
after a resolver ran nothing is re-run. Hand-written rather than a library: graphql-core has
no compiled execution for Python (graphql-jit is JavaScript).

Only documents whose root fields are those mutations and whose selections below them read
plain data (no field resolver, no arguments, no abstract types) are prepared; everything
else keeps Strawberry and graphql-core unchanged (COURSEREG_PLANS=false: every document)."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import strawberry
from graphql import (
    BooleanValueNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLEnumType,
    GraphQLError,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    Undefined,
    VariableNode,
    coerce_input_literal,
    is_required_argument,
    is_required_input_field,
    located_error,
    parse,
    specified_rules,
    type_from_ast,
    validate,
)
from graphql.pyutils import is_iterable
from graphql.utilities.coerce_input_value import coerce_default_value
from strawberry.schema.schema_converter import get_arguments
from strawberry.types import ExecutionResult
from strawberry.types.field import StrawberryField

from infrastructure.http.limits import aliases_rule, depth_rule
from infrastructure.metrics import GRAPHQL_OPERATIONS, GRAPHQL_SECONDS, operation_label
from infrastructure.settings import Settings
from resolvers.context import Context
from schema.errors import coded

# Root fields whose resolvers (resolvers/registration.py) read nothing of `info` but its
# context, so a plan can call them with an Info that carries only the context.
PLANNED_ROOTS = frozenset({"register", "drop", "swap", "claimSeat", "declineOffer"})
TYPENAME = "__typename"
# Shapes kept per plan, one per outcome of its @include/@skip variables (2**n of them).
MAX_SHAPES = 64


class NotPlannable(Exception):
    """A document this module does not prepare (the normal path runs it)."""


class _Refused(Exception):
    """Before any resolver ran: the normal path answers this request."""


# Variables: a coercer per input type, graphql-core's coerce_input_value unrolled.

Coercer = Callable[[Any], Any]


def _coercer(type_: GraphQLInputType) -> Coercer:
    if isinstance(type_, GraphQLNonNull):
        inner = _nullable_coercer(type_.of_type)

        def non_null(value: Any) -> Any:
            if value is None:
                raise _Refused
            return inner(value)

        return non_null

    inner_nullable = _nullable_coercer(type_)

    def nullable(value: Any) -> Any:
        return None if value is None else inner_nullable(value)

    return nullable


def _nullable_coercer(type_: GraphQLInputType) -> Coercer:
    if isinstance(type_, GraphQLList):
        item = _coercer(type_.of_type)

        def listed(value: Any) -> Any:
            if not is_iterable(value):
                return [item(value)]
            return [item(v) for v in value]

        return listed
    if isinstance(type_, GraphQLInputObjectType):
        return _object_coercer(type_)
    if isinstance(type_, GraphQLScalarType | GraphQLEnumType):
        coerce = type_.coerce_input_value

        def leaf(value: Any) -> Any:
            try:
                coerced = coerce(value)
            except Exception as exc:
                raise _Refused from exc
            if coerced is Undefined:
                raise _Refused
            return coerced

        return leaf
    raise NotPlannable(f"input type {type_}")


def _object_coercer(type_: GraphQLInputObjectType) -> Coercer:
    if type_.is_one_of:
        raise NotPlannable(f"oneOf input {type_.name}")
    fields = [
        (
            name,
            field.out_name or name,
            _coercer(field.type),
            is_required_input_field(field),
            field,
        )
        for name, field in type_.fields.items()
    ]
    known = frozenset(type_.fields)
    out_type = type_.out_type

    def input_object(value: Any) -> Any:
        if not isinstance(value, dict) or not known.issuperset(value):
            raise _Refused
        coerced: dict[str, Any] = {}
        for name, out_name, coerce, required, field in fields:
            if name in value:
                coerced[out_name] = coerce(value[name])
            elif required:
                raise _Refused
            else:
                default = coerce_default_value(field)
                if default is not Undefined:
                    coerced[out_name] = default
        return out_type(coerced)

    return input_object


def _variables_coercer(
    schema: Any, operation: OperationDefinitionNode
) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """Coerced variables (graphql-core's coerce_variable_values), or _Refused."""
    definitions = []
    for definition in operation.variable_definitions:
        type_ = cast(GraphQLInputType, type_from_ast(schema, definition.type))
        if definition.default_value is not None:
            raise NotPlannable("a variable with a default value")
        definitions.append(
            (definition.variable.name.value, _coercer(type_), isinstance(type_, GraphQLNonNull))
        )

    def coerce(given: Mapping[str, Any]) -> dict[str, Any]:
        coerced: dict[str, Any] = {}
        for name, coerce_one, required in definitions:
            if name in given:
                coerced[name] = coerce_one(given[name])
            elif required:
                raise _Refused
        return coerced

    return coerce


# Selections: fields collected per object type, for each outcome of the conditions.

Condition = tuple[bool, str | bool]  # (include?, a variable's name or a literal)


@dataclass(frozen=True)
class _Entry:
    key: str
    node: FieldNode
    conditions: tuple[Condition, ...]


def _conditions(node: Any) -> tuple[Condition, ...]:
    found: list[Condition] = []
    for directive in node.directives or ():
        name = directive.name.value
        if name not in ("include", "skip"):
            raise NotPlannable(f"directive @{name}")
        (argument,) = directive.arguments
        value = argument.value
        if isinstance(value, VariableNode):
            found.append((name == "include", value.name.value))
        elif isinstance(value, BooleanValueNode):
            found.append((name == "include", value.value))
        else:
            raise NotPlannable("a condition that is neither a variable nor a literal")
    return tuple(found)


class _Collector:
    def __init__(self, schema: Any, fragments: Mapping[str, FragmentDefinitionNode]) -> None:
        self.schema = schema
        self.fragments = fragments

    def entries(
        self,
        parent: GraphQLObjectType,
        selections: SelectionSetNode,
        outer: tuple[Condition, ...] = (),
    ) -> list[_Entry]:
        """Fields in document order, fragments expanded (their type conditions are static on
        an object type), each with the @include/@skip conditions it sits under."""
        found: list[_Entry] = []
        for node in selections.selections:
            conditions = outer + _conditions(node)
            if isinstance(node, FieldNode):
                key = node.alias.value if node.alias else node.name.value
                found.append(_Entry(key, node, conditions))
                continue
            if isinstance(node, InlineFragmentNode):
                condition, selection_set = node.type_condition, node.selection_set
            else:
                assert isinstance(node, FragmentSpreadNode)
                fragment = self.fragments[node.name.value]
                condition, selection_set = fragment.type_condition, fragment.selection_set
            if condition is not None:
                on = self.schema.get_type(condition.name.value)
                if not (on is parent or self.schema.is_sub_type(on, parent)):
                    continue  # never matches this object type
            found.extend(self.entries(parent, selection_set, conditions))
        return found


def _passes(conditions: Iterable[Condition], variables: Mapping[str, Any]) -> bool:
    for include, value in conditions:
        shown = variables[value] if isinstance(value, str) else value
        if bool(shown) != include:
            return False
    return True


def _grouped(entries: Sequence[_Entry], variables: Mapping[str, Any]) -> dict[str, list[FieldNode]]:
    groups: dict[str, list[FieldNode]] = {}
    for entry in entries:
        if _passes(entry.conditions, variables):
            groups.setdefault(entry.key, []).append(entry.node)
    return groups


# Completion: graphql-core's complete_value, for object, list and leaf types.


class _Path:
    """A response path, linked as graphql-core's Path (as_list for errors)."""

    __slots__ = ("key", "prev")

    def __init__(self, prev: _Path | None, key: str | int) -> None:
        self.prev = prev
        self.key = key

    def as_list(self) -> list[str | int]:
        keys: list[str | int] = []
        path: _Path | None = self
        while path is not None:
            keys.append(path.key)
            path = path.prev
        keys.reverse()
        return keys


class _Shape:
    """An object type's selection for one outcome of the conditions."""

    __slots__ = ("fields",)

    def __init__(self, fields: list[tuple[str, str | None, list[FieldNode], Any, Any]]) -> None:
        # (response key, python attribute or None for __typename, nodes, type, sub-shape)
        self.fields = fields


class Plan:
    """One prepared document: its operation's name, the variable coercer, the root fields
    and the shapes of their results."""

    def __init__(self, schema: strawberry.Schema, document: DocumentNode) -> None:
        core = schema._schema
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if len(operations) != 1 or operations[0].operation is not OperationType.MUTATION:
            raise NotPlannable("not one mutation")
        self.operation = operation = operations[0]
        self.name = operation.name.value if operation.name else None
        if operation.directives:
            raise NotPlannable("operation directives")
        fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.schema = schema
        self._collector = _Collector(core, fragments)
        self._coerce = _variables_coercer(core, operation)
        self._mutation = core.mutation_type
        self._roots = self._collector.entries(self._mutation, operation.selection_set)
        self._condition_names = sorted(self._names(document))
        self._shapes: dict[tuple[Any, ...], list[tuple[str, Any]]] = {}
        self._check(self._roots, self._mutation, root=True)
        label = operation_label(document, self.name)
        self._ok = GRAPHQL_OPERATIONS.labels("mutation", label, "ok")
        self._error = GRAPHQL_OPERATIONS.labels("mutation", label, "error")
        self._seconds = GRAPHQL_SECONDS.labels("mutation", label)
        self.answered = 0  # requests this plan answered (the rest went to graphql-core)

    def _names(self, document: DocumentNode) -> set[str]:
        """Variables the conditions read: each must be a Boolean! (always coerced)."""
        names: set[str] = set()
        required = {
            d.variable.name.value
            for d in self.operation.variable_definitions
            if isinstance(type_from_ast(self.schema._schema, d.type), GraphQLNonNull)
        }

        def visit(selections: SelectionSetNode | None) -> None:
            for node in selections.selections if selections else ():
                for _, value in _conditions(node):
                    if isinstance(value, str):
                        if value not in required:
                            raise NotPlannable(f"condition on a nullable ${value}")
                        names.add(value)
                visit(getattr(node, "selection_set", None))

        visit(self.operation.selection_set)
        for fragment in self._collector.fragments.values():
            visit(fragment.selection_set)
        return names

    def _check(self, entries: Sequence[_Entry], parent: GraphQLObjectType, root: bool) -> None:
        """Raises NotPlannable unless every field below the roots is plain data."""
        for entry in entries:
            name = entry.node.name.value
            if name == TYPENAME:
                continue
            field = parent.fields.get(name)
            if field is None:
                raise NotPlannable(f"{parent.name}.{name}")
            _check_field(parent, name, field, entry.node, root)
            named = _named(field.type)
            if isinstance(named, GraphQLObjectType):
                if named.is_type_of is not None:
                    raise NotPlannable(f"{named.name} has is_type_of")
                selections = cast(SelectionSetNode, entry.node.selection_set)
                self._check(self._collector.entries(named, selections), named, root=False)
            elif not isinstance(named, GraphQLScalarType | GraphQLEnumType):
                raise NotPlannable(f"{parent.name}.{name}: abstract type")

    def _shape(
        self, parent: GraphQLObjectType, nodes: Sequence[FieldNode], variables: Any
    ) -> _Shape:
        entries = [
            e
            for node in nodes
            for e in self._collector.entries(parent, cast(SelectionSetNode, node.selection_set))
        ]
        fields = []
        for key, group in _grouped(entries, variables).items():
            name = group[0].name.value
            if name == TYPENAME:
                fields.append((key, None, group, parent.name, None))
                continue
            field = parent.fields[name]
            definition = cast(StrawberryField, field.extensions["strawberry-definition"])
            named = _named(field.type)
            sub = (
                self._shape(named, group, variables)
                if isinstance(named, GraphQLObjectType)
                else None
            )
            fields.append((key, definition.python_name, group, field.type, sub))
        return _Shape(fields)

    def _root_shapes(self, variables: Mapping[str, Any]) -> list[tuple[str, Any]]:
        outcome = tuple(bool(variables[name]) for name in self._condition_names)
        found = self._shapes.get(outcome)
        if found is None:
            found = []
            for key, group in _grouped(self._roots, variables).items():
                name = group[0].name.value
                field = self._mutation.fields[name]
                named = _named(field.type)
                sub = (
                    self._shape(named, group, variables)
                    if isinstance(named, GraphQLObjectType)
                    else None
                )
                found.append((key, (name, group, field, sub)))
            if len(self._shapes) < MAX_SHAPES:
                self._shapes[outcome] = found
        return found

    async def run(
        self, context: Context, given: Mapping[str, Any] | None
    ) -> ExecutionResult | None:
        """The result graphql-core would give, or None: the normal path answers."""
        started = time.perf_counter()
        try:
            variables = self._coerce(given or {})
            roots = self._root_shapes(variables)
            calls = [self._arguments(key, root, variables) for key, root in roots]
        except _Refused:
            return None
        errors: list[GraphQLError] = []
        data: dict[str, Any] | None = {}
        for (key, (_, nodes, field, sub)), call in zip(roots, calls, strict=True):
            path = _Path(None, key)
            try:
                try:
                    value = await call(context)
                    completed = _complete(field.type, nodes, value, sub, path, errors)
                except Exception as raw:
                    error = located_error(raw, nodes, path.as_list())
                    if isinstance(field.type, GraphQLNonNull):
                        raise error from None
                    errors.append(error)
                    completed = None
            except GraphQLError as error:
                errors.append(error)
                data = None
                break
            assert data is not None
            data[key] = completed
        request_id = context.request_id
        coded_errors = [coded(e, request_id) for e in errors] or None
        (self._error if coded_errors else self._ok).inc()
        self._seconds.observe(time.perf_counter() - started)
        self.answered += 1
        return ExecutionResult(data=data, errors=coded_errors)

    def _arguments(
        self, key: str, root: Any, variables: Mapping[str, Any]
    ) -> Callable[[Context], Any]:
        """The root resolver's call, its arguments converted as Strawberry converts them."""
        name, nodes, field, _ = root
        if len(nodes) != 1 and any(n.arguments for n in nodes[1:]):
            raise _Refused  # merged fields: validation made their arguments equal; rare
        values = _argument_values(field, nodes[0], variables)
        definition = cast(StrawberryField, field.extensions["strawberry-definition"])
        schema = self.schema

        async def call(context: Context) -> Any:
            info = schema.config.info_class(
                _raw_info=cast(Any, _RawInfo(context, name)), _field=definition
            )
            args, kwargs = get_arguments(
                field=definition,
                source=None,
                info=info,
                kwargs=values,
                config=schema.config,
                scalar_registry=schema.schema_converter.scalar_registry,
            )
            result = definition.get_result(None, info=info, args=args, kwargs=kwargs)
            return await result if inspect.isawaitable(result) else result

        del key
        return call


class _RawInfo:
    """What a planned root resolver reads of graphql-core's resolve info: the context."""

    __slots__ = ("context", "field_name")

    def __init__(self, context: Context, field_name: str) -> None:
        self.context = context
        self.field_name = field_name


def _argument_values(
    field: GraphQLField, node: FieldNode, variables: Mapping[str, Any]
) -> dict[str, Any]:
    """graphql-core's get_argument_values for variables and constant literals; _Refused for
    what it would refuse (a missing or null value of a non-null argument)."""
    given = {argument.name.value: argument.value for argument in node.arguments}
    values: dict[str, Any] = {}
    for name, argument in field.args.items():
        value_node = given.get(name)
        if value_node is None or (
            isinstance(value_node, VariableNode) and value_node.name.value not in variables
        ):
            if is_required_argument(argument):
                raise _Refused
            if argument.default_value is not Undefined or getattr(argument, "default", None):
                raise _Refused  # defaults: left to graphql-core
            continue
        if isinstance(value_node, VariableNode):
            value = variables[value_node.name.value]
            if value is None and isinstance(argument.type, GraphQLNonNull):
                raise _Refused
        else:  # a constant literal (checked when the plan was made)
            value = coerce_input_literal(value_node, argument.type)
            if value is Undefined:
                raise _Refused
        values[argument.out_name or name] = value
    return values


def _check_field(
    parent: GraphQLObjectType, name: str, field: GraphQLField, node: FieldNode, root: bool
) -> None:
    """A root field the plans call, or a plain attribute below one."""
    definition = (field.extensions or {}).get("strawberry-definition")
    if not isinstance(definition, StrawberryField):
        raise NotPlannable(f"{parent.name}.{name} is not Strawberry's")
    if definition.extensions or definition.permission_classes:
        raise NotPlannable(f"{parent.name}.{name} has extensions or permissions")
    if not root:
        if definition.base_resolver is not None or field.args:
            raise NotPlannable(f"{parent.name}.{name} resolves")
        return
    if name not in PLANNED_ROOTS:
        raise NotPlannable(f"root field {name}")
    for argument in node.arguments:
        if not isinstance(argument.value, VariableNode) and _has_variables(argument.value):
            raise NotPlannable("an argument literal holding variables")


def _has_variables(node: Any) -> bool:
    if isinstance(node, VariableNode):
        return True
    inner = getattr(node, "values", None) or [f.value for f in getattr(node, "fields", ())]
    return any(_has_variables(n) for n in inner)


def _named(type_: Any) -> Any:
    while isinstance(type_, GraphQLNonNull | GraphQLList):
        type_ = type_.of_type
    return type_


def _complete(
    type_: GraphQLOutputType,
    nodes: list[FieldNode],
    value: Any,
    sub: _Shape | None,
    path: _Path,
    errors: list[GraphQLError],
) -> Any:
    """graphql-core's complete_value (its errors raised as it raises them)."""
    if isinstance(type_, GraphQLNonNull):
        completed = _complete(type_.of_type, nodes, value, sub, path, errors)
        if completed is None:
            raise TypeError("Cannot return null for a non-nullable field.")
        return completed
    if value is None:
        return None
    if isinstance(type_, GraphQLList):
        return _complete_list(type_, nodes, value, sub, path, errors)
    if isinstance(type_, GraphQLObjectType):
        assert sub is not None
        return _object(value, sub, path, errors)
    coerced = cast(GraphQLScalarType | GraphQLEnumType, type_).coerce_output_value(value)
    if coerced is Undefined or coerced is None:
        raise TypeError("A leaf coerced to no value.")
    return coerced


def _complete_list(
    type_: GraphQLList[Any],
    nodes: list[FieldNode],
    value: Any,
    sub: _Shape | None,
    path: _Path,
    errors: list[GraphQLError],
) -> list[Any]:
    """graphql-core's complete_list_value: an item's error nulls the item, or the list when
    items are non-null."""
    if not is_iterable(value):
        raise GraphQLError("Expected Iterable, but did not find one.")
    item_type = type_.of_type
    items = []
    for index, item in enumerate(value):
        item_path = _Path(path, index)
        try:
            items.append(_complete(item_type, nodes, item, sub, item_path, errors))
        except Exception as raw:
            error = located_error(raw, nodes, item_path.as_list())
            if isinstance(item_type, GraphQLNonNull):
                raise error from None
            errors.append(error)
            items.append(None)
    return items


def _object(value: Any, shape: _Shape, path: _Path, errors: list[GraphQLError]) -> dict[str, Any]:
    """graphql-core's execute_fields over an object type's plain fields."""
    data: dict[str, Any] = {}
    for key, attribute, nodes, type_, sub in shape.fields:
        if attribute is None:
            data[key] = type_  # __typename: the object type's name
            continue
        field_path = _Path(path, key)
        try:
            data[key] = _complete(type_, nodes, getattr(value, attribute), sub, field_path, errors)
        except Exception as raw:
            error = located_error(raw, nodes, field_path.as_list())
            if isinstance(type_, GraphQLNonNull):
                raise error from None
            errors.append(error)
            data[key] = None
    return data


class Plans:
    """The prepared plans of a set of documents, by document text."""

    def __init__(self, schema: strawberry.Schema, settings: Settings) -> None:
        self.schema = schema
        self.settings = settings
        self._by_text: dict[str, Plan] = {}

    def add(self, text: str) -> Plan | None:
        """Prepares a document if it can be (valid, within the limits, plannable)."""
        settings = self.settings
        try:
            document = parse(text, max_tokens=settings.max_tokens)
        except GraphQLError:
            return None
        rules = [
            *specified_rules,
            depth_rule(settings.max_query_depth),
            aliases_rule(settings.max_aliases),
        ]
        if validate(self.schema._schema, document, rules):
            return None
        try:
            plan = Plan(self.schema, document)
        except NotPlannable:
            return None
        self._by_text[text] = plan
        return plan

    def get(self, text: str | None) -> Plan | None:
        return self._by_text.get(text) if text is not None else None

    def __len__(self) -> int:
        return len(self._by_text)

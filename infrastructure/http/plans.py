"""Prepared plans: the hot mutations of the trusted documents (register, drop, swap,
claimSeat, declineOffer) executed without graphql-core's per-request work, as graphql-jit
does for graphql-js. At start-up each document is parsed and validated once (with the
served schema's depth, alias and token limits); a plan holds a variable coercer built from
the document's variable definitions, the root resolvers to call with their arguments
converted as Strawberry converts them (compiled per input type), and per outcome of the
document's @include/@skip conditions the fields collected and a completer compiled per
field. A request then runs: coerce the variables, call the resolver, walk the returned
objects by the plan.

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
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import MISSING, dataclass
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
from strawberry.extensions import SchemaExtension
from strawberry.relay.types import GlobalID
from strawberry.types import ExecutionResult

# Strawberry's own tests of what its convert_argument passes through unchanged.
from strawberry.types.arguments import _is_leaf_type, _is_optional_leaf_type
from strawberry.types.base import (
    StrawberryList,
    StrawberryMaybe,
    StrawberryOptional,
    has_object_definition,
)
from strawberry.types.enum import has_enum_definition
from strawberry.types.field import StrawberryField
from strawberry.types.lazy_type import LazyType
from strawberry.types.unset import UNSET

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
    for definition in operation.variable_definitions or ():
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


# Completion: graphql-core's complete_value, compiled per field into a function of
# (value, path, errors); a path is linked tuples (prev, key), made into a list for errors.

Path = tuple[Any, str | int]
Completer = Callable[[Any, Path, list[GraphQLError]], Any]


def _as_list(path: Path | None) -> list[str | int]:
    keys: list[str | int] = []
    while path is not None:
        path, key = path
        keys.append(key)
    keys.reverse()
    return keys


class _Shape:
    """An object type's selection for one outcome of the conditions: per response key the
    attribute read (None for __typename, whose value is the type's name), the field's nodes,
    its completer and whether it is non-null."""

    __slots__ = ("fields",)

    def __init__(self, fields: list[tuple[str, str | None, list[FieldNode], Any, bool]]) -> None:
        self.fields = fields


def _completer(type_: GraphQLOutputType, nodes: list[FieldNode], sub: _Shape | None) -> Completer:
    """graphql-core's complete_value for this type (its errors raised as it raises them)."""
    if isinstance(type_, GraphQLNonNull):
        inner = _completer(type_.of_type, nodes, sub)

        def non_null(value: Any, path: Path, errors: list[GraphQLError]) -> Any:
            completed = inner(value, path, errors)
            if completed is None:
                raise TypeError("Cannot return null for a non-nullable field.")
            return completed

        return non_null
    if isinstance(type_, GraphQLList):
        return _list_completer(type_, nodes, sub)
    if isinstance(type_, GraphQLObjectType):
        assert sub is not None
        shape = sub

        def object_value(value: Any, path: Path, errors: list[GraphQLError]) -> Any:
            return None if value is None else _object(value, shape, path, errors)

        return object_value
    coerce = cast(GraphQLScalarType | GraphQLEnumType, type_).coerce_output_value

    def leaf(value: Any, path: Path, errors: list[GraphQLError]) -> Any:
        if value is None:
            return None
        coerced = coerce(value)
        if coerced is Undefined or coerced is None:
            raise TypeError("A leaf coerced to no value.")
        return coerced

    return leaf


def _list_completer(
    type_: GraphQLList[Any], nodes: list[FieldNode], sub: _Shape | None
) -> Completer:
    """complete_list_value: an item's error nulls the item, or the list when items are
    non-null."""
    item_type = type_.of_type
    item = _completer(item_type, nodes, sub)
    non_null = isinstance(item_type, GraphQLNonNull)

    def listed(value: Any, path: Path, errors: list[GraphQLError]) -> Any:
        if value is None:
            return None
        if not is_iterable(value):
            raise GraphQLError("Expected Iterable, but did not find one.")
        items = []
        for index, one in enumerate(value):
            try:
                items.append(item(one, (path, index), errors))
            except Exception as raw:
                error = located_error(raw, nodes, _as_list((path, index)))
                if non_null:
                    raise error from None
                errors.append(error)
                items.append(None)
        return items

    return listed


def _object(value: Any, shape: _Shape, path: Path, errors: list[GraphQLError]) -> dict[str, Any]:
    """execute_fields over an object type's plain fields."""
    data: dict[str, Any] = {}
    for key, attribute, nodes, complete, non_null in shape.fields:
        if attribute is None:
            data[key] = complete  # __typename: the object type's name
            continue
        try:
            data[key] = complete(getattr(value, attribute), (path, key), errors)
        except Exception as raw:
            error = located_error(raw, nodes, _as_list((path, key)))
            if non_null:
                raise error from None
            errors.append(error)
            data[key] = None
    return data


@dataclass(frozen=True)
class _Root:
    """A root field of one outcome of the conditions: its resolver's call and completer."""

    key: str
    nodes: list[FieldNode]
    field: GraphQLField
    complete: Completer
    call: Callable[[Context, dict[str, Any]], Awaitable[Any]]


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
        assert core.mutation_type is not None  # the schema has mutations
        self._mutation = core.mutation_type
        self._roots = self._collector.entries(self._mutation, operation.selection_set)
        self._condition_names = sorted(self._names(document))
        self._shapes: dict[tuple[Any, ...], list[_Root]] = {}
        self._check(self._roots, self._mutation, root=True)
        self._calls = {
            id(e.node): _resolver_call(
                schema, e.node.name.value, self._mutation.fields[e.node.name.value]
            )
            for e in self._roots
        }
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
            for d in self.operation.variable_definitions or ()
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

    def _completer_of(
        self, field: GraphQLField, nodes: list[FieldNode], variables: Any
    ) -> Completer:
        named = _named(field.type)
        sub = None
        if isinstance(named, GraphQLObjectType):
            entries = [
                e
                for node in nodes
                for e in self._collector.entries(named, cast(SelectionSetNode, node.selection_set))
            ]
            fields: list[tuple[str, str | None, list[FieldNode], Any, bool]] = []
            for key, group in _grouped(entries, variables).items():
                name = group[0].name.value
                if name == TYPENAME:
                    fields.append((key, None, group, named.name, True))
                    continue
                below = named.fields[name]
                definition = cast(StrawberryField, below.extensions["strawberry-definition"])
                complete = self._completer_of(below, group, variables)
                non_null = isinstance(below.type, GraphQLNonNull)
                fields.append((key, definition.python_name, group, complete, non_null))
            sub = _Shape(fields)
        return _completer(field.type, nodes, sub)

    def _root_shapes(self, variables: Mapping[str, Any]) -> list[_Root]:
        outcome = tuple(bool(variables[name]) for name in self._condition_names)
        found = self._shapes.get(outcome)
        if found is None:
            found = []
            for key, group in _grouped(self._roots, variables).items():
                field = self._mutation.fields[group[0].name.value]
                complete = self._completer_of(field, group, variables)
                found.append(_Root(key, group, field, complete, self._calls[id(group[0])]))
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
            # graphql-core reads a merged field's arguments from its first node.
            arguments = [_argument_values(r.field, r.nodes[0], variables) for r in roots]
        except _Refused:
            return None
        errors: list[GraphQLError] = []
        data: dict[str, Any] | None = {}
        for root, values in zip(roots, arguments, strict=True):
            path: Path = (None, root.key)
            try:
                try:
                    completed = root.complete(await root.call(context, values), path, errors)
                except Exception as raw:
                    error = located_error(raw, root.nodes, [root.key])
                    if isinstance(root.field.type, GraphQLNonNull):
                        raise error from None
                    errors.append(error)
                    completed = None
            except GraphQLError as error:
                errors.append(error)
                data = None
                break
            assert data is not None
            data[root.key] = completed
        request_id = context.request_id
        coded_errors = [coded(e, request_id) for e in errors] or None
        (self._error if coded_errors else self._ok).inc()
        self._seconds.observe(time.perf_counter() - started)
        self.answered += 1
        return ExecutionResult(data=data, errors=coded_errors)


def _resolver_call(
    schema: strawberry.Schema, name: str, field: GraphQLField
) -> Callable[[Context, dict[str, Any]], Awaitable[Any]]:
    """The root resolver called as Strawberry calls it (schema_converter.get_arguments):
    arguments converted to their Python types, self, root, parent and info filled in."""
    definition = cast(StrawberryField, field.extensions["strawberry-definition"])
    resolver = definition.base_resolver
    assert resolver is not None
    function: Any = resolver.wrapped_func
    if not callable(function):  # a staticmethod or classmethod left unbound
        raise NotPlannable(f"resolver of {name}")
    config = schema.config
    registry = schema.schema_converter.scalar_registry
    converters = [
        (
            config.name_converter.from_argument(argument),
            argument.python_name,
            _converter(argument.type, registry, config),
        )
        for argument in definition.arguments
    ]
    self_first = resolver.self_parameter is not None
    given_source = [
        p.name for p in (resolver.parent_parameter, resolver.root_parameter) if p is not None
    ]
    info_name = resolver.info_parameter.name if resolver.info_parameter else None
    info_class = config.info_class

    async def call(context: Context, values: dict[str, Any]) -> Any:
        kwargs = {
            python: convert(values[graphql])
            for graphql, python, convert in converters
            if graphql in values
        }
        for source in given_source:
            kwargs[source] = None
        if info_name is not None:
            kwargs[info_name] = info_class(
                _raw_info=cast(Any, _RawInfo(context, name)), _field=definition
            )
        result = function(*([None] if self_first else []), **kwargs)
        return await result if inspect.isawaitable(result) else result

    return call


def _converter(type_: Any, registry: Any, config: Any) -> Callable[[Any], Any]:
    """Strawberry's convert_argument for this type, compiled: Optional, lists, scalars,
    enums and input types (no Maybe, GlobalID, lazy or custom from_input: not planned)."""
    if isinstance(type_, StrawberryMaybe):
        raise NotPlannable("Maybe arguments")
    if isinstance(type_, StrawberryOptional):
        return _converter(type_.of_type, registry, config)
    core = _core_converter(type_, registry, config)

    def convert(value: Any) -> Any:
        if value is None:
            return None
        if value is UNSET:
            return UNSET
        return core(value)

    return convert


def _core_converter(type_: Any, registry: Any, config: Any) -> Callable[[Any], Any]:
    if type_ is GlobalID or isinstance(type_, LazyType):
        raise NotPlannable("GlobalID or lazy arguments")
    if isinstance(type_, StrawberryList):
        item = type_.of_type
        if _is_leaf_type(item, registry, skip_classes=(GlobalID,)) or _is_optional_leaf_type(
            item, registry, skip_classes=(GlobalID,)
        ):
            return list  # copied, as Strawberry copies it
        convert_item = _converter(item, registry, config)
        return lambda value: [convert_item(x) for x in value]
    if _is_leaf_type(type_, registry) or has_enum_definition(type_):
        return lambda value: value
    if not has_object_definition(type_):
        raise NotPlannable(f"argument type {type_}")
    definition = type_.__strawberry_definition__
    if definition.from_input is not None or not definition.is_input:
        raise NotPlannable(f"input {type_} builds itself")
    implicit = {
        f.python_name: None
        for f in definition.fields
        if f.default_value is MISSING and f.default_factory is MISSING
    }
    fields = [
        (
            config.name_converter.from_field(f),
            f.python_name,
            _converter(f.resolve_type(type_definition=definition), registry, config),
        )
        for f in definition.fields
    ]

    def input_object(value: Any) -> Any:
        kwargs = dict(implicit)
        for graphql, python, convert in fields:
            if graphql in value:
                kwargs[python] = convert(value[graphql])
        return type_(**kwargs)

    return input_object


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
    given = {argument.name.value: argument.value for argument in node.arguments or ()}
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
    for argument in node.arguments or ():
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


class Plans:
    """The prepared plans of a set of documents, by document text. None at all when the
    schema resolves fields through something a plan would skip: an extension's resolve
    hook (graphql-core middleware), custom directives, or a default resolver not getattr."""

    def __init__(self, schema: strawberry.Schema, settings: Settings) -> None:
        self.schema = schema
        self.settings = settings
        self._by_text: dict[str, Plan] = {}
        self.usable = (
            not schema.directives
            and schema.config.default_resolver is getattr
            and all(type(e).resolve is SchemaExtension.resolve for e in schema.get_extensions())
        )

    def add(self, text: str) -> Plan | None:
        """Prepares a document if it can be (valid, within the limits, plannable)."""
        settings = self.settings
        if not self.usable:
            return None
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

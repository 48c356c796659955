"""The served schema is a compatible superset of the public contract
(../shared/contract/schema.graphql, extended by rules.graphql): graphql-core finds no
breaking change."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import (
    DangerousChangeType,
    build_schema,
    find_breaking_changes,
    find_dangerous_changes,
)

from schema import schema

CONTRACT = Path(__file__).parents[2] / ".." / "shared" / "contract" / "schema.graphql"
RULES = CONTRACT.with_name("rules.graphql")


@pytest.fixture(scope="module")
def contract_sdl() -> str:
    if not CONTRACT.is_file():
        pytest.skip(f"the contract is not checked out at {CONTRACT.resolve()}")
    return CONTRACT.read_text()


def test_the_served_schema_has_no_breaking_change_against_the_contract(
    contract_sdl: str,
) -> None:
    breaking = find_breaking_changes(build_schema(contract_sdl), schema._schema)
    assert breaking == [], "\n".join(f"{c.type.name}: {c.description}" for c in breaking)


def test_the_served_schema_keeps_every_argument_default_of_the_contract(
    contract_sdl: str,
) -> None:
    """Not breaking for graphql-core, but a client leaving the argument out would notice
    (e.g. sections(first: Int = 50)). Other dangerous changes are additions, welcome."""
    changed = [
        c
        for c in find_dangerous_changes(build_schema(contract_sdl), schema._schema)
        if c.type is DangerousChangeType.ARG_DEFAULT_VALUE_CHANGE
    ]
    assert changed == [], "\n".join(c.description for c in changed)


@pytest.fixture(scope="module")
def rules_sdl(contract_sdl: str) -> str:
    if not RULES.is_file():
        pytest.skip(f"the rules contract is not checked out at {RULES.resolve()}")
    return contract_sdl + "\n" + RULES.read_text()


def test_the_served_schema_has_no_breaking_change_against_the_rules_contract(
    rules_sdl: str,
) -> None:
    """build_schema of schema.graphql and rules.graphql concatenated, as rules.graphql asks."""
    breaking = find_breaking_changes(build_schema(rules_sdl), schema._schema)
    assert breaking == [], "\n".join(f"{c.type.name}: {c.description}" for c in breaking)


def test_the_served_schema_keeps_every_argument_default_of_the_rules_contract(
    rules_sdl: str,
) -> None:
    """registrationAttempts(first: Int = 50) among them."""
    changed = [
        c
        for c in find_dangerous_changes(build_schema(rules_sdl), schema._schema)
        if c.type is DangerousChangeType.ARG_DEFAULT_VALUE_CHANGE
    ]
    assert changed == [], "\n".join(c.description for c in changed)

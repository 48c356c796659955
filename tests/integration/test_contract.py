"""The served schema is a compatible superset of the public contract
(../shared/contract/schema.graphql, extended by rules.graphql, and its copy in tests/contract):
graphql-core finds no breaking change."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import (
    DangerousChangeType,
    build_schema,
    find_breaking_changes,
    find_dangerous_changes,
)

from resolvers.root import schema

# The contract lives beside the project (../shared/contract); tests/contract keeps a copy so
# a clone checked out alone is still held to it. Both are checked where both exist, and the
# copy must then equal the original.
SHARED = Path(__file__).parents[2] / ".." / "shared" / "contract"
COPY = Path(__file__).parents[1] / "contract"
SOURCES = [COPY, *([SHARED] if (SHARED / "schema.graphql").is_file() else [])]


@pytest.fixture(scope="module", params=SOURCES, ids=lambda p: p.parts[-2])
def contract_dir(request: pytest.FixtureRequest) -> Path:
    path: Path = request.param
    return path


@pytest.fixture(scope="module")
def contract_sdl(contract_dir: Path) -> str:
    return (contract_dir / "schema.graphql").read_text()


@pytest.mark.parametrize("name", ["schema.graphql", "rules.graphql"])
def test_the_copy_of_the_contract_is_the_contract(name: str) -> None:
    copy = (COPY / name).read_text()
    assert copy.strip(), f"tests/contract/{name} is empty"
    if SHARED in SOURCES:
        assert copy == (SHARED / name).read_text(), f"tests/contract/{name} is out of date"


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
def rules_sdl(contract_dir: Path, contract_sdl: str) -> str:
    return contract_sdl + "\n" + (contract_dir / "rules.graphql").read_text()


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

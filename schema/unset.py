"""Strawberry marks an input field or argument left out with UNSET, a falsy value that is
not None: `given` is the one place it becomes None."""

from __future__ import annotations

from typing import TypeVar

import strawberry

T = TypeVar("T")


def given(value: T | None) -> T | None:
    """None for a field left out (UNSET) or given as null; any other value as it is, falsy
    ones ("" or 0) included."""
    return None if value is strawberry.UNSET else value

"""Refusals as small exceptions with a code from the contract; one place maps them to GraphQL."""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    """Mirrors the `extensions.code` values of contract/schema.graphql."""

    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    BAD_USER_INPUT = "BAD_USER_INPUT"
    STUDENT_NOT_ELIGIBLE = "STUDENT_NOT_ELIGIBLE"
    RATE_LIMITED = "RATE_LIMITED"
    UNAVAILABLE = "UNAVAILABLE"
    INTERNAL = "INTERNAL"


class DomainError(Exception):
    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(self, message: str, **extensions: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extensions = extensions


class Unauthenticated(DomainError):
    code = ErrorCode.UNAUTHENTICATED


class Forbidden(DomainError):
    code = ErrorCode.FORBIDDEN


class NotFound(DomainError):
    code = ErrorCode.NOT_FOUND


class BadInput(DomainError):
    code = ErrorCode.BAD_USER_INPUT


class NotEligible(DomainError):
    code = ErrorCode.STUDENT_NOT_ELIGIBLE


class RateLimited(DomainError):
    code = ErrorCode.RATE_LIMITED


class Unavailable(DomainError):
    code = ErrorCode.UNAVAILABLE

"""The HTTP edge of a domain's errors (``shared.domain_errors``): each kind is one problem
status, with the same code and details. A service installs ``handle_domain_error``."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse

from shared.domain_errors import DomainError, ErrorKind
from shared.problems import (
    Conflict,
    Forbidden,
    NotFound,
    Problem,
    TooManyRequests,
    Unprocessable,
    problem_response,
)

PROBLEMS: dict[
    ErrorKind, type[Conflict | Forbidden | NotFound | Unprocessable | TooManyRequests]
] = {
    ErrorKind.CONFLICT: Conflict,
    ErrorKind.FORBIDDEN: Forbidden,
    ErrorKind.INVALID: Unprocessable,
    ErrorKind.NOT_FOUND: NotFound,
    ErrorKind.TOO_MANY: TooManyRequests,
}


def to_problem(error: DomainError) -> Problem:
    """The problem a client gets for ``error``: its code, details and extension members."""
    problem = PROBLEMS[error.kind]
    return problem(error.code, error.detail, detail_zh=error.detail_zh, extra=error.extra)


async def handle_domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    return problem_response(to_problem(exc), request)

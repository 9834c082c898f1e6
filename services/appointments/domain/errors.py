"""The appointments domain's errors: the platform's domain errors (``shared.domain_errors``)."""

from shared.domain_errors import (
    Conflict,
    DomainError,
    ErrorKind,
    Forbidden,
    Invalid,
    NotFound,
    TooMany,
)

__all__ = ["Conflict", "DomainError", "ErrorKind", "Forbidden", "Invalid", "NotFound", "TooMany"]

"""A service domain's errors: a stable snake_case ``code``, an English and a Chinese
detail, extension members, and a kind (what went wrong, not how it is sent).

Pure (no HTTP): each service's ``domain/`` raises them; the HTTP edge turns each kind into
one problem status (``shared.domain_problems``).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, ClassVar


class ErrorKind(StrEnum):
    CONFLICT = "conflict"  # the state does not allow it (now)
    FORBIDDEN = "forbidden"  # this caller or patient may not
    INVALID = "invalid"  # the request itself is wrong
    NOT_FOUND = "not_found"
    TOO_MANY = "too_many"


class DomainError(Exception):
    kind: ClassVar[ErrorKind]

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        detail_zh: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{self.kind} {code}: {detail}")
        self.code = code
        self.detail = detail
        self.detail_zh = detail_zh
        self.extra: dict[str, Any] = dict(extra or {})


class Conflict(DomainError):
    kind = ErrorKind.CONFLICT


class Forbidden(DomainError):
    kind = ErrorKind.FORBIDDEN


class Invalid(DomainError):
    kind = ErrorKind.INVALID


class NotFound(DomainError):
    kind = ErrorKind.NOT_FOUND


class TooMany(DomainError):
    kind = ErrorKind.TOO_MANY

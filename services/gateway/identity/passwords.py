"""Staff passwords: argon2id hashes (OWASP parameters), checked off the event loop."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from shared.problems import FieldError, Unprocessable

# OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1
_HASHER = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)
# verified against when the username is unknown, so both cases take the same time
_DUMMY_HASH = _HASHER.hash("careloop-no-such-user")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_HASHER.hash, password)


async def verify_password(stored_hash: str | None, password: str) -> bool:
    def check() -> bool:
        try:
            return _HASHER.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check)


def needs_rehash(stored_hash: str) -> bool:
    return _HASHER.check_needs_rehash(stored_hash)


def check_strength(password: str, *, min_length: int, username: str = "") -> None:
    """Length, more than one kind of character, not the username: else a 422 problem."""
    problems: list[str] = []
    if len(password) < min_length:
        problems.append(f"at least {min_length} characters")
    kinds = [
        any(c.islower() for c in password),
        any(c.isupper() for c in password),
        any(c.isdigit() for c in password),
        any(not c.isalnum() for c in password),
    ]
    if sum(kinds) < 3:
        problems.append("three of: lower case, upper case, digits, symbols")
    if username and username.lower() in password.lower():
        problems.append("must not contain the username")
    if len(password) > 128:
        problems.append("at most 128 characters")
    if problems:
        raise Unprocessable(
            "weak_password",
            "the password is too weak: " + "; ".join(problems),
            errors=[FieldError(field="password", message="; ".join(problems), type="weak")],
            detail_zh="密码强度不足",
        )

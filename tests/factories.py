"""Test data generators. Tests never hard-code a real-looking national ID or phone number.

The check character is computed here from the ISO 7064 MOD 11-2 definition
(weights ``2**(17 - i) mod 11``), independently of ``shared.privacy``.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

_WEIGHTS = tuple(2 ** (17 - i) % 11 for i in range(17))


def check_char(first17: str) -> str:
    """The MOD 11-2 check character for 17 digits: value ``(12 - S mod 11) mod 11``, 10 is X."""
    value = (12 - sum(int(c) * w for c, w in zip(first17, _WEIGHTS, strict=True)) % 11) % 11
    return "X" if value == 10 else str(value)


def complete_national_id(first17: str) -> str:
    """Append the correct check character (use it to build IDs with bad dates on purpose)."""
    return first17 + check_char(first17)


def make_national_id(birth: date | None = None, seed: int | None = None) -> str:
    """A valid random 18-character resident ID born on ``birth`` (random when omitted)."""
    rng = random.Random(seed)
    if birth is None:
        birth = date(1930, 1, 1) + timedelta(days=rng.randrange(365 * 90))
    region = f"{rng.randint(11, 65)}{rng.randrange(10_000):04d}"
    sequence = f"{rng.randrange(1000):03d}"
    return complete_national_id(f"{region}{birth:%Y%m%d}{sequence}")


def make_phone(seed: int | None = None) -> str:
    """A random mainland mobile number, 11 digits starting 13-19."""
    rng = random.Random(seed)
    return f"1{rng.randint(3, 9)}{rng.randrange(10**9):09d}"

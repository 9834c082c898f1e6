"""Personal data helpers (docs/architecture.md §8): national ID validation, masking, redaction.

Pure functions, no I/O. Encryption at rest and lookup hashes live in ``shared.crypto``.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime, timedelta, timezone
from itertools import islice
from typing import Literal

__all__ = [
    "InvalidNationalId",
    "birth_date_of",
    "is_valid_national_id",
    "mask_name",
    "mask_national_id",
    "mask_phone",
    "normalize_national_id",
    "parse_national_id",
    "redact_data",
    "redact_text",
    "sex_of",
]

# GB 11643-1999 / ISO 7064 MOD 11-2
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"
_NATIONAL_ID_SHAPE = re.compile(r"[0-9]{17}[0-9X]")
# Birth dates are judged against the calendar date in China (UTC+8, no DST).
_CHINA_TZ = timezone(timedelta(hours=8))


class InvalidNationalId(ValueError):
    """The value is not a valid 18-character resident identity number."""


def normalize_national_id(value: str) -> str:
    """Strip spaces, fold full-width characters (NFKC) and upper-case the check ``x``."""
    return unicodedata.normalize("NFKC", value).strip().upper()


def check_char(first17: str) -> str:
    return _CHECK_CHARS[sum(int(c) * w for c, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def _birth_date(normalized: str) -> date | None:
    try:
        born = date(int(normalized[6:10]), int(normalized[10:12]), int(normalized[12:14]))
    except ValueError:
        return None
    today = datetime.now(_CHINA_TZ).date()
    if born.year < 1900 or born > today:
        return None
    return born


def is_valid_national_id(value: str) -> bool:
    """True if ``value`` (after normalization) is a GB 11643-1999 ID with a real birth date."""
    if not isinstance(value, str):
        return False
    normalized = normalize_national_id(value)
    if _NATIONAL_ID_SHAPE.fullmatch(normalized) is None:
        return False
    if check_char(normalized[:17]) != normalized[17]:
        return False
    return _birth_date(normalized) is not None


def parse_national_id(value: str) -> str:
    """Return the normalized ID or raise :class:`InvalidNationalId` (message holds no PII)."""
    if not is_valid_national_id(value):
        raise InvalidNationalId("invalid national ID number")
    return normalize_national_id(value)


def birth_date_of(national_id: str) -> date:
    """Birth date encoded in a valid ID (raises :class:`InvalidNationalId`)."""
    born = _birth_date(parse_national_id(national_id))
    assert born is not None  # parse_national_id checked it
    return born


def sex_of(national_id: str) -> Literal["male", "female"]:
    """Sex encoded in a valid ID: odd 17th digit is male."""
    return "male" if int(parse_national_id(national_id)[16]) % 2 else "female"


def mask_national_id(value: str) -> str:
    """Keep the first 3 and last 2 characters: ``110*************3X``; short values fully masked."""
    if len(value) < 8:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 5) + value[-2:]


_PHONE_SHAPE = re.compile(
    r"(?P<pre>(?:\+|00)?86[ -]?)?(?P<head>1\d{2})(?P<sep>[ -]?)\d{4}(?P=sep)(?P<tail>\d{4})"
)


def mask_phone(value: str) -> str:
    """``13812345678`` -> ``138****5678``; other numbers keep only their last 4 digits."""
    match = _PHONE_SHAPE.fullmatch(value.strip())
    if match is not None:
        return _mask_phone_match(match)
    digits = sum(c.isdigit() for c in value)
    keep = 4 if digits >= 8 else 0
    out: list[str] = []
    for c in reversed(value):
        if c.isdigit():
            out.append(c if keep > 0 else "*")
            keep -= 1
        else:
            out.append(c)
    return "".join(reversed(out))


def _mask_phone_match(match: re.Match[str]) -> str:
    pre, sep = match["pre"] or "", match["sep"]
    return f"{pre}{match['head']}{sep}****{sep}{match['tail']}"


def mask_name(value: str) -> str:
    """``张三丰`` -> ``张**``: keep the first character."""
    name = value.strip()
    if len(name) <= 1:
        return "*" * len(name)
    return name[0] + "*" * (len(name) - 1)


def mask_name_ends(value: str) -> str:
    """``张伟`` -> ``张*``, ``张小伟`` -> ``张*伟``, ``欧阳安泰`` -> ``欧**泰``: the first and,
    from three characters on, the last. For lists a hotline agent picks the caller from
    (patient search, call pops), where several matches share a family name."""
    name = value.strip()
    if len(name) <= 2:
        return mask_name(name)
    return name[0] + "*" * (len(name) - 2) + name[-1]


# One pass over the text. Alternatives are tried left to right at each position:
# UUIDs and long hex ids are matched first and kept as they are, so a digit run
# inside them is never taken for a phone number or an ID.
_PII_RE = re.compile(
    r"""
    (?P<keep>
        \b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b
      | \b[0-9a-fA-F]{24,}\b
    )
  | (?<!\d)(?P<nid>\d{17}[\dXx])(?!\d)
  | (?<!\d)(?P<pre>(?:\+|00)?86[ -]?)?
    (?P<head>1[3-9]\d)(?P<sep>[ -]?)\d{4}(?P=sep)(?P<tail>\d{4})(?!\d)
    """,
    re.VERBOSE,
)
_DIGIT_RE = re.compile(r"\d")
_MIN_DIGITS = 11


def _has_enough_digits(text: str) -> bool:
    """True once the 11th digit is found; scans no further."""
    return next(islice(_DIGIT_RE.finditer(text), _MIN_DIGITS - 1, None), None) is not None


def _replace(match: re.Match[str]) -> str:
    if match["keep"] is not None:
        return match["keep"]
    if match["nid"] is not None:
        return mask_national_id(match["nid"])
    return _mask_phone_match(match)


def redact_text(text: str) -> str:
    """Mask every national-ID-shaped run (checksum not required) and mainland mobile number.

    Digit runs of other lengths (timestamps, order numbers), UUIDs and hex ids are left alone.
    A bare number in JSON text is masked too, so such text is no longer strict JSON.
    """
    if len(text) < _MIN_DIGITS or not _has_enough_digits(text):
        return text
    return _PII_RE.sub(_replace, text)


_MAX_DEPTH = 32


def redact_data(value: object, *, stringify: bool = False, _depth: int = 0) -> object:
    """Redact PII in strings, dict keys and values, lists, tuples and sets, recursively.

    An int or float whose decimal text holds a phone number or ID becomes a masked string.
    Other objects are kept as they are, or with ``stringify`` turned into redacted ``str()``.
    """
    if isinstance(value, str):
        return redact_text(value)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        text = str(value)
        masked = redact_text(text)
        return value if masked == text else masked
    if _depth >= _MAX_DEPTH:
        return redact_text(str(value))
    depth = _depth + 1
    if isinstance(value, dict):
        return {
            redact_data(k, stringify=stringify, _depth=depth): redact_data(
                v, stringify=stringify, _depth=depth
            )
            for k, v in value.items()
        }
    if isinstance(value, list | set | frozenset):
        return [redact_data(v, stringify=stringify, _depth=depth) for v in value]
    if isinstance(value, tuple):
        return tuple(redact_data(v, stringify=stringify, _depth=depth) for v in value)
    return redact_text(str(value)) if stringify else value

"""Why a staff member reads or acts on a patient's data: the one way every route takes it.

Staff give the reason as the query parameter ``reason`` or the ``X-Access-Reason`` header;
routes declare ``reason: AccessReason`` and never read either themselves (a guard test,
``tests/unit/test_access_reason_guard.py``, fails if one does). The header carries
non-ASCII text (Chinese) in any of three forms, all decoded as UTF-8:

* percent-encoded: ``X-Access-Reason: %E6%82%A3%E8%80%85%E6%9D%A5%E7%94%B5``;
* RFC 8187: ``X-Access-Reason*: UTF-8''%E6%82%A3%E8%80%85%E6%9D%A5%E7%94%B5``;
* raw UTF-8 bytes (what many HTTP clients send as is).

Precedence: the query parameter, then ``X-Access-Reason*``, then ``X-Access-Reason``. After
decoding and trimming, a reason is 2..200 characters; anything else (bad encoding, another
charset, too short or long) is a 422 problem ``reason_invalid`` and the route does nothing.
Whether a reason is *required* stays with the route: :func:`shared.audit.require_reason`.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import unquote

from fastapi import Depends, Header, Query, Request

from shared.problems import Unprocessable

__all__ = [
    "HEADER",
    "HEADER_EXT",
    "MAX_LENGTH",
    "MIN_LENGTH",
    "AccessReason",
    "access_reason",
    "decode_ext_header",
    "decode_header",
]

HEADER = "X-Access-Reason"
HEADER_EXT = "X-Access-Reason*"
MIN_LENGTH, MAX_LENGTH = 2, 200


def _invalid(detail: str) -> Unprocessable:
    return Unprocessable(
        "reason_invalid",
        detail,
        detail_zh=f"查阅原因无效：需为 {MIN_LENGTH} 至 {MAX_LENGTH} 个字符的 UTF-8 文本",
    )


def _percent_decode(text: str) -> str:
    try:
        return unquote(text, encoding="utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise _invalid("the percent-encoded reason is not valid UTF-8") from exc


def decode_header(raw: str) -> str:
    """The plain header: raw UTF-8 bytes (Starlette hands them over as latin-1) or
    percent-encoded UTF-8."""
    if not raw.isascii():
        try:
            raw = raw.encode("latin-1").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError) as exc:
            raise _invalid(f"the {HEADER} header is not valid UTF-8") from exc
    return _percent_decode(raw)


def decode_ext_header(raw: str) -> str:
    """RFC 8187 ``charset'language'value``; only UTF-8 is accepted."""
    charset, sep1, rest = raw.strip().partition("'")
    _language, sep2, value = rest.partition("'")
    if not (sep1 and sep2) or charset.lower() != "utf-8" or not value.isascii():
        raise _invalid(f"{HEADER_EXT} must be UTF-8''<percent-encoded text> (RFC 8187)")
    return _percent_decode(value)


def _checked(text: str) -> str:
    text = text.strip()
    if not MIN_LENGTH <= len(text) <= MAX_LENGTH:
        raise _invalid(f"a reason is {MIN_LENGTH} to {MAX_LENGTH} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise _invalid("a reason holds no control characters")
    return text


async def access_reason(
    reason: Annotated[
        str | None,
        Query(
            description=(
                "Why staff read or act on this patient's data (kept in the audit record). "
                f"Or send the `{HEADER}` header."
            ),
            examples=["patient called 96165"],
        ),
    ] = None,
    x_access_reason: Annotated[
        str | None,
        Header(
            alias=HEADER,
            description=(
                "The reason as a header: ASCII, percent-encoded UTF-8 or raw UTF-8. "
                f"Non-ASCII may also go in `{HEADER_EXT}: UTF-8''<percent-encoded>` "
                "(RFC 8187)."
            ),
        ),
    ] = None,
    x_access_reason_ext: Annotated[
        str | None,
        Header(alias=HEADER_EXT, description="RFC 8187 form: `UTF-8''%E6%82%A3…`."),
    ] = None,
) -> str | None:
    """The staff access reason of this request, or ``None`` when none was given."""
    if reason is not None:
        return _checked(reason)
    if x_access_reason_ext is not None:
        return _checked(decode_ext_header(x_access_reason_ext))
    if x_access_reason is not None:
        return _checked(decode_header(x_access_reason))
    return None


AccessReason = Annotated[str | None, Depends(access_reason)]


def reason_of(request: Request) -> str | None:
    """The request's access reason outside a route's dependencies (the audit record of a
    refused call): as :func:`access_reason` reads it, or ``None`` if none or not valid."""
    query = request.query_params.get("reason")
    ext, plain = request.headers.get(HEADER_EXT), request.headers.get(HEADER)
    try:
        if query is not None:
            return _checked(query)
        if ext is not None:
            return _checked(decode_ext_header(ext))
        if plain is not None:
            return _checked(decode_header(plain))
    except Unprocessable:
        return None
    return None

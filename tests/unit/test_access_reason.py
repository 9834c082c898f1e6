"""The staff access reason: query or X-Access-Reason (plain, percent-encoded, RFC 8187 or
raw UTF-8), 2..200 characters after decoding, else 422 ``reason_invalid``."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from shared.access_reason import access_reason, decode_ext_header, decode_header
from shared.problems import Problem

CHINESE = "患者来电咨询"


def latin1(text: str) -> str:
    """What Starlette hands over for raw UTF-8 header bytes."""
    return text.encode().decode("latin-1")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("patient called 96165", "patient called 96165"),
        (quote(CHINESE), CHINESE),
        (latin1(CHINESE), CHINESE),
        ("50% off", "50% off"),  # a lone % that starts no escape stays as it is
    ],
)
def test_header_forms(raw: str, expected: str) -> None:
    assert decode_header(raw) == expected


def test_rfc_8187_form() -> None:
    assert decode_ext_header(f"UTF-8''{quote(CHINESE)}") == CHINESE
    assert decode_ext_header(f"utf-8'zh-CN'{quote(CHINESE)}") == CHINESE


@pytest.mark.parametrize(
    "raw",
    ["%E6%82", "%FF%FE", "\xff\xfe"],  # cut short, not UTF-8, raw bytes that are not UTF-8
)
def test_bad_utf8_in_the_header_is_reason_invalid(raw: str) -> None:
    with pytest.raises(Problem) as caught:
        decode_header(raw)
    assert (caught.value.status, caught.value.code) == (422, "reason_invalid")


@pytest.mark.parametrize(
    "raw", ["ISO-8859-1''caf%E9", f"UTF-8{quote(CHINESE)}", "UTF-8''%E6%82", f"UTF-8''{CHINESE}"]
)
def test_bad_rfc_8187_value_is_reason_invalid(raw: str) -> None:
    with pytest.raises(Problem) as caught:
        decode_ext_header(raw)
    assert caught.value.code == "reason_invalid"


async def test_precedence_and_length() -> None:
    assert await access_reason() is None
    assert await access_reason("query", "header", None) == "query"
    assert await access_reason(None, "plain", f"UTF-8''{quote(CHINESE)}") == CHINESE
    assert await access_reason(None, "  trimmed  ", None) == "trimmed"
    assert await access_reason(None, quote("好的"), None) == "好的"  # 2 characters, 6 bytes
    for bad in ("x", " x ", "a" * 201, "", "tab\tinside"):
        with pytest.raises(Problem) as caught:
            await access_reason(bad, None, None)
        assert caught.value.code == "reason_invalid"
    assert await access_reason("字" * 200) == "字" * 200

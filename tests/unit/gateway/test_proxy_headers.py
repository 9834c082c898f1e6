"""Which request headers the proxy forwards, byte for byte, and which it cannot."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from services.gateway.proxy import accepts_event_stream, request_headers
from shared.problems import BadRequest

pytestmark = pytest.mark.unit


def request_with(*headers: tuple[bytes, bytes]) -> Request:
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/v1/x/y",
        "headers": list(headers),
        "client": ("203.0.113.7", 50000),
        "state": {"request_id": "req-1"},
    }
    return Request(scope)


def test_headers_are_forwarded_as_their_bytes_less_hop_by_hop_ones() -> None:
    reason = "患者来电".encode()
    forwarded = request_headers(
        request_with(
            (b"x-access-reason", reason),
            (b"x-foo", "é".encode("latin-1")),
            (b"connection", b"keep-alive, x-secret-hop"),
            (b"x-secret-hop", b"dropped"),
            (b"host", b"gateway"),
            (b"x-request-id", b"from-the-client"),
        )
    )
    assert forwarded == [
        (b"x-access-reason", reason),
        (b"x-foo", b"\xe9"),
        (b"x-request-id", b"req-1"),
        (b"x-forwarded-for", b"203.0.113.7"),
    ]


@pytest.mark.parametrize("value", [b"a\x0bb", b"a\x0cb", b"a\x00b"])
def test_a_header_http_cannot_carry_is_a_400_naming_it(value: bytes) -> None:
    with pytest.raises(BadRequest) as refused:
        request_headers(request_with((b"x-ok", b"fine"), (b"x-odd", value)))
    assert refused.value.code == "header_invalid"
    assert refused.value.extra == {"header": "x-odd"}


def test_event_stream_requests_are_recognised() -> None:
    assert accepts_event_stream(request_with((b"accept", b"text/event-stream")))
    assert accepts_event_stream(request_with((b"accept", b"application/json, Text/Event-Stream")))
    assert not accepts_event_stream(request_with((b"accept", b"application/json")))

"""Provider callbacks pass without a token, decided on the normalized path: a path with
dot segments or encoded slashes is a 400 problem, so it cannot pass as public."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit

import pytest

from tests.integration.gateway.conftest import Gateway

pytestmark = pytest.mark.integration

DOTTED = [
    "/v1/notifications/providers/../../appointments/appointments",
    "/v1/notifications/providers/%2e%2e/%2e%2e/appointments/appointments",
    "/v1/notifications/providers/%2E%2e/%2e%2E/appointments/appointments",
    "/v1/notifications/providers/..%2f..%2fappointments/appointments",
    "/v1/notifications/providers/%252e%252e/%252e%252e/appointments/appointments",
    "/v1/notifications/providers/..%5c..%5cappointments/appointments",
    "/v1/notifications/./providers/aliyun/sms-receipts",
    "/v1/appointments/../notifications/providers/aliyun/sms-receipts",
]


async def raw_get(base: str, target: str) -> tuple[int, dict[str, object]]:
    """GET ``target`` byte for byte (httpx would resolve the dot segments first)."""
    url = urlsplit(base)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    writer.write(
        f"GET {target} HTTP/1.1\r\nHost: {url.netloc}\r\nUser-Agent: test-browser\r\n"
        "Connection: close\r\n\r\n".encode("ascii")
    )
    await writer.drain()
    answer = await reader.read()
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    try:
        parsed = json.loads(body) if body else {}
    except ValueError:
        parsed = {"raw": body.decode("latin-1")}
    return status, parsed if isinstance(parsed, dict) else {}


@pytest.mark.parametrize("target", DOTTED)
async def test_a_path_with_dot_segments_is_refused(gateway: Gateway, target: str) -> None:
    status, body = await raw_get(str(gateway.client.base_url), target)
    assert (status, body.get("code")) == (400, "path_invalid"), body


async def test_a_callback_path_stays_public_and_others_need_a_token(gateway: Gateway) -> None:
    base = str(gateway.client.base_url)
    status, body = await raw_get(base, "/v1/notifications/providers/wechat/events")
    assert body.get("code") not in ("token_missing", "path_invalid"), (status, body)
    status, body = await raw_get(base, "/v1/appointments/appointments")
    assert (status, body.get("code")) == (401, "token_missing")

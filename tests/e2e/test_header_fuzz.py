"""Hostile request headers on every documented operation, as a patient, an agent and an admin.

Schemathesis (test_api_fuzz.py) varies what the OpenAPI document declares; headers a
client may send anyway are not in it. Here every operation of the gateway's merged
document is called with header sets a real client or an attacker sends: non-ASCII text
(Chinese access reasons, idempotency keys, Latin-1), bytes that are not UTF-8, very long
values and repeated headers. Whatever the header, the answer is never a 5xx: a header
that cannot be used is a 4xx problem, one that can is used.

Each request carries a token of its own subject, so per-account budgets do not turn the
run into 429s, and streams are closed as soon as their status line arrives. The requests
are independent of each other: a few go at once (``CONCURRENCY``), so the services behind
the gateway work side by side instead of one request at a time.
"""

from __future__ import annotations

import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from devstack.keys import DevSecrets
from devstack.system import System
from shared.auth import TokenMinter

pytestmark = pytest.mark.e2e

ORG = "hdr-org"
Headers = list[tuple[bytes, bytes]]

HEADER_CASES: dict[str, Headers] = {
    "reason_in_chinese": [(b"x-access-reason", "患者来电".encode())],
    "reason_percent_encoded": [(b"x-access-reason", b"%E6%82%A3%E8%80%85%E6%9D%A5%E7%94%B5")],
    "reason_rfc8187": [(b"x-access-reason*", b"UTF-8''%E6%82%A3%E8%80%85%E6%9D%A5%E7%94%B5")],
    "idempotency_key_in_chinese": [(b"idempotency-key", "预约-键-0001-abcd".encode())],
    "latin1_custom": [(b"x-foo", "é".encode("latin-1"))],
    "not_utf8": [(b"x-access-reason", b"\xff\xfe\xfd"), (b"if-match", b'"\xc3\x28"')],
    "very_long": [(b"x-access-reason", "原".encode() * 3000), (b"x-long", b"a" * 16_000)],
    "repeated": [
        (b"x-access-reason", b"first reason"),
        (b"x-access-reason", b"second reason"),
        (b"idempotency-key", b"key-one-0001"),
        (b"idempotency-key", b"key-two-0002"),
        (b"if-match", b'"1"'),
        (b"if-match", b'"2"'),
    ],
    "request_id_hostile": [(b"x-request-id", "请求\u2028id".encode() + b"\x7f" * 3)],
}

ROLES = {"patient": ["patient"], "agent": ["agent"], "admin": ["admin"]}
CONCURRENCY = 6  # requests in flight at once (the gateway sheds only past 256)


def operations(document: dict[str, Any]) -> list[tuple[str, str]]:
    """(method, concrete path) for every operation; path parameters get a harmless value."""
    found = []
    for path, item in sorted(document["paths"].items()):
        concrete = re.sub(r"\{[^}]+\}", "hdr-1", path)
        for method in sorted(item):
            if method in {"get", "post", "put", "patch", "delete"}:
                found.append((method.upper(), concrete))
    return found


@pytest.fixture(scope="module")
def minter(dev_secrets: DevSecrets) -> TokenMinter:
    return TokenMinter(
        dev_secrets.jwt_private_key_file.read_text(),
        issuer="careloop-gateway",
        audience="careloop",
    )


@pytest.mark.parametrize("role", sorted(ROLES))
def test_no_request_header_makes_a_server_error(
    system: System, minter: TokenMinter, role: str
) -> None:
    document = httpx.get(f"{system.gateway_url}/openapi.json", timeout=30).json()
    ops = operations(document)
    assert len(ops) > 50  # the whole merged document, not a stub
    statuses: Counter[int] = Counter()
    server_errors: list[str] = []
    cases = [
        (index, method, path, name, extra)
        for index, (method, path) in enumerate(ops)
        for name, extra in HEADER_CASES.items()
    ]
    with httpx.Client(
        base_url=system.gateway_url,
        timeout=20,
        limits=httpx.Limits(max_connections=CONCURRENCY),
    ) as client:

        def call(case: tuple[int, str, str, str, Headers]) -> tuple[str, int]:
            index, method, path, name, extra = case
            token = minter.mint(
                f"hdr-{role}-{index}-{name}", ROLES[role], org_id=ORG, ttl_seconds=600
            )
            headers: Headers = [(b"authorization", f"Bearer {token}".encode()), *extra]
            body = b"{}" if method in {"POST", "PUT", "PATCH"} else None
            if body is not None:
                headers.append((b"content-type", b"application/json"))
            request = client.build_request(method, path, headers=headers, content=body)
            response = client.send(request, stream=True)  # a stream: status line only
            response.close()
            return f"{method} {path} [{name}]", response.status_code

        with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
            for label, status in pool.map(call, cases):
                statuses[status] += 1
                if status >= 500:
                    server_errors.append(f"{label} -> {status}")
    assert not server_errors, "\n".join(server_errors[:40])
    assert sum(statuses.values()) == len(ops) * len(HEADER_CASES)
    # the calls reached the services: some succeed, some are refused as bad input
    assert any(200 <= status < 300 for status in statuses), statuses
    assert any(400 <= status < 500 for status in statuses), statuses

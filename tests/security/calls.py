"""Sending one matrix call, forged tokens, and finding another account's data in a reply."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from shared.auth import TokenMinter, generate_ed25519_keypair
from tests.security.conftest import World
from tests.security.matrix_rules import Rule

ISSUER, AUDIENCE = "careloop-gateway", "careloop"
WRITES = frozenset({"POST", "PUT", "PATCH"})


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    text: str

    def json(self) -> Any:
        return json.loads(self.text) if self.text else None

    def describe(self) -> str:
        return f"{self.status} {self.content_type} {self.text[:300]}"


def fill(value: Any, ids: Mapping[str, str]) -> Any:
    """Replace ``"{name}"`` placeholders (whole strings) in a JSON value with ``ids``."""
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return ids[value[1:-1]]
    if isinstance(value, dict):
        return {k: fill(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, ids) for v in value]
    return value


async def call(
    world: World,
    service: str,
    rule: Rule,
    headers: Mapping[str, str],
    *,
    ids: Mapping[str, str] | None = None,
    body: Any = None,
    query: Mapping[str, str] | None = None,
) -> tuple[Reply, str]:
    """Send the rule's request; return the reply and the request (URL and body) as text."""
    ids = ids or world.ids
    path = rule.path.format_map(ids)
    params = fill(dict(rule.query if query is None else query), ids)
    payload = fill(body if body is not None else rule.body, ids)
    if payload is None and rule.method in WRITES:
        payload = {}
    client = world.clients[service]
    json_type = {} if payload is None else {"content-type": "application/json"}
    request = client.build_request(
        rule.method,
        path,
        params=params,
        headers={**headers, **json_type},
        content=None if payload is None else json.dumps(payload),
    )
    response = await client.send(request, stream=True)
    try:
        content_type = response.headers.get("content-type", "")
        text = (
            ""
            if content_type.startswith("text/event-stream")
            else (await response.aread()).decode()
        )
    finally:
        await response.aclose()
    sent = f"{request.url} {json.dumps(payload, ensure_ascii=False)}"
    return Reply(response.status_code, content_type, text), sent


def leaked(world: World, reply: Reply, sent: str) -> set[str]:
    """A's data found in ``reply``, apart from what the caller sent (the problem's
    ``instance`` echoes the request path, which is not a leak)."""
    try:
        body = reply.json()
    except ValueError:
        body = reply.text
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k != "instance"}
    text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    return {s for s in world.secrets if s in text and s not in sent}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(subject: str, roles: list[str], **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": subject,
        "roles": roles,
        "pids": [],
        "jti": str(uuid.uuid4()),
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "org": "h1",
    }
    return {**claims, **overrides}


def _unsigned(header: dict[str, Any], claims: dict[str, Any], key: bytes | None) -> str:
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    if key is None:
        return f"{signing_input}."
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def bad_tokens(private_pem: str, public_pem: str) -> dict[str, str]:
    """Admin tokens that must all be refused with 401, by name."""
    roles, subject = ["admin"], "matrix-admin"
    ours = TokenMinter(private_pem, issuer=ISSUER, audience=AUDIENCE)
    foreign = TokenMinter(generate_ed25519_keypair()[0], issuer=ISSUER, audience=AUDIENCE)
    other_audience = TokenMinter(private_pem, issuer=ISSUER, audience="someone-else")
    an_hour_ago = int(time.time()) - 3600
    return {
        "expired": ours.mint(subject, roles, ttl_seconds=60, issued_at=an_hour_ago),
        "foreign_key": foreign.mint(subject, roles),
        "alg_none": _unsigned({"alg": "none", "typ": "JWT"}, _claims(subject, roles), None),
        "hs256_public_key": _unsigned(
            {"alg": "HS256", "typ": "JWT"}, _claims(subject, roles), public_pem.encode()
        ),
        "wrong_audience": other_audience.mint(subject, roles),
        "garbage": "not.a.jwt",
    }


def is_problem(reply: Reply, status: int) -> bool:
    return reply.status == status and reply.content_type.startswith("application/problem+json")


async def stream_ids(
    client: httpx.AsyncClient, headers: Mapping[str, str], seconds: float, until: str = ""
) -> str:
    """What an inbox stream sends within ``seconds`` (replaying from the very start), or
    until ``until`` shows up."""
    chunks: list[str] = []
    stream_headers = {**headers, "Last-Event-ID": "00000000-0000-0000-0000-000000000000"}

    async def read() -> None:
        async with client.stream(
            "GET", "/v1/notifications/inbox/stream", headers=stream_headers
        ) as r:
            assert r.status_code == 200, r.status_code
            async for chunk in r.aiter_text():
                chunks.append(chunk)
                if until and until in "".join(chunks):
                    return

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(read(), seconds)
    return "".join(chunks)

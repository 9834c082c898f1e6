"""Staff password guessing: the lockout holds under parallel attempts, its answers tell
nothing apart, and the login throttle cannot be dodged by the body's type or size."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from devstack.processes import free_port
from services.gateway.identity import logins as logins_module
from services.gateway.identity.lockout import LoginAttempts
from services.gateway.identity.passwords import verify_password
from shared.problems import Problem
from shared.redis_client import create_redis
from tests.integration.gateway.conftest import TEST_RATE_LIMITS, Gateway, bearer

pytestmark = pytest.mark.integration

STAFF = "/v1/auth/admin/staff"
PASSWORD = "Agent-Passw0rd!"
WRONG = "Wrong-Passw0rd!"
LOGIN = "/v1/auth/login/staff"
# no username budget in the way: the lockout alone must hold
UNTHROTTLED = {
    "rate_limits": {
        **TEST_RATE_LIMITS,
        "login": {"per_key": {"username": {"capacity": 1000, "window_seconds": 600}}},
    }
}


class HashChecks:
    """Counts argon2 checks: against a stored hash (``real``) and the dummy one."""

    def __init__(self) -> None:
        self.real = 0
        self.dummy = 0

    async def __call__(self, stored_hash: str | None, password: str) -> bool:
        if stored_hash is None:
            self.dummy += 1
        else:
            self.real += 1
        return await verify_password(stored_hash, password)


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> HashChecks:
    counter = HashChecks()
    monkeypatch.setattr(logins_module, "verify_password", counter)
    return counter


async def new_agent(gateway: Gateway, admin: str, username: str) -> dict[str, Any]:
    created = await gateway.client.post(
        STAFF,
        json={"username": username, "password": PASSWORD, "roles": ["agent"], "org_id": "h1"},
        headers=bearer(admin),
    )
    assert created.status_code == 201, created.text
    return dict(created.json())


@pytest.mark.parametrize("gateway", [UNTHROTTLED], indirect=True)
async def test_parallel_wrong_guesses_check_at_most_the_limit(
    gateway: Gateway, checks: HashChecks
) -> None:
    admin = await gateway.admin_token()
    await new_agent(gateway, admin, "agent.race")
    checks.real = checks.dummy = 0
    limit = gateway.settings.staff_max_failed_logins

    async def guess(i: int) -> httpx.Response:
        """One wrong guess; a 429 overloaded (the front door shed it before any check, as
        it may on a busy machine) is sent again, so each guess is answered once."""
        while True:
            answer = await gateway.staff_login("agent.race", f"{WRONG}{i}")
            if (answer.status_code, answer.json().get("code")) != (429, "overloaded"):
                return answer
            await asyncio.sleep(0.05)

    answers = await asyncio.gather(*(guess(i) for i in range(30)))
    assert checks.real <= limit  # the rest were refused before their password was checked
    assert {(a.status_code, a.json()["code"]) for a in answers} == {(401, "invalid_credentials")}
    assert checks.real + checks.dummy == 30  # ... each after a check of the dummy hash

    right = await gateway.staff_login("agent.race", PASSWORD)
    assert (right.status_code, right.json()["code"]) == (401, "invalid_credentials")


def _alike(response: httpx.Response) -> tuple[Any, ...]:
    body = response.json()
    return (
        response.status_code,
        response.headers.get("www-authenticate"),
        response.headers.get("retry-after"),
        *(body.get(k) for k in ("type", "title", "code", "detail", "detail_zh")),
        sorted(set(body) - {"instance", "request_id"}),
    )


@pytest.mark.parametrize("gateway", [UNTHROTTLED], indirect=True)
async def test_locked_disabled_unknown_and_wrong_answer_alike(
    gateway: Gateway, checks: HashChecks
) -> None:
    admin = await gateway.admin_token()
    await new_agent(gateway, admin, "agent.wrong")
    disabled = await new_agent(gateway, admin, "agent.off")
    await new_agent(gateway, admin, "agent.locked")
    current = await gateway.client.get(f"{STAFF}/{disabled['id']}", headers=bearer(admin))
    off = await gateway.client.patch(
        f"{STAFF}/{disabled['id']}",
        json={"disabled": True},
        headers={**bearer(admin), "if-match": current.headers["etag"]},
    )
    assert off.status_code == 200, off.text
    for _ in range(gateway.settings.staff_max_failed_logins):
        await gateway.staff_login("agent.locked", WRONG)

    answers = {}
    for name, (username, password) in {
        "wrong": ("agent.wrong", WRONG),
        "unknown": ("agent.nobody", PASSWORD),
        "disabled": ("agent.off", PASSWORD),
        "locked": ("agent.locked", PASSWORD),
    }.items():
        before = checks.real + checks.dummy
        answers[name] = await gateway.staff_login(username, password)
        assert checks.real + checks.dummy == before + 1, name  # one hash check each
    assert answers["wrong"].status_code == 401
    first = _alike(answers["wrong"])
    assert {name: _alike(a) for name, a in answers.items()} == dict.fromkeys(answers, first)


@pytest.mark.parametrize(
    "gateway",
    [
        {
            "rate_limits": {
                **TEST_RATE_LIMITS,
                "login": {"per_key": {"username": {"capacity": 3, "window_seconds": 600}}},
            }
        }
    ],
    indirect=True,
)
async def test_logins_are_throttled_whatever_the_case_of_the_content_type(
    gateway: Gateway,
) -> None:
    body = b'{"username": "agent.case", "password": "Wrong-Passw0rd!"}'
    codes = []
    for _ in range(4):
        answer = await gateway.client.post(
            LOGIN, content=body, headers={"content-type": "Application/JSON"}
        )
        codes.append((answer.status_code, answer.json()["code"]))
    assert codes[:3] == [(401, "invalid_credentials")] * 3
    assert codes[3] == (429, "rate_limited")


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", b"x" * 9000),
        ("application/json", b'{"username": "agent.pad", "password": "x"}' + b" " * 9000),
        ("application/octet-stream", b'{"username": "agent.pad"' + b" " * 9000 + b"}"),
    ],
)
async def test_a_login_body_over_8_kib_is_refused(
    gateway: Gateway, content_type: str, body: bytes
) -> None:
    answer = await gateway.client.post(LOGIN, content=body, headers={"content-type": content_type})
    assert (answer.status_code, answer.json()["code"]) == (413, "request_too_large")

    async def chunks() -> Any:
        yield body[:4000]
        yield body[4000:]

    streamed = await gateway.client.post(
        LOGIN, content=chunks(), headers={"content-type": content_type}
    )
    assert (streamed.status_code, streamed.json()["code"]) == (413, "request_too_large")


async def test_attempts_fail_closed_when_redis_is_away() -> None:
    redis = create_redis(f"redis://127.0.0.1:{free_port()}/0", wait_seconds=0.2)
    attempts = LoginAttempts(redis, limit=5, lockout_seconds=60)
    try:
        with pytest.raises(Problem) as info:
            await attempts.reserve(attempts.key("agent.away", 1))
    finally:
        await redis.aclose()
    assert (info.value.status, info.value.code) == (503, "auth_unavailable")

"""Booking attempts per national ID and per account (scalpers share one real-name patient).

Through the service's HTTP API with the default limits (20 per national ID and 30 per
account in 10 minutes), and directly with configured limits, on the stack's real Redis.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from devstack.stack import EmbeddedStack
from services.appointments.attempt_limits import BookingAttempts
from services.appointments.settings import AppointmentsSettings, BookingAttemptLimits
from shared.crypto import FieldCipher
from shared.principal import Principal, Role
from shared.problems import TooManyRequests
from shared.redis_client import create_redis
from shared.settings import ServiceSettings
from tests.factories import make_national_id, make_phone
from tests.integration.appointments.conftest import Api
from tests.support.patient_codes import add_patient

pytestmark = pytest.mark.integration

PER_ID = BookingAttemptLimits().per_national_id
PER_ACCOUNT = BookingAttemptLimits().per_account
WINDOW = BookingAttemptLimits().window_seconds


async def register(api: Api, account: str, national_id: str, name: str = "张三") -> str:
    body = {"name": name, "national_id": national_id, "phone": make_phone()}
    response = await add_patient(api.client, api.settings, api.token(account), body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def book(api: Api, headers: dict[str, str], patient_id: str, schedule: str) -> httpx.Response:
    return await api.client.post(
        "/v1/appointments/appointments",
        headers=headers,
        json={"patient_id": patient_id, "schedule_id": schedule},
    )


def assert_attempts_refused(response: httpx.Response, code: str, limit: str) -> None:
    assert response.status_code == 429, response.text
    body = response.json()
    assert (body["code"], body["limit"]) == (code, limit)
    assert body["detail_zh"]
    # N per window as a sliding log meant it: after a full burst the next one waits W
    assert WINDOW - 30 <= int(response.headers["retry-after"]) <= WINDOW


async def test_accounts_sharing_a_national_id_share_its_attempts(appointments_api: Api) -> None:
    api = appointments_api
    national_id = make_national_id()
    patient = await register(api, "scalper-a", national_id)
    assert await register(api, "scalper-b", national_id) == patient  # one real-name patient
    schedule = await api.publish(days_ahead=2)
    accounts = [api.token("scalper-a"), api.token("scalper-b")]

    statuses = [
        (await book(api, accounts[i % 2], patient, schedule)).status_code for i in range(PER_ID)
    ]
    assert statuses[0] == 201
    assert set(statuses[1:]) == {409}  # duplicate_booking: attempts all the same
    for headers in accounts:  # the 21st attempt, from either account
        refused = await book(api, headers, patient, schedule)
        assert_attempts_refused(refused, "id_attempts_exceeded", "national_id")

    # someone else's patient, and hotline staff booking for this one, are not held back
    other = await register(api, "family-c", make_national_id(), name="李四")
    assert (await book(api, api.token("family-c"), other, schedule)).status_code == 201
    agent_headers = {**api.token("agent-1", Role.AGENT), "X-Access-Reason": "hotline call"}
    agent = await book(api, agent_headers, patient, schedule)
    assert agent.status_code not in (400, 429), agent.text

    # Redis holds neither the national ID nor its lookup hash
    cipher = FieldCipher.from_settings(api.settings.pii_encryption_keys, api.settings.pii_hash_key)
    lookup = cipher.lookup_hash_national_id(national_id)
    redis = create_redis(api.settings.redis_url)
    try:
        keys = await redis.keys(f"{api.settings.redis_key_prefix}appointments:attempts:*")
    finally:
        await redis.aclose()
    assert len(keys) == 5  # two patients' IDs, three accounts; no key for the agent
    assert not [k for k in keys if national_id in k or lookup in k]


async def test_one_account_hammering_for_several_patients_hits_its_own_limit(
    appointments_api: Api,
) -> None:
    api = appointments_api
    patients = [
        await register(api, "family-x", make_national_id(), name=n) for n in ("王五", "赵六")
    ]
    schedule = await api.publish(days_ahead=2)
    me = api.token("family-x")
    answers = [await book(api, me, patients[i % 2], schedule) for i in range(PER_ACCOUNT)]
    assert 429 not in {r.status_code for r in answers}  # 15 each: under the per-ID limit
    refused = await book(api, me, patients[0], schedule)
    assert_attempts_refused(refused, "account_attempts_exceeded", "account")


@pytest.fixture
async def redis(stack: EmbeddedStack) -> AsyncIterator[Redis]:
    client = create_redis(stack.redis_url())
    yield client
    await client.aclose()


def patient_account(subject: str) -> Principal:
    return Principal(subject=subject, roles=frozenset({Role.PATIENT}))


async def test_configured_limits_are_all_or_nothing(
    redis: Redis, make_settings: Callable[..., ServiceSettings]
) -> None:
    settings = make_settings(
        "appointments",
        AppointmentsSettings,
        booking_attempts=BookingAttemptLimits(per_national_id=3, per_account=4, window_seconds=60),
    )
    attempts = BookingAttempts.from_settings(redis, settings)
    scalped: dict[str, Any] = {"_id": "p-1", "national_id_hash": "h" * 64}
    for subject in ("acct-1", "acct-2", "acct-1"):
        await attempts.check(patient_account(subject), scalped)
    with pytest.raises(TooManyRequests) as refused:
        await attempts.check(patient_account("acct-3"), scalped)
    assert refused.value.code == "id_attempts_exceeded"
    # never more than 3 in any 60 s: after a burst of 3 the next attempt waits 60 s
    assert 50 <= int((refused.value.headers or {})["Retry-After"]) <= 60
    # the refused attempt took nothing from acct-3, which has all four left
    for n in range(4):
        await attempts.check(patient_account("acct-3"), {"_id": f"p-{n + 10}"})
    with pytest.raises(TooManyRequests) as refused:
        await attempts.check(patient_account("acct-3"), {"_id": "p-99"})
    assert refused.value.code == "account_attempts_exceeded", "account"
    # staff and services are not counted
    agent = Principal(subject="agent-1", roles=frozenset({Role.AGENT}))
    his = Principal(subject="his", roles=frozenset({Role.SERVICE}))
    for caller in (agent, his, agent):
        await attempts.check(caller, scalped)


async def test_attempts_pass_when_redis_cannot_be_asked() -> None:
    dead = create_redis("redis://127.0.0.1:1/0")
    try:
        limits = BookingAttemptLimits(per_national_id=1, per_account=1)
        attempts = BookingAttempts(dead, "x:", limits)
        for _ in range(3):
            await attempts.check(patient_account("acct-1"), {"_id": "p-1"})
    finally:
        await dead.aclose()


async def test_a_retry_of_one_request_counts_once(
    make_settings: Callable[..., ServiceSettings], redis: Redis
) -> None:
    """Retrying a request with its Idempotency-Key (after a 503 or a lost answer) does not
    spend the patient's attempts; a refused attempt is not marked as counted."""
    settings = make_settings(
        "appointments",
        AppointmentsSettings,
        booking_attempts=BookingAttemptLimits(per_national_id=2, per_account=10, window_seconds=60),
    )
    attempts = BookingAttempts.from_settings(redis, settings)
    patient: dict[str, Any] = {"_id": "p-retry", "national_id_hash": "r" * 64}
    caller = patient_account("acct-retry")
    for _ in range(5):
        await attempts.check(caller, patient, "acct-retry:book:key-one")
    await attempts.check(caller, patient, "acct-retry:book:key-two")
    with pytest.raises(TooManyRequests):
        await attempts.check(caller, patient, "acct-retry:book:key-three")
    with pytest.raises(TooManyRequests):  # refused before: still counted when retried
        await attempts.check(caller, patient, "acct-retry:book:key-three")

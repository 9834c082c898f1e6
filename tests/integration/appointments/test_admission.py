"""The admission gate's pool moves against a real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from devstack.stack import EmbeddedStack
from services.appointments.admission import AdmissionGate, Outcome

pytestmark = pytest.mark.integration

POOLS = ["public", "hotline"]


@pytest.fixture
async def gate(stack: EmbeddedStack, run_id: str) -> AsyncIterator[AdmissionGate]:
    redis: Redis = Redis.from_url(stack.redis_url(), decode_responses=True)
    yield AdmissionGate(redis, f"{run_id}:")
    await redis.aclose()


async def test_returning_reserved_slots_never_resurrects_an_admitted_one(
    gate: AdmissionGate,
) -> None:
    await gate.initialize("s1", {"public": ["p1"], "hotline": ["h1", "h2"]}, [])
    admitted = await gate.admit("s1", "patient-1", ["hotline"])
    assert (admitted.outcome, admitted.slot_id) == (Outcome.ADMITTED, "h1")

    # the pool-return job read both hotline slots as open before that booking committed
    moved = await gate.move("s1", "public", [("hotline", "h1"), ("hotline", "h2")])

    assert moved == 1
    assert await gate.remaining("s1", POOLS) == {"public": 2, "hotline": 0}
    taken = {(await gate.admit("s1", f"patient-{n}", ["public"])).slot_id for n in (2, 3, 4)}
    assert taken == {"p1", "h2", None}


async def test_moving_before_the_state_is_loaded_changes_nothing(gate: AdmissionGate) -> None:
    assert await gate.move("s2", "public", [("hotline", "h1")]) == 0
    assert await gate.remaining("s2", POOLS) is None
    assert await gate.move("s2", "public", []) == 0

"""The waiting room of a release window: arrival order, the slow lane, expiry, sold out.

The room opens when a session has ``waiting_room_capacity`` admissions in flight. Here the
capacity is 1 and the one admission in flight is a booking held by another replica that
is alive (its heartbeat key is fresh) but slow: every booking request meanwhile gets 202
and a ticket. When that admission ends, the room serves the tickets in arrival order.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from services.appointments.admission import AdmissionGate, LeaseTerms, Outcome
from services.appointments.app import create_app
from services.appointments.settings import AppointmentsSettings
from shared.auth import TokenMinter
from shared.settings import ServiceSettings
from tests.integration.appointments.conftest import Api, seed_master_data
from tests.support.server import serve

pytestmark = pytest.mark.integration

SLOW_REPLICA = "appointments@elsewhere:1:slow"


@pytest.fixture
async def api(
    make_settings: Callable[..., ServiceSettings], minter: TokenMinter
) -> AsyncIterator[Api]:
    settings = make_settings(
        "appointments",
        AppointmentsSettings,
        admission={"waiting_room_capacity": 1, "ticket_idle_seconds": 3.0},
    )
    async with (
        serve(create_app(settings)) as base,
        httpx.AsyncClient(base_url=base, timeout=30) as client,
    ):
        api = Api(base, client, minter, settings)
        await seed_master_data(api)
        yield api


@pytest.fixture
async def gate(api: Api) -> AsyncIterator[AdmissionGate]:
    redis: Redis = Redis.from_url(api.settings.redis_url, decode_responses=True)
    prefix = api.settings.redis_key_prefix
    await redis.set(f"{prefix}alive:{SLOW_REPLICA}", "1", ex=120)  # alive, just slow
    yield AdmissionGate(redis, prefix)
    await redis.aclose()


async def public_slots(api: Api, schedule: str) -> int:
    slots = await api.client.get(f"/v1/appointments/schedules/{schedule}/slots", headers=api.admin)
    return sum(1 for s in slots.json() if s["pool"] == "public")


async def hold_one(api: Api, gate: AdmissionGate, schedule: str) -> tuple[str, str]:
    """Another replica's booking in flight: it holds a number (and the room's capacity)."""
    holder = await api.add_patient("acct-holder", name="持有")
    terms = LeaseTerms(120_000, SLOW_REPLICA)
    held = await gate.admit(schedule, holder["id"], ["public"], lease=terms)
    assert held.outcome is Outcome.ADMITTED, held
    return holder["id"], str(held.slot_id)


async def ask(api: Api, account: str, patient_id: str, schedule: str, **headers: str) -> Any:
    answer = await api.client.post(
        "/v1/appointments/appointments",
        headers={**api.token(account), **headers},
        json={"patient_id": patient_id, "schedule_id": schedule},
    )
    assert answer.status_code == 202, answer.text
    assert answer.headers["location"] == answer.json()["ticket"]["poll_url"]
    return answer.json()["ticket"]


async def answer_of(api: Api, account: str, ticket: dict[str, Any]) -> dict[str, Any]:
    for _ in range(100):
        seen = await api.client.get(ticket["poll_url"], headers=api.token(account))
        assert seen.status_code == 200, seen.text
        if seen.json()["status"] not in ("queued", "serving"):
            return dict(seen.json())
        await asyncio.sleep(0.1)
    raise AssertionError(f"ticket {ticket['id']} got no answer")


async def test_tickets_are_served_in_arrival_order_with_bots_behind(
    api: Api, gate: AdmissionGate
) -> None:
    schedule = await api.publish(days_ahead=2, slot_count=6)
    numbers = await public_slots(api, schedule)
    holder, _slot = await hold_one(api, gate, schedule)
    left = numbers - 1
    bot = await api.add_patient("acct-bot", name="脚本")
    bot_ticket = await ask(api, "acct-bot", bot["id"], schedule, **{"X-CareLoop-Lane": "slow"})
    people = [await api.add_patient(f"acct-{n}", name=f"患者{n}") for n in range(left + 2)]
    tickets = [await ask(api, f"acct-{n}", p["id"], schedule) for n, p in enumerate(people)]
    assert [t["position"] for t in tickets] == list(range(1, len(people) + 1))
    again = await ask(api, "acct-0", people[0]["id"], schedule)
    assert again["id"] == tickets[0]["id"]  # one ticket per patient and session
    elsewhere = await api.client.get(tickets[0]["poll_url"], headers=api.token("acct-1"))
    assert elsewhere.status_code == 404  # only its holder sees a ticket

    await gate.settle(schedule, holder)  # the slow booking committed: the room opens

    answers = [await answer_of(api, f"acct-{n}", t) for n, t in enumerate(tickets)]
    statuses = [a["status"] for a in answers]
    assert statuses == ["booked"] * left + ["sold_out"] * 2, statuses
    assert answers[-1]["problem"]["code"] == "slot_sold_out"
    assert len({a["appointment"]["slot_id"] for a in answers[:left]}) == left
    bot_answer = await answer_of(api, "acct-bot", bot_ticket)
    assert bot_answer["status"] == "sold_out"  # it came first, but waited behind people


async def test_sold_out_reaches_every_waiting_ticket_once_certain(
    api: Api, gate: AdmissionGate
) -> None:
    schedule = await api.publish(days_ahead=2, slot_count=2)
    assert await public_slots(api, schedule) == 1
    holder, slot = await hold_one(api, gate, schedule)  # the last number, in flight
    waiting = [await api.add_patient(f"acct-w{n}", name=f"候{n}") for n in range(20)]
    tickets = [await ask(api, f"acct-w{n}", p["id"], schedule) for n, p in enumerate(waiting)]
    await asyncio.sleep(0.5)
    first = await api.client.get(tickets[0]["poll_url"], headers=api.token("acct-w0"))
    assert first.json()["status"] == "queued"  # not certain: the holder may still fail

    await gate.settle(schedule, holder)  # it booked: the number stays taken
    answers = await asyncio.gather(
        *(answer_of(api, f"acct-w{n}", t) for n, t in enumerate(tickets))
    )
    assert {a["status"] for a in answers} == {"sold_out"}
    assert await gate.remaining(schedule, ["public"]) == {"public": 0}
    assert slot


async def test_a_ticket_not_picked_up_expires(api: Api, gate: AdmissionGate) -> None:
    schedule = await api.publish(days_ahead=2, slot_count=6)
    holder, _ = await hold_one(api, gate, schedule)
    gone = await api.add_patient("acct-gone", name="离开")
    stays = await api.add_patient("acct-stays", name="留下")
    gone_ticket = await ask(api, "acct-gone", gone["id"], schedule)
    stays_ticket = await ask(api, "acct-stays", stays["id"], schedule)
    for _ in range(8):  # one holder keeps polling for 4 s, the other walked away
        await api.client.get(stays_ticket["poll_url"], headers=api.token("acct-stays"))
        await asyncio.sleep(0.5)

    await gate.settle(schedule, holder)
    assert (await answer_of(api, "acct-stays", stays_ticket))["status"] == "booked"
    assert (await answer_of(api, "acct-gone", gone_ticket))["status"] == "expired"


async def test_tickets_stream_their_changes(api: Api, gate: AdmissionGate) -> None:
    schedule = await api.publish(days_ahead=2, slot_count=6)
    holder, _ = await hold_one(api, gate, schedule)
    patient = await api.add_patient("acct-sse", name="流")
    ticket = await ask(api, "acct-sse", patient["id"], schedule)

    async def settle_soon() -> None:
        await asyncio.sleep(1.0)
        await gate.settle(schedule, holder)

    settling = asyncio.create_task(settle_soon())
    events: list[str] = []
    async with api.client.stream(
        "GET", ticket["events_url"], headers=api.token("acct-sse")
    ) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        async for line in stream.aiter_lines():
            if line.startswith("data: "):
                events.append(line)
    await settling
    assert '"status": "queued"' in events[0]
    assert '"status": "booked"' in events[-1]

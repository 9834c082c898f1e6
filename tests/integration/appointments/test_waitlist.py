"""The waitlist (候补) through the service's HTTP API, on the real embedded stack.

A 4-slot session has 3 public slots (one goes to the referral pool): three patients book
them, then others join the line. Offers expire through the service's own job runner:
a test moves the offer's expiry and its job's due time into the past.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from shared.principal import Role
from tests.integration.appointments.conftest import ORG, Api

pytestmark = pytest.mark.integration

WAITLIST = "/v1/appointments/waitlist"
OFFERED_TYPE = "careloop.appointment.waitlist.offered"
Db = AsyncDatabase[dict[str, Any]]


@pytest.fixture
async def db(appointments_api: Api) -> AsyncIterator[Db]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        appointments_api.settings.mongo_url, tz_aware=True
    )
    yield client[appointments_api.settings.database_name]
    await client.close()


class Person:
    """A patient with their own account."""

    def __init__(self, api: Api, account: str, patient: dict[str, Any]) -> None:
        self.api, self.account, self.id = api, account, str(patient["id"])
        self.headers = api.token(account)

    @classmethod
    async def new(cls, api: Api, account: str) -> Person:
        return cls(api, account, await api.add_patient(account, name=f"患者{account[-2:]}"))

    async def book(self, schedule: str) -> httpx.Response:
        body = {"patient_id": self.id, "schedule_id": schedule}
        return await self.api.client.post(
            "/v1/appointments/appointments", headers=self.headers, json=body
        )

    async def cancel(self, appointment_id: str) -> httpx.Response:
        return await self.api.client.post(
            f"/v1/appointments/appointments/{appointment_id}/cancel",
            headers=self.headers,
            json={"reason": "plans changed"},
        )

    async def join(self, schedule: str) -> httpx.Response:
        body = {"patient_id": self.id, "schedule_id": schedule}
        return await self.api.client.post(WAITLIST, headers=self.headers, json=body)

    async def entries(self) -> list[dict[str, Any]]:
        response = await self.api.client.get(WAITLIST, headers=self.headers)
        assert response.status_code == 200, response.text
        return list(response.json()["items"])

    async def entry(self, entry_id: str) -> dict[str, Any]:
        response = await self.api.client.get(f"{WAITLIST}/{entry_id}", headers=self.headers)
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def confirm(self, entry_id: str) -> httpx.Response:
        return await self.api.client.post(f"{WAITLIST}/{entry_id}/confirm", headers=self.headers)

    async def leave(self, entry_id: str) -> httpx.Response:
        return await self.api.client.delete(f"{WAITLIST}/{entry_id}", headers=self.headers)


async def slots(api: Api, schedule: str) -> list[dict[str, Any]]:
    response = await api.client.get(
        f"/v1/appointments/schedules/{schedule}/slots", headers=api.admin
    )
    assert response.status_code == 200, response.text
    return list(response.json())


async def full_session(api: Api, days_ahead: int = 3) -> tuple[str, dict[str, Person], list[str]]:
    """A 4-slot session whose 3 public slots are booked: (schedule, bookers, appointment ids)."""
    schedule = await api.publish(days_ahead=days_ahead, slot_count=4)
    pools = [s["pool"] for s in await slots(api, schedule)]
    assert pools.count("public") == 3, pools
    bookers: dict[str, Person] = {}
    appointments = []
    for n in range(3):
        person = await Person.new(api, f"booker-{n}")
        booked = await person.book(schedule)
        assert booked.status_code == 201, booked.text
        bookers[booked.json()["id"]] = person
        appointments.append(str(booked.json()["id"]))
    return schedule, bookers, appointments


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.1)


async def offered_events(db: Db, patient_id: str) -> list[dict[str, Any]]:
    docs = await db.outbox.find({"headers.ce_type": OFFERED_TYPE, "key": patient_id}).to_list()
    return [json.loads(d["value"]) for d in docs]


async def lapse(db: Db, entry_id: str) -> None:
    """Make an offer's time run out: its expiry and its job's due time move into the past."""
    past = datetime.now(UTC) - timedelta(seconds=1)
    await db.waitlist.update_one({"_id": entry_id}, {"$set": {"offer_expires_at": past}})
    moved = await db.jobs.update_one(
        {"key": f"waitlist-offer:{entry_id}", "status": "scheduled"}, {"$set": {"due_at": past}}
    )
    assert moved.modified_count == 1


async def test_joining_only_a_full_session_once(appointments_api: Api) -> None:
    api = appointments_api
    schedule = await api.publish(days_ahead=3, slot_count=4)
    early = await Person.new(api, "acct-w1")
    refused = await early.join(schedule)
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "slots_available"
    assert refused.json()["detail_zh"]
    assert refused.headers["content-type"] == "application/problem+json"

    bookers = []
    for n in range(3):
        person = await Person.new(api, f"booker-{n}")
        assert (await person.book(schedule)).status_code == 201
        bookers.append(person)
    assert [s["available"] for s in await slots(api, schedule) if s["pool"] == "public"] == [
        False
    ] * 3
    first = await early.join(schedule)
    assert first.status_code == 201, first.text
    assert first.json()["status"] == "waiting"
    assert first.json()["position"] == 1
    second_person = await Person.new(api, "acct-w2")
    second = await second_person.join(schedule)
    assert second.status_code == 201, second.text
    assert second.json()["position"] == 2

    again = await early.join(schedule)
    assert again.status_code == 409
    assert again.json()["code"] == "already_waiting"
    assert again.json()["entry_id"] == first.json()["id"]
    booked_already = await bookers[0].join(schedule)
    assert booked_already.status_code == 409
    assert booked_already.json()["code"] == "duplicate_booking"

    mine = await early.entries()
    assert [(e["id"], e["status"], e["position"]) for e in mine] == [
        (first.json()["id"], "waiting", 1)
    ]
    assert mine[0]["slot"] is None
    assert mine[0]["resource_name"] == "王医生"
    other = await api.client.get(f"{WAITLIST}/{first.json()['id']}", headers=second_person.headers)
    assert other.status_code == 404
    assert other.json()["code"] == "waitlist_entry_not_found"


async def test_limits_bans_and_staff_joining_on_behalf(appointments_api: Api, db: Db) -> None:
    api = appointments_api
    policy = (
        await api.client.get(f"/v1/appointments/admin/policies/{ORG}", headers=api.admin)
    ).json()
    policy["waitlist_max_entries_per_patient"] = 1
    saved = await api.client.put(
        f"/v1/appointments/admin/policies/{ORG}", json=policy, headers=api.admin
    )
    assert saved.status_code == 200, saved.text
    morning = await api.publish(days_ahead=3, slot_count=1)
    afternoon = await api.publish(days_ahead=3, slot_count=1, session="afternoon")
    for n, schedule in enumerate((morning, afternoon)):
        assert (await (await Person.new(api, f"booker-{n}")).book(schedule)).status_code == 201

    waiting = await Person.new(api, "acct-w1")
    assert (await waiting.join(morning)).status_code == 201
    limited = await waiting.join(afternoon)
    assert limited.status_code == 409
    assert limited.json()["code"] == "waitlist_limit"

    banned = await Person.new(api, "acct-w2")
    recent = [datetime.now(UTC) - timedelta(days=d) for d in (1, 2, 3)]
    await db.patient_records.insert_one({"_id": banned.id, "no_shows": recent, "late_cancels": []})
    refused = await banned.join(morning)
    assert refused.status_code == 403
    assert refused.json()["code"] == "patient_banned"

    agent = api.token("agent-7", Role.AGENT)
    walk_in = await Person.new(api, "acct-w3")
    body = {"patient_id": walk_in.id, "schedule_id": morning}
    joined = await api.client.post(
        WAITLIST, headers=agent, json=body, params={"reason": "来电候补"}
    )
    assert joined.status_code == 201, joined.text
    assert joined.json()["channel"] == "hotline"
    assert joined.json()["position"] == 2
    assert [e["id"] for e in await walk_in.entries()] == [joined.json()["id"]]
    audit = await db.audit_log.find({"action": "waitlist.join"}).to_list()
    assert [(a["actor_id"], a["patient_id"], a["reason"]) for a in audit] == [
        ("agent-7", walk_in.id, "来电候补")
    ]


async def test_a_freed_slot_is_held_for_the_first_in_line_until_confirmed(
    appointments_api: Api, db: Db
) -> None:
    api = appointments_api
    schedule, bookers, appointments = await full_session(api)
    w1, w2 = await Person.new(api, "acct-w1"), await Person.new(api, "acct-w2")
    e1 = (await w1.join(schedule)).json()["id"]
    e2 = (await w2.join(schedule)).json()["id"]
    freed = (await db.appointments.find_one({"_id": appointments[0]}) or {})["slot_id"]

    cancelled = await bookers[appointments[0]].cancel(appointments[0])
    assert cancelled.status_code == 200, cancelled.text
    offer = await w1.entry(e1)
    assert offer["status"] == "offered"
    assert offer["position"] is None
    assert offer["slot"]["id"] == freed
    expires = datetime.fromisoformat(offer["offer_expires_at"])
    assert timedelta(minutes=14) < expires - datetime.now(UTC) <= timedelta(minutes=15)
    assert (await w2.entry(e2))["position"] == 1
    slot = await db.slots.find_one({"_id": freed}) or {}
    assert (slot["status"], slot["held_for"]) == ("held", e1)
    assert [s["available"] for s in await slots(api, schedule) if s["id"] == freed] == [False]
    events = await offered_events(db, w1.id)
    assert [(e["subject"], e["data"]["slot_id"], e["data"]["waitlist_id"]) for e in events] == [
        (w1.id, freed, e1)
    ]
    job = await db.jobs.find_one({"key": f"waitlist-offer:{e1}"}) or {}
    assert (job["kind"], job["status"]) == ("waitlist.offer_expired", "scheduled")

    outsider = await Person.new(api, "acct-p4")
    sold_out = await outsider.book(schedule)
    assert sold_out.status_code == 409
    assert sold_out.json()["code"] == "slot_sold_out"
    not_yours = await w2.confirm(e1)
    assert not_yours.status_code == 404
    not_yet = await w2.confirm(e2)
    assert not_yet.status_code == 409
    assert not_yet.json()["code"] == "no_offer"

    confirmed = await w1.confirm(e1)
    assert confirmed.status_code == 201, confirmed.text
    appointment = confirmed.json()
    assert (appointment["status"], appointment["slot_id"], appointment["patient_id"]) == (
        "booked",
        freed,
        w1.id,
    )
    assert appointment["number"] == slot["number"]
    after = await w1.entry(e1)
    assert (after["status"], after["appointment_id"]) == ("booked", appointment["id"])
    assert ((await db.slots.find_one({"_id": freed})) or {})["status"] == "booked"
    assert ((await db.jobs.find_one({"key": f"waitlist-offer:{e1}"})) or {})["status"] == (
        "cancelled"
    )
    booked_types = await db.outbox.find(
        {"key": w1.id, "headers.ce_type": "careloop.appointment.booked"}
    ).to_list()
    assert len(booked_types) == 1
    second_number = await w1.book(schedule)
    assert second_number.status_code == 409
    assert second_number.json()["code"] == "duplicate_booking"
    twice = await w1.confirm(e1)
    assert twice.status_code == 409
    assert twice.json()["code"] == "waitlist_entry_inactive"

    again = await bookers[appointments[1]].cancel(appointments[1])
    assert again.status_code == 200
    second_offer = await w2.entry(e2)
    assert second_offer["status"] == "offered"
    assert (
        second_offer["slot"]["id"]
        == ((await db.appointments.find_one({"_id": appointments[1]})) or {})["slot_id"]
    )


async def test_an_expired_offer_passes_to_the_next_then_back_to_booking(
    appointments_api: Api, db: Db
) -> None:
    api = appointments_api
    schedule, bookers, appointments = await full_session(api)
    w1, w2 = await Person.new(api, "acct-w1"), await Person.new(api, "acct-w2")
    e1 = (await w1.join(schedule)).json()["id"]
    e2 = (await w2.join(schedule)).json()["id"]
    assert (await bookers[appointments[0]].cancel(appointments[0])).status_code == 200
    freed = (await w1.entry(e1))["slot"]["id"]

    past = datetime.now(UTC) - timedelta(seconds=1)
    await db.waitlist.update_one({"_id": e1}, {"$set": {"offer_expires_at": past}})
    late = await w1.confirm(e1)  # the expiry job has not run yet: the deadline alone refuses
    assert late.status_code == 409
    assert late.json()["code"] == "offer_expired"

    await lapse(db, e1)

    async def passed_on() -> bool:
        return (await w2.entry(e2))["status"] == "offered"

    await eventually(passed_on)
    assert (await w1.entry(e1))["status"] == "expired"
    assert (await w2.entry(e2))["slot"]["id"] == freed
    assert ((await db.slots.find_one({"_id": freed})) or {})["held_for"] == e2
    assert len(await offered_events(db, w2.id)) == 1

    # a retried expiry job changes nothing: w1 stays expired, w2 keeps the slot
    await db.jobs.update_one(
        {"key": f"waitlist-offer:{e1}"}, {"$set": {"status": "scheduled", "due_at": past}}
    )

    async def retried() -> bool:
        job = await db.jobs.find_one({"key": f"waitlist-offer:{e1}"}) or {}
        return bool(job["status"] == "done" and job["attempts"] >= 2)

    await eventually(retried)
    assert ((await db.slots.find_one({"_id": freed})) or {})["held_for"] == e2
    assert (await w2.entry(e2))["status"] == "offered"
    assert (await w1.confirm(e1)).json()["code"] == "offer_expired"

    await lapse(db, e2)

    async def reopened() -> bool:
        return any(s["id"] == freed and s["available"] for s in await slots(api, schedule))

    await eventually(reopened)
    assert (await w2.entry(e2))["status"] == "expired"
    assert (await db.slots.find_one({"_id": freed}) or {}).get("held_for") is None
    newcomer = await Person.new(api, "acct-p5")
    booked = await newcomer.book(schedule)
    assert booked.status_code == 201, booked.text
    assert booked.json()["slot_id"] == freed


async def test_leaving_the_line_passes_an_outstanding_offer_on(
    appointments_api: Api, db: Db
) -> None:
    api = appointments_api
    schedule, bookers, appointments = await full_session(api)
    w1, w2, w3 = [await Person.new(api, f"acct-w{n}") for n in (1, 2, 3)]
    e1, e2, e3 = [(await w.join(schedule)).json()["id"] for w in (w1, w2, w3)]

    left = await w2.leave(e2)
    assert left.status_code == 200, left.text
    assert left.json()["status"] == "left"
    assert (await w3.entry(e3))["position"] == 2
    twice = await w2.leave(e2)
    assert twice.status_code == 409
    assert twice.json()["code"] == "waitlist_entry_inactive"
    rejoined = await w2.join(schedule)  # leaving frees the place: joining again goes last
    assert rejoined.status_code == 201, rejoined.text
    assert rejoined.json()["position"] == 3

    assert (await bookers[appointments[0]].cancel(appointments[0])).status_code == 200
    freed = (await w1.entry(e1))["slot"]["id"]
    gave_up = await w1.leave(e1)
    assert gave_up.status_code == 200
    assert ((await db.jobs.find_one({"key": f"waitlist-offer:{e1}"})) or {})["status"] == (
        "cancelled"
    )
    offer = await w3.entry(e3)
    assert (offer["status"], offer["slot"]["id"]) == ("offered", freed)
    assert ((await db.slots.find_one({"_id": freed})) or {})["held_for"] == e3
    assert (await w2.entry(rejoined.json()["id"]))["position"] == 1


async def test_the_queue_closes_the_evening_before(appointments_api: Api, db: Db) -> None:
    api = appointments_api
    url = f"/v1/appointments/admin/policies/{ORG}"
    policy = (await api.client.get(url, headers=api.admin)).json()

    async def closes_at(at: str) -> None:
        saved = await api.client.put(
            url, json={**policy, "waitlist_closes_at": at}, headers=api.admin
        )
        assert saved.status_code == 200, saved.text

    await closes_at("23:59:59.999999")  # tonight, at the very last moment: still open
    schedule = await api.publish(days_ahead=1, slot_count=1)  # one public slot, tomorrow
    booker = await Person.new(api, "booker-0")
    booked = await booker.book(schedule)
    assert booked.status_code == 201, booked.text
    waiting = await Person.new(api, "acct-w1")
    joined = await waiting.join(schedule)
    assert joined.status_code == 201, joined.text
    entry_id = joined.json()["id"]
    job = await db.jobs.find_one({"key": f"waitlist-close:{schedule}"}) or {}
    assert job["kind"] == "waitlist.close"
    assert job["due_at"] == datetime.fromisoformat(joined.json()["closes_at"])

    await closes_at("00:00")  # closed since midnight
    late = await Person.new(api, "acct-w2")
    refused = await late.join(schedule)
    assert refused.status_code == 409
    assert refused.json()["code"] == "waitlist_closed"
    assert datetime.fromisoformat(refused.json()["closes_at"]) <= datetime.now(UTC)

    past = datetime.now(UTC) - timedelta(seconds=1)
    await db.jobs.update_one({"_id": job["_id"]}, {"$set": {"due_at": past}})

    async def closed() -> bool:
        return (await waiting.entry(entry_id))["status"] == "closed"

    await eventually(closed)
    assert (await waiting.entry(entry_id))["position"] is None
    assert (await booker.cancel(booked.json()["id"])).status_code == 200
    assert [s["available"] for s in await slots(api, schedule)] == [True]
    assert await offered_events(db, waiting.id) == []


async def test_a_cancelled_session_closes_its_waitlist(appointments_api: Api) -> None:
    api = appointments_api
    schedule, _bookers, _ = await full_session(api)
    waiting = await Person.new(api, "acct-w-cancel")
    joined = await waiting.join(schedule)
    assert joined.status_code == 201, joined.text
    cancelled = await api.client.post(
        f"/v1/appointments/admin/schedules/{schedule}/cancel",
        headers=api.admin,
        json={"reason": "医生临时停诊"},
    )
    assert cancelled.status_code == 200, cancelled.text
    entry = await waiting.entry(joined.json()["id"])
    assert entry["status"] == "closed"

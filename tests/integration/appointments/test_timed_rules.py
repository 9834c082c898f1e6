"""Timed rules: unused reserved slots return to the public pool; no-shows lead to a ban.

Time is moved by editing due times and slot windows in the service's own database, then
the service's job runner (polling every 0.1 s in tests) does the rest.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from pymongo import AsyncMongoClient

from shared.mongo import Database
from tests.integration.appointments.conftest import Api
from tests.support.kafka import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
async def db(appointments_api: Api) -> AsyncIterator[Database]:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        appointments_api.settings.mongo_url, tz_aware=True
    )
    yield client[appointments_api.settings.database_name]
    await client.close()


async def run_job_now(db: Database, key: str) -> None:
    result = await db.jobs.update_one(
        {"key": key, "status": "scheduled"}, {"$set": {"due_at": datetime.now(UTC) - timedelta(1)}}
    )
    assert result.modified_count == 1

    async def done() -> bool:
        doc = await db.jobs.find_one({"key": key})
        return doc is not None and doc["status"] == "done"

    await wait_until(done, timeout=15, what=f"job {key} done")


async def test_unused_reserved_slots_return_to_the_public_pool(
    appointments_api: Api, db: Database
) -> None:
    api = appointments_api
    schedule = await api.publish(days_ahead=2, slot_count=10, clinic_type="expert")
    slots = (
        await api.client.get(f"/v1/appointments/schedules/{schedule}/slots", headers=api.admin)
    ).json()
    before = Counter(s["pool"] for s in slots)
    assert before["referral"] == 3
    assert before["public"] == 5

    await run_job_now(db, f"pool-return:{schedule}")
    slots = (
        await api.client.get(f"/v1/appointments/schedules/{schedule}/slots", headers=api.admin)
    ).json()
    assert Counter(s["pool"] for s in slots) == {"public": 10}
    found = await api.client.get(
        "/v1/appointments/schedules",
        headers=api.admin,
        params={"org_id": "h1", "resource_id": "h1.D1"},
    )
    remaining = {s["id"]: s["remaining"] for s in found.json()}[schedule]
    assert remaining["public"] == 10
    assert remaining["referral"] == 0


async def test_three_no_shows_in_the_window_ban_booking(
    appointments_api: Api, db: Database
) -> None:
    api = appointments_api
    patient = await api.add_patient("acct-ns")
    me = api.token("acct-ns")
    for n, days in enumerate((1, 2, 3)):
        schedule = await api.publish(days_ahead=days, slot_count=4, doctor="D2")
        booked = await api.client.post(
            "/v1/appointments/appointments",
            headers=me,
            json={"patient_id": patient["id"], "schedule_id": schedule},
        )
        assert booked.status_code == 201, booked.text
        # the session took place yesterday and the patient never came
        past = datetime.now(UTC) - timedelta(days=1, hours=n)
        await db.appointments.update_one(
            {"_id": booked.json()["id"]},
            {"$set": {"starts_at": past, "ends_at": past + timedelta(minutes=30)}},
        )
        await run_job_now(db, f"no-show:{schedule}")
        status = await api.client.get(
            f"/v1/appointments/appointments/{booked.json()['id']}", headers=me
        )
        assert status.json()["status"] == "no_show"

    events = await db.outbox.find({"headers.ce_type": "careloop.appointment.no_show"}).to_list()
    assert len(events) == 3
    refused = await api.client.post(
        "/v1/appointments/appointments",
        headers=me,
        json={
            "patient_id": patient["id"],
            "schedule_id": await api.publish(days_ahead=4, slot_count=4, doctor="D2"),
        },
    )
    assert refused.status_code == 403
    assert refused.json()["code"] == "patient_banned"
    assert "banned_until" in refused.json()

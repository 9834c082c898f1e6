"""Release-time refusals are answered from Redis alone: Mongo sees only admitted requests.

Every command the service sends to its booking collections is counted with PyMongo's
command monitoring (a listener on the real driver, registered before the app's client is
made). Once the caches hold a patient and a session, attempts on a sold-out session, on a
session not yet released, by a banned patient, for another account's patient or over the
attempt limit send no command to Mongo at all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pymongo import AsyncMongoClient, monitoring
from redis.asyncio import Redis

from services.appointments.admission_cache import AdmissionCache
from services.appointments.app import create_app
from services.appointments.settings import AppointmentsSettings
from shared.auth import TokenMinter
from shared.mongo import Document
from shared.settings import ServiceSettings
from tests.integration.appointments.conftest import ORG, Api, seed_master_data
from tests.support.server import serve

pytestmark = pytest.mark.integration

WATCHED = {
    *("patients", "patient_records", "schedules", "slots", "appointments"),
    *("booking_policies", "idempotency_keys", "resources", "departments"),
}


class BookingReads(monitoring.CommandListener):
    """Commands on the booking collections of one database, by collection."""

    def __init__(self) -> None:
        self.database = ""
        self.seen: Counter[str] = Counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.database_name != self.database:
            return
        target = event.command.get(event.command_name)
        if isinstance(target, str) and target in WATCHED:
            self.seen[f"{event.command_name}:{target}"] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


READS = BookingReads()
monitoring.register(READS)  # every client made from now on reports to it


@pytest.fixture
async def api(
    make_settings: Callable[..., ServiceSettings], minter: TokenMinter
) -> AsyncIterator[Api]:
    settings = make_settings(
        "appointments",
        AppointmentsSettings,
        booking_attempts={"per_national_id": 10, "per_account": 50, "window_seconds": 600},
    )
    READS.database = settings.database_name
    async with (
        serve(create_app(settings)) as base,
        httpx.AsyncClient(base_url=base, timeout=30) as client,
    ):
        api = Api(base, client, minter, settings)
        await seed_master_data(api)
        yield api
    READS.database = ""


async def book(api: Api, account: str, patient_id: str, schedule: str) -> httpx.Response:
    return await api.client.post(
        "/v1/appointments/appointments",
        headers=api.token(account),
        json={"patient_id": patient_id, "schedule_id": schedule},
    )


async def test_refusals_send_nothing_to_mongo(api: Api, mongo: AsyncMongoClient[Document]) -> None:
    sold_out = await api.publish(days_ahead=2, slot_count=2)  # one public number
    later = await api.publish(days_ahead=30, slot_count=10, doctor="D2")  # not yet released
    first = await api.add_patient("acct-first", name="甲")
    assert (await book(api, "acct-first", first["id"], sold_out)).status_code == 201

    buyer = await api.add_patient("acct-buyer", name="乙")
    banned = await api.add_patient("acct-banned", name="丙")
    limited = await api.add_patient("acct-limited", name="丁")
    recent = datetime.now(UTC) - timedelta(days=1)
    await mongo[api.settings.database_name].patient_records.update_one(
        {"_id": banned["id"]},
        {"$set": {"no_shows": [{"at": recent, "org_id": ORG}] * 3, "late_cancels": []}},
        upsert=True,
    )
    # written behind the service's back: tell the cache, as records.add_offence does
    redis = Redis.from_url(api.settings.redis_url, decode_responses=True)
    await AdmissionCache(
        redis, mongo[api.settings.database_name], api.settings.redis_key_prefix
    ).patient_changed(banned["id"])
    await redis.aclose()

    cases = [
        ("acct-buyer", buyer["id"], sold_out, 409, "slot_sold_out"),
        ("acct-buyer", buyer["id"], later, 409, "slot_not_released"),
        ("acct-banned", banned["id"], sold_out, 403, "patient_banned"),
        ("acct-buyer", first["id"], sold_out, 403, "forbidden_patient"),
    ]
    for account, patient_id, schedule, _, _ in cases:  # the first look fills the caches
        await book(api, account, patient_id, schedule)
    for _ in range(10):  # spends the patient's attempts (10 per national ID)
        await book(api, "acct-limited", limited["id"], sold_out)

    READS.seen.clear()
    for _ in range(3):
        for account, patient_id, schedule, status, code in cases:
            answer = await book(api, account, patient_id, schedule)
            assert (answer.status_code, answer.json()["code"]) == (status, code), answer.text
        over = await book(api, "acct-limited", limited["id"], sold_out)
        assert (over.status_code, over.json()["code"]) == (429, "id_attempts_exceeded")
    assert READS.seen == Counter(), READS.seen

    # an admitted request does go to Mongo: the listener does see the booking collections
    fresh = await api.publish(days_ahead=2, slot_count=2, doctor="D2", session="afternoon")
    assert (await book(api, "acct-buyer", buyer["id"], fresh)).status_code == 201
    assert READS.seen["findAndModify:slots"] == 1


async def test_a_change_reaches_the_cache(api: Api) -> None:
    """Unlinking a patient or cancelling a session is seen by the next attempt at once."""
    schedule = await api.publish(days_ahead=2, slot_count=10)
    patient = await api.add_patient("acct-family", name="戊")
    other = await api.add_patient("acct-other", name="己")
    refused = await book(api, "acct-other", patient["id"], schedule)
    assert refused.status_code == 403  # the caches now hold both patients and the session

    unlinked = await api.client.delete(
        f"/v1/appointments/patients/{other['id']}", headers=api.token("acct-other")
    )
    assert unlinked.status_code == 204, unlinked.text
    gone = await book(api, "acct-other", other["id"], schedule)
    assert (gone.status_code, gone.json()["code"]) == (403, "forbidden_patient")

    cancelled = await api.client.post(
        f"/v1/appointments/admin/schedules/{schedule}/cancel",
        headers=api.admin,
        params={"reason": "doctor ill"},
        json={"reason": "医生临时停诊"},
    )
    assert cancelled.status_code == 200, cancelled.text
    answer = await book(api, "acct-family", patient["id"], schedule)
    assert (answer.status_code, answer.json()["code"]) == (409, "schedule_cancelled")


async def test_a_new_patient_is_cached_when_registered(api: Api) -> None:
    """A patient added before the release is refused at the release without a Mongo read:
    registering it put it in the cache."""
    sold_out = await api.publish(days_ahead=2, slot_count=2)  # one public number
    first = await api.add_patient("acct-early", name="早")
    assert (await book(api, "acct-early", first["id"], sold_out)).status_code == 201
    newcomer = await api.add_patient("acct-new", name="新")

    READS.seen.clear()
    answer = await book(api, "acct-new", newcomer["id"], sold_out)
    assert (answer.status_code, answer.json()["code"]) == (409, "slot_sold_out")
    assert READS.seen == Counter(), READS.seen

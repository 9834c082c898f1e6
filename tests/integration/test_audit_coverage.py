"""Every staff read or change of a patient's data leaves an audit record (docs/architecture.md §8).

Each staff call below runs against the real service over HTTP; its record is checked in the
service's ``audit_log`` (who, role, what, which patient, when, why) and read back as an admin
through ``GET /v1/<service>/admin/audit``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from pymongo import AsyncMongoClient

from services.appointments.app import create_app as appointments_app
from services.appointments.settings import AppointmentsSettings
from services.notifications.settings import NotificationsSettings
from services.notifications.store import MESSAGES
from shared.audit import AUDIT_COLLECTION, AuditLog, AuditRecord
from shared.auth import TokenMinter
from shared.mongo import Database, Document
from shared.principal import Principal, Role
from shared.settings import ServiceSettings
from tests.factories import make_national_id, make_phone
from tests.integration.appointments.conftest import ORG, Api, seed_master_data
from tests.integration.appointments.test_changes import publish_now
from tests.integration.notifications.conftest import (
    NotificationsApi,
    booked,
    facts,
    running_notifications,
)
from tests.support.patient_codes import add_patient
from tests.support.server import serve

pytestmark = pytest.mark.integration

APPTS = "/v1/appointments/appointments"
WAITLIST = "/v1/appointments/waitlist"


def now_ms() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


class Auditor:
    """Checks the audit record a staff call left, in the database and through the API."""

    def __init__(self, client: httpx.AsyncClient, service: str, db: Database, admin: Any) -> None:
        self.client, self.service, self.db, self.admin = client, service, db, admin
        self.start = now_ms()
        self.checked = 0

    def mark(self) -> None:
        self.start = now_ms()

    async def expect(
        self,
        actor: Principal,
        action: str,
        patient_id: str,
        resource: str,
        why: str | None,
        *,
        since: datetime | None = None,
    ) -> dict[str, Any]:
        """The one record of ``action`` by ``actor`` on ``patient_id`` since the last mark."""
        start, end = since or self.start, now_ms() + timedelta(milliseconds=1)
        query = {"action": action, "actor_id": actor.subject, "patient_id": patient_id}
        window = {"at": {"$gte": start, "$lt": end}}
        [doc] = await self.db[AUDIT_COLLECTION].find({**query, **window}).to_list()
        expected = (actor.subject, actor.primary_role, resource, why)
        assert (doc["actor_id"], doc["actor_role"], doc["resource"], doc["reason"]) == expected
        params = {**query, "since": start.isoformat(), "until": end.isoformat()}
        listed = await self.client.get(
            f"/v1/{self.service}/admin/audit", params=params, headers=self.admin
        )
        [item] = ok(listed)["items"]
        assert (item["id"], item["patient_id"], item["action"]) == (doc["_id"], patient_id, action)
        assert (item["actor_id"], item["actor_role"], item["resource"], item["reason"]) == expected
        assert start <= datetime.fromisoformat(item["at"]) < end
        self.checked += 1
        self.mark()
        return dict(doc)


def staff(api: Api | NotificationsApi, subject: str, role: Role) -> tuple[Principal, Any]:
    principal = Principal(subject=subject, roles=frozenset({role}), org_id="h1")
    return principal, api.token(subject, role)


def reason_h(headers: dict[str, str], reason: str) -> dict[str, str]:
    """``headers`` with the staff reason as percent-encoded UTF-8 in X-Access-Reason."""
    return {**headers, "X-Access-Reason": quote(reason)}


def rfc8187_h(headers: dict[str, str], reason: str) -> dict[str, str]:
    return {**headers, "X-Access-Reason*": f"UTF-8''{quote(reason)}"}


def raw(reason: str) -> bytes:
    """The reason as raw UTF-8 bytes in the header (what many clients send)."""
    return reason.encode()


@pytest.fixture
async def appointments(
    make_settings: Callable[..., ServiceSettings], minter: TokenMinter
) -> AsyncIterator[Api]:
    settings = make_settings("appointments", AppointmentsSettings)
    async with (
        serve(appointments_app(settings)) as base,
        httpx.AsyncClient(base_url=base, timeout=30) as client,
    ):
        api = Api(base, client, minter, settings)
        await seed_master_data(api)
        yield api


async def test_staff_reads_and_changes_of_appointments_are_audited(
    appointments: Api, mongo: AsyncMongoClient[Document]
) -> None:
    api, post, get = appointments, appointments.client.post, appointments.client.get
    db = mongo[api.settings.database_name]
    check = Auditor(api.client, "appointments", db, api.admin)
    agent, agent_h = staff(api, "agent-7", Role.AGENT)
    nurse, nurse_h = staff(api, "nurse-3", Role.NURSE)
    coord, coord_h = staff(api, "coord-1", Role.COORDINATOR)
    admin, _ = staff(api, "admin-1", Role.ADMIN)
    national_id = make_national_id()
    body = {"name": "张三", "national_id": national_id, "phone": make_phone()}
    pid = ok(await add_patient(api.client, api.settings, api.token("a1"), body), 201)["id"]
    s1 = await api.publish(days_ahead=2, doctor="D1")
    s2 = await api.publish(days_ahead=3, doctor="D2")
    s3 = await api.publish(days_ahead=4, doctor="D1", slot_count=1)
    alternative = await api.publish(days_ahead=10, doctor="D2", slot_count=2)

    check.mark()
    book = {"patient_id": pid, "schedule_id": s1}
    refused_booking = await post(APPTS, headers=agent_h, json={**book, "reason": "正文不算"})
    assert (refused_booking.status_code, refused_booking.json()["code"]) == (
        400,
        "reason_required",
    )
    # the reason in every form: percent-encoded, RFC 8187, raw UTF-8 bytes, query
    first = ok(await post(APPTS, headers=reason_h(agent_h, "来电预约"), json=book), 201)["id"]
    await check.expect(agent, "appointment.book", pid, f"appointment:{first}", "来电预约")
    no_reason = await get(f"{APPTS}/{first}", headers=agent_h)
    assert (no_reason.status_code, no_reason.json()["code"]) == (400, "reason_required")
    ok(await get(f"{APPTS}/{first}", headers=rfc8187_h(agent_h, "核对")))
    await check.expect(agent, "appointment.read", pid, f"appointment:{first}", "核对")
    lookup = {"national_id": national_id}
    url = "/v1/appointments/staff/patients/lookup"
    found = await post(url, json=lookup, headers={**agent_h, "X-Access-Reason": raw("窗口查询")})
    assert ok(found)["id"] == pid
    assert national_id not in found.text
    await check.expect(agent, "patient.lookup", pid, "patient", "窗口查询")
    identity = f"/v1/appointments/staff/patients/{pid}/identity"
    unsaid = await post(identity, headers=nurse_h)
    assert (unsaid.status_code, unsaid.json()["code"]) == (400, "reason_required")
    assert national_id not in unsaid.text
    revealed = ok(await post(identity, headers=reason_h(nurse_h, "核验身份证")))
    assert (revealed["national_id"], revealed["phone"]) == (national_id, body["phone"])
    await check.expect(nurse, "patient.identity.reveal", pid, f"patient:{pid}", "核验身份证")
    denied = await post(identity, params={"reason": "核验身份证"}, headers=coord_h)
    assert denied.status_code == 403
    assert national_id not in denied.text
    history = f"/v1/appointments/staff/patients/{pid}/appointments"
    ok(await get(history, headers=reason_h(agent_h, "随访")))
    await check.expect(agent, "appointment.list", pid, f"patient:{pid}", "随访")
    move = {"schedule_id": s2}
    moved = await post(f"{APPTS}/{first}/reschedule", headers=agent_h, json=move)
    assert (moved.status_code, moved.json()["code"]) == (400, "reason_required")
    moved = await post(f"{APPTS}/{first}/reschedule", headers=reason_h(agent_h, "改期"), json=move)
    second = ok(moved)["id"]
    await check.expect(agent, "appointment.reschedule", pid, f"appointment:{first}", "改期")
    cancel_url, why = f"{APPTS}/{second}/cancel", {"reason": "来电取消"}
    unsaid = await post(cancel_url, headers=agent_h, json=why)
    assert (unsaid.status_code, unsaid.json()["code"]) == (400, "reason_required")
    ok(await post(cancel_url, headers=agent_h, json=why, params={"reason": "患者来电"}))
    record = await check.expect(
        agent, "appointment.cancel", pid, f"appointment:{second}", "患者来电"
    )
    assert record["details"] == {"cancel_reason": "来电取消"}

    # the waitlist of a full session: join, list, read, leave, join again, confirm the offer
    booker = (await api.add_patient("booker"))["id"]
    taken = {"patient_id": booker, "schedule_id": s3}
    taken_id = ok(await post(APPTS, headers=api.token("booker"), json=taken), 201)["id"]
    check.mark()
    join = {"patient_id": pid, "schedule_id": s3}
    entry = ok(await post(WAITLIST, headers=reason_h(agent_h, "候补"), json=join), 201)["id"]
    await check.expect(agent, "waitlist.join", pid, f"waitlist:{entry}", "候补")
    refused = await get(WAITLIST, params={"patient_id": pid}, headers=agent_h)
    assert (refused.status_code, refused.json()["code"]) == (400, "reason_required")
    mine = await get(WAITLIST, params={"patient_id": pid, "reason": "查询候补"}, headers=agent_h)
    assert [e["id"] for e in ok(mine)["items"]] == [entry]
    await check.expect(agent, "waitlist.list", pid, f"patient:{pid}", "查询候补")
    ok(await get(f"{WAITLIST}/{entry}", params={"reason": "查看"}, headers=agent_h))
    await check.expect(agent, "waitlist.read", pid, f"waitlist:{entry}", "查看")
    leave = api.client.delete(f"{WAITLIST}/{entry}", params={"reason": "不等了"}, headers=agent_h)
    ok(await leave)
    await check.expect(agent, "waitlist.leave", pid, f"waitlist:{entry}", "不等了")
    entry = ok(await post(WAITLIST, headers=reason_h(agent_h, "候补"), json=join), 201)["id"]
    await check.expect(agent, "waitlist.join", pid, f"waitlist:{entry}", "候补")
    ok(await post(f"{APPTS}/{taken_id}/cancel", headers=api.token("booker"), json={"reason": "x"}))
    check.mark()
    third = ok(await post(f"{WAITLIST}/{entry}/confirm", headers=agent_h), 201)["id"]
    await check.expect(agent, "appointment.book", pid, f"appointment:{third}", f"waitlist:{entry}")

    other = (await api.add_patient("a2", name="李四"))["id"]
    extra = {"patient_id": other, "reason": "复诊加号"}
    url = f"/v1/appointments/schedules/{s3}/extra-numbers"
    extra_id = ok(await post(url, headers=nurse_h, json=extra), 201)["id"]
    await check.expect(
        nurse, "appointment.extra_number", other, f"appointment:{extra_id}", "复诊加号"
    )

    url = f"/v1/appointments/admin/schedules/{s3}/cancel"
    ok(await post(url, headers=coord_h, json={"reason": "停诊"}))
    since = check.start
    await check.expect(coord, "appointment.cancel", pid, f"appointment:{third}", "停诊")
    resource = f"appointment:{extra_id}"  # the same call cancelled both bookings
    await check.expect(coord, "appointment.cancel", other, resource, "停诊", since=since)
    offer = await db["rebooking_offers"].find_one({"patient_id": pid})
    assert offer is not None
    url = f"/v1/appointments/rebooking-offers/{offer['_id']}/accept"
    rebooked = ok(await post(url, headers=agent_h, json={"schedule_id": alternative}), 201)
    resource = f"appointment:{rebooked['id']}"
    await check.expect(agent, "appointment.book", pid, resource, "priority rebooking")

    # check-in by a nurse (its window holds the real clock only for a session around now)
    today = {"patient_id": other, "schedule_id": await publish_now(api)}
    own = ok(await post(APPTS, headers=api.token("a2"), json=today), 201)["id"]
    check.mark()
    ok(await post(f"{APPTS}/{own}/check-in", headers=nurse_h))
    # gap: Changes.check_in takes no reason (a check-in is its own reason)
    await check.expect(nurse, "appointment.check_in", other, f"appointment:{own}", None)

    # penalties: a banned patient appeals; an agent rejects it; an admin lifts the ban
    no_shows = [datetime.now(UTC) - timedelta(days=d) for d in (20, 10, 1)]
    await db["patient_records"].update_one(
        {"_id": pid}, {"$set": {"no_shows": no_shows}}, upsert=True
    )
    check.mark()
    status_url = f"/v1/appointments/patients/{pid}/booking-status"
    refused_status = await get(status_url, headers=agent_h)
    assert (refused_status.status_code, refused_status.json()["code"]) == (400, "reason_required")
    ok(await get(status_url, params={"reason": "来电咨询"}, headers=agent_h))
    await check.expect(agent, "patient.booking_status.read", pid, f"patient:{pid}", "来电咨询")
    url = f"/v1/appointments/patients/{pid}/appeals"
    appeal = ok(await post(url, headers=api.token("a1"), json={"reason": "住院"}), 201)["id"]
    check.mark()
    url = f"/v1/appointments/appeals/{appeal}/decision"
    ok(await post(url, headers=agent_h, json={"approve": False, "note": "无证明"}))
    await check.expect(agent, "penalty.appeal.rejected", pid, f"appeal:{appeal}", "无证明")
    url = f"/v1/appointments/patients/{pid}/ban-override"
    ok(await post(url, headers=api.admin, json={"reason": "院方核实后解除"}))
    await check.expect(admin, "penalty.ban.override", pid, f"patient:{pid}", "院方核实后解除")
    assert check.checked == 21


@pytest.fixture
async def notifications(
    make_settings: Callable[..., ServiceSettings], minter: TokenMinter
) -> AsyncIterator[NotificationsApi]:
    settings = make_settings(
        "notifications", NotificationsSettings, quiet_hours_start="", quiet_hours_end=""
    )
    assert isinstance(settings, NotificationsSettings)
    async with running_notifications(settings, minter) as api:
        yield api


async def test_staff_reads_and_changes_of_notifications_are_audited(
    notifications: NotificationsApi, mongo: AsyncMongoClient[Document]
) -> None:
    api = notifications
    db = mongo[api.settings.database_name]
    check = Auditor(api.client, "notifications", db, api.token("admin-1", Role.ADMIN))
    agent, agent_h = staff(api, "agent-7", Role.AGENT)
    admin, admin_h = staff(api, "admin-1", Role.ADMIN)
    pid, account_id, phone = await api.register_patient()
    await api.publish(booked(facts(pid, account_id)))
    await api.wait_for_sandbox(1, patient_id=pid, channel="sms")
    base = f"/v1/notifications/patients/{pid}"

    check.mark()
    log = await api.client.get(f"{base}/messages", params={"reason": "来电咨询"}, headers=agent_h)
    assert log.status_code == 200, log.text
    assert phone not in log.text
    await check.expect(
        agent, "notification.messages.read", pid, f"patient:{pid}:messages", "来电咨询"
    )
    refused = await api.client.get(f"{base}/preferences", headers=agent_h)
    assert (refused.status_code, refused.json()["code"]) == (400, "reason_required")
    prefs = await api.client.get(f"{base}/preferences", params={"reason": "核对"}, headers=agent_h)
    assert prefs.status_code == 200, prefs.text
    await check.expect(agent, "notification.preferences.read", pid, f"preferences:{pid}", "核对")
    changed = await api.client.put(
        f"{base}/preferences",
        params={"reason": "患者来电要求"},
        json={"language": "en"},
        headers={**agent_h, "If-Match": prefs.headers["etag"]},
    )
    assert changed.status_code == 200, changed.text
    await check.expect(
        agent, "notification.preferences.update", pid, f"preferences:{pid}", "患者来电要求"
    )

    [sms] = await api.messages(patient_id=pid, channel="sms")
    await db[MESSAGES].update_one({"_id": sms["_id"]}, {"$set": {"status": "failed"}})
    check.mark()
    retried = await api.client.post(
        f"/v1/notifications/admin/messages/{sms['_id']}/retry",
        params={"reason": "短信网关恢复"},
        headers=admin_h,
    )
    assert retried.status_code == 200, retried.text
    record = await check.expect(
        admin, "notification.message.retry", pid, f"message:{sms['_id']}", "短信网关恢复"
    )
    assert phone not in str(record)
    sent = await api.client.get(
        "/v1/notifications/sandbox/deliveries",
        params={"patient_id": pid, "reason": "排查投递"},
        headers=admin_h,
    )
    assert sent.status_code == 200, sent.text
    await check.expect(admin, "notification.sandbox.read", pid, "sandbox:deliveries", "排查投递")


async def test_the_audit_endpoint_is_admin_only_pages_filters_and_keeps_old_records(
    appointments: Api, mongo: AsyncMongoClient[Document]
) -> None:
    api, url = appointments, "/v1/appointments/admin/audit"
    db = mongo[api.settings.database_name]
    collection = db[AUDIT_COLLECTION]
    assert (await api.client.get(url)).status_code == 401
    for caller in (Role.AGENT, Role.PATIENT, Role.SERVICE, Role.DOCTOR):
        denied = await api.client.get(url, headers=api.token(f"{caller}-1", caller))
        assert (denied.status_code, denied.json()["code"]) == (403, "forbidden_role")

    # kept at least 180 days: no TTL index, and a record 200 days old is still returned
    now = now_ms()
    old = AuditRecord(
        at=now - timedelta(days=200),
        actor_id="agent-9",
        actor_role="agent",
        action="appointment.read",
        patient_id="p-old",
        resource="appointment:old",
        reason="旧记录",
        org_id=ORG,
    )
    await collection.insert_one({**old.model_dump(exclude={"id"}), "_id": old.id})
    indexes = await collection.index_information()
    assert "patient_at" in indexes
    assert not [name for name, spec in indexes.items() if "expireAfterSeconds" in spec]
    window = {"since": (now - timedelta(days=201)).isoformat(), "until": now.isoformat()}
    found = await api.client.get(url, params={"patient_id": "p-old", **window}, headers=api.admin)
    assert [i["id"] for i in found.json()["items"]] == [old.id]
    assert found.json()["items"][0]["at"].startswith(old.at.isoformat()[:19])

    # pages newest first; the cursor is the last id; each read is audited itself
    audit = AuditLog(db)
    agent = Principal(subject="agent-7", roles=frozenset({Role.AGENT}), org_id=ORG)
    for n in range(5):
        action = "appointment.read" if n % 2 else "appointment.cancel"
        await audit.record(agent, action, patient_id="p-page", resource=f"a:{n}", reason="r")
    expected = [r.id for r in await audit.query(patient_id="p-page", limit=10)]
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(3):
        paged: dict[str, Any] = {"patient_id": "p-page", "limit": 2}
        paged |= {"cursor": cursor} if cursor else {}
        page = ok(await api.client.get(url, params=paged, headers=api.admin))
        seen, cursor = seen + [i["id"] for i in page["items"]], page["next_cursor"]
    assert (seen, cursor) == (expected, None)
    reads = await collection.find({"action": "audit.read", "patient_id": "p-page"}).to_list()
    assert [(r["actor_id"], r["actor_role"]) for r in reads] == [("admin-1", "admin")] * 3
    assert sorted(r["details"]["returned"] for r in reads) == [1, 2, 2]
    only = await api.client.get(
        url, params={"patient_id": "p-page", "action": "appointment.read"}, headers=api.admin
    )
    assert sorted(i["resource"] for i in only.json()["items"]) == ["a:1", "a:3"]
    mine = await api.client.get(url, params={"actor_id": "agent-7"}, headers=api.admin)
    assert len(mine.json()["items"]) == 5

    bad: dict[str, tuple[int, dict[str, Any]]] = {
        "audit_cursor_invalid": (400, {"cursor": "no-such-record"}),
        "audit_range_invalid": (422, {"since": now.isoformat(), "until": now.isoformat()}),
    }
    for code, (status, params) in bad.items():
        answer = await api.client.get(url, params=params, headers=api.admin)
        assert (answer.status_code, answer.json()["code"]) == (status, code)
        assert answer.headers["content-type"].startswith("application/problem+json")
    invalid_params: list[dict[str, Any]] = [{"since": "2026-01-01T00:00:00"}, {"limit": 0}]
    for params in [*invalid_params, {"limit": 1001}]:
        invalid = await api.client.get(url, params=params, headers=api.admin)
        assert (invalid.status_code, invalid.json()["code"]) == (422, "validation_error")

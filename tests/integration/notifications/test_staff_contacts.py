"""Staff contacts: the HIS and an organization's admin keep how alerts reach a staff member.
The phone is stored encrypted and shown masked; an admin reaches its own organization's
staff only; every change and read is audited."""

from __future__ import annotations

from typing import Any

import httpx

from services.notifications.staff_contacts import STAFF_PHONE_CONTEXT
from services.notifications.store import STAFF_CONTACTS
from shared.audit import AUDIT_COLLECTION
from shared.crypto import FieldCipher
from shared.ids import new_id
from shared.principal import Role
from tests.factories import make_phone
from tests.integration.notifications.conftest import ORG, NotificationsApi

URL = "/v1/notifications/admin/staff-contacts/{}"
OTHER_ORG = "h2"


def headers(api: NotificationsApi, role: Role, org: str = ORG) -> dict[str, str]:
    token = api.minter.mint(f"{role.value}-{org}", [role.value], org_id=org)
    return {"authorization": f"Bearer {token}"}


def is_problem(response: httpx.Response, status: int) -> bool:
    content_type = response.headers.get("content-type", "")
    return response.status_code == status and content_type.startswith("application/problem+json")


async def stored(api: NotificationsApi, staff_id: str) -> dict[str, Any] | None:
    doc: dict[str, Any] | None = await api.ctx.runtime.db[STAFF_CONTACTS].find_one(
        {"_id": staff_id}
    )
    return doc


async def test_an_admin_keeps_a_contact_of_its_organization_phone_encrypted_and_masked(
    notifications_api: NotificationsApi,
) -> None:
    api = notifications_api
    staff_id, phone = f"dr-{new_id()[-10:]}", make_phone()
    admin = headers(api, Role.ADMIN)
    body = {"org_id": ORG, "phone": phone, "wechat_openid": "oWx-doctor", "language": "en"}
    put = await api.client.put(URL.format(staff_id), json=body, headers=admin)
    assert put.status_code == 200, put.text
    view = put.json()
    assert view["phone_masked"] == f"{phone[:3]}****{phone[-4:]}"
    assert view["wechat_bound"] is True
    assert (view["org_id"], view["language"], view["staff_id"]) == (ORG, "en", staff_id)
    assert phone not in put.text
    assert "oWx-doctor" not in put.text

    doc = await stored(api, staff_id)
    assert doc is not None
    assert phone not in str(doc["phone_enc"])
    cipher = FieldCipher.from_settings(api.settings.pii_encryption_keys, api.settings.pii_hash_key)
    assert (
        cipher.decrypt(doc["phone_enc"], context=STAFF_PHONE_CONTEXT, record_id=staff_id) == phone
    )

    got = await api.client.get(URL.format(staff_id), headers=admin)
    assert got.status_code == 200, got.text
    assert got.json()["phone_masked"] == view["phone_masked"]
    assert phone not in got.text

    new_phone = make_phone()
    replaced = await api.client.put(
        URL.format(staff_id), json={"org_id": ORG, "phone": new_phone}, headers=api.service
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["wechat_bound"] is False  # replaced whole
    assert replaced.json()["language"] == "zh-CN"

    deleted = await api.client.delete(URL.format(staff_id), headers=admin)
    assert deleted.status_code == 204, deleted.text
    assert await stored(api, staff_id) is None
    gone = await api.client.get(URL.format(staff_id), headers=admin)
    assert is_problem(gone, 404), gone.text

    audit = api.ctx.runtime.db[AUDIT_COLLECTION]
    records = await audit.find({"resource": f"staff_contact:{staff_id}"}).sort("at", 1).to_list()
    assert [r["action"] for r in records] == [
        "notification.staff_contact.put",
        "notification.staff_contact.read",
        "notification.staff_contact.put",
        "notification.staff_contact.delete",
    ]
    assert [r["actor_role"] for r in records] == ["admin", "admin", "service", "admin"]
    assert {r["org_id"] for r in records} == {ORG}
    assert phone not in str(records)
    assert new_phone not in str(records)


async def test_an_admin_of_another_organization_is_refused(
    notifications_api: NotificationsApi,
) -> None:
    api = notifications_api
    staff_id, phone = f"dr-{new_id()[-10:]}", make_phone()
    body = {"org_id": ORG, "phone": phone}
    created = await api.client.put(URL.format(staff_id), json=body, headers=api.service)
    assert created.status_code == 200, created.text
    other = headers(api, Role.ADMIN, OTHER_ORG)

    for method, payload in (
        ("PUT", body),  # a contact for another organization
        ("PUT", {**body, "org_id": OTHER_ORG}),  # taking over another organization's contact
        ("GET", None),
        ("DELETE", None),
    ):
        reply = await api.client.request(method, URL.format(staff_id), json=payload, headers=other)
        assert is_problem(reply, 403), f"{method} {payload}: {reply.text}"
        assert reply.json()["code"] == "forbidden_org"
        assert phone[-4:] not in reply.text
    doc = await stored(api, staff_id)
    assert doc is not None
    assert doc["org_id"] == ORG

    # an alliance admin reaches every organization's staff
    alliance = headers(api, Role.ALLIANCE_ADMIN, OTHER_ORG)
    read = await api.client.get(URL.format(staff_id), headers=alliance)
    assert read.status_code == 200, read.text


async def test_patients_staff_who_are_not_admins_and_anonymous_callers_are_refused(
    notifications_api: NotificationsApi,
) -> None:
    api = notifications_api
    staff_id = f"dr-{new_id()[-10:]}"
    body = {"org_id": ORG, "phone": make_phone()}
    for caller in (api.token(new_id()), headers(api, Role.DOCTOR)):
        reply = await api.client.put(URL.format(staff_id), json=body, headers=caller)
        assert is_problem(reply, 403), reply.text
        assert reply.json()["code"] == "forbidden_role"
    anonymous = await api.client.put(URL.format(staff_id), json=body)
    assert is_problem(anonymous, 401), anonymous.text
    assert await stored(api, staff_id) is None


async def test_a_bad_phone_is_refused_and_nothing_is_written(
    notifications_api: NotificationsApi,
) -> None:
    api = notifications_api
    staff_id = f"dr-{new_id()[-10:]}"
    admin = headers(api, Role.ADMIN)
    for phone in ("12345", "010-12345678", "2" + make_phone()[1:], None):
        reply = await api.client.put(
            URL.format(staff_id), json={"org_id": ORG, "phone": phone}, headers=admin
        )
        assert is_problem(reply, 422), f"{phone}: {reply.text}"
    assert await stored(api, staff_id) is None
    audit = api.ctx.runtime.db[AUDIT_COLLECTION]
    assert await audit.count_documents({"resource": f"staff_contact:{staff_id}"}) == 0


async def test_a_staff_caller_reads_its_own_inbox_only(notifications_api: NotificationsApi) -> None:
    api = notifications_api
    patient_id, account_id, _ = await api.register_patient()
    doctor = api.token(f"dr-{new_id()[-10:]}", Role.DOCTOR)
    page = await api.client.get("/v1/notifications/inbox", headers=doctor)
    assert page.status_code == 200, page.text
    assert page.json() == {"items": [], "unread": 0, "next_before": None}
    count = await api.client.get("/v1/notifications/inbox/unread-count", headers=doctor)
    assert count.json() == {"unread": 0}
    marked = await api.client.post("/v1/notifications/inbox/read", json=None, headers=doctor)
    assert marked.json() == {"marked": 0, "unread": 0}
    service = await api.client.get("/v1/notifications/inbox", headers=api.service)
    assert is_problem(service, 403), service.text
    assert patient_id not in page.text
    assert account_id not in page.text

"""The alliance's walls in the notifications service: staff read the messages their own
organization sent a patient, staff of an organization that never dealt with the patient
nothing, and every refusal is audited."""

from __future__ import annotations

import pytest

from services.notifications.store import SANDBOX
from shared.audit import AUDIT_COLLECTION, DENIED
from shared.principal import Role
from tests.integration.notifications.conftest import ORG, NotificationsApi, booked, facts

pytestmark = pytest.mark.integration

WHY = {"X-Access-Reason": "patient called 96165"}


def staff(api: NotificationsApi, subject: str, role: Role, org: str | None) -> dict[str, str]:
    token = api.minter.mint(subject, [role.value], org_id=org)
    return {"authorization": f"Bearer {token}", **WHY}


async def test_staff_see_their_own_organizations_messages_only(
    notifications_api: NotificationsApi,
) -> None:
    api = notifications_api
    patient_id, account_id, _ = await api.register_patient()
    await api.publish(booked(facts(patient_id, account_id)))
    await api.publish(booked({**facts(patient_id, account_id), "org_id": "h2"}))
    await api.wait_for_sandbox(2, patient_id=patient_id, channel="sms")
    url = f"/v1/notifications/patients/{patient_id}/messages"

    ours = await api.client.get(url, headers=staff(api, "agent-h1", Role.AGENT, ORG))
    assert ours.status_code == 200, ours.text
    mine = {m["id"] for m in ours.json()}
    every = await api.client.get(url, headers=staff(api, "alliance-1", Role.ALLIANCE_ADMIN, None))
    assert len(every.json()) == 2 * len(mine) == 6, every.text
    h2_ids = {m["id"] for m in every.json()} - mine
    stored = await api.messages(patient_id=patient_id)
    assert {m["_id"] for m in stored if m["org_id"] == ORG} == mine
    assert {m["_id"] for m in stored if m["org_id"] == "h2"} == h2_ids

    stranger = staff(api, "agent-h3", Role.AGENT, "h3")
    for path in (url, f"/v1/notifications/patients/{patient_id}/preferences"):
        refused = await api.client.get(path, headers=stranger)
        assert (refused.status_code, refused.json()["code"]) == (403, "forbidden_org"), path
    no_org = await api.client.get(url, headers=staff(api, "agent-0", Role.AGENT, None))
    assert no_org.status_code == 403
    sms_h1 = next(m for m in stored if m["org_id"] == ORG and m["channel"] == "sms")
    retry = await api.client.post(
        f"/v1/notifications/admin/messages/{sms_h1['_id']}/retry",
        headers=staff(api, "admin-h2", Role.ADMIN, "h2"),
    )
    assert (retry.status_code, retry.json()["code"]) == (403, "forbidden_org")

    audit = api.ctx.runtime.db[AUDIT_COLLECTION]
    denied = await audit.find({"action": DENIED, "actor_id": "agent-h3"}).to_list()
    assert {d["patient_id"] for d in denied} == {patient_id}
    assert len(denied) == 2


async def test_an_organizations_admin_reads_only_its_own_sandbox_deliveries(
    notifications_api: NotificationsApi,
) -> None:
    """The sandbox records delivered texts (login codes too): an organization's admin reads
    those of its own organization's messages; the alliance's admin every one."""
    api = notifications_api
    patient_id, account_id, _ = await api.register_patient()
    await api.publish(booked(facts(patient_id, account_id)))
    await api.publish(booked({**facts(patient_id, account_id), "org_id": "h2"}))
    await api.wait_for_sandbox(2, patient_id=patient_id, channel="sms")
    url = "/v1/notifications/sandbox/deliveries"
    query = {"patient_id": patient_id}
    stored = await api.messages(patient_id=patient_id)
    of_h2 = {m["_id"] for m in stored if m["org_id"] == "h2"}

    theirs = await api.client.get(
        url, params=query, headers=staff(api, "admin-h2", Role.ADMIN, "h2")
    )
    assert theirs.status_code == 200, theirs.text
    seen = (
        await api.ctx.runtime.db[SANDBOX]
        .find({"_id": {"$in": [d["id"] for d in theirs.json()]}})
        .to_list()
    )
    assert seen
    assert {d["message_id"] for d in seen} <= of_h2
    every = await api.client.get(
        url, params=query, headers=staff(api, "alliance-1", Role.ALLIANCE_ADMIN, None)
    )
    assert len(every.json()) > len(theirs.json())
    nobody = await api.client.get(
        url, params=query, headers=staff(api, "admin-0", Role.ADMIN, None)
    )
    assert nobody.json() == []

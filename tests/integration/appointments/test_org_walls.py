"""The alliance's walls in the appointments service: staff reach their own organization's
bookings and patients, alliance admins every organization's, and each refusal is audited."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo import AsyncMongoClient

from shared.audit import AUDIT_COLLECTION, DENIED
from shared.mongo import Document
from shared.principal import Role
from tests.factories import make_national_id, make_phone
from tests.integration.appointments.conftest import ORG, Api
from tests.support.patient_codes import add_patient

pytestmark = pytest.mark.integration

A = "/v1/appointments"
OTHER = "h2"
WHY = {"X-Access-Reason": "hotline call"}


async def booked_patient(api: Api, account: str) -> tuple[dict[str, Any], str, str]:
    """A patient of ``account`` (its national ID kept) with a booking at ORG."""
    body = {"name": "欧阳华", "national_id": make_national_id(), "phone": make_phone()}
    added = await add_patient(api.client, api.settings, api.token(account), body)
    assert added.status_code == 201, added.text
    schedule = await api.publish(days_ahead=2)
    booked = await api.client.post(
        f"{A}/appointments",
        headers=api.token(account),
        json={"patient_id": added.json()["id"], "schedule_id": schedule},
    )
    assert booked.status_code == 201, booked.text
    return {**added.json(), "national_id": body["national_id"]}, booked.json()["id"], schedule


async def test_staff_of_another_organization_reach_nothing_of_ours(
    appointments_api: Api, mongo: AsyncMongoClient[Document]
) -> None:
    api = appointments_api
    patient, appointment, schedule = await booked_patient(api, "acct-w1")
    pid = patient["id"]
    theirs = {**api.token("agent-h2", Role.AGENT, org=OTHER), **WHY}
    ours = {**api.token("agent-h1", Role.AGENT), **WHY}
    nurse_theirs = {**api.token("nurse-h2", Role.NURSE, org=OTHER), **WHY}
    no_org = {**api.token("agent-none", Role.AGENT, org=None), **WHY}

    calls = [
        ("GET", f"{A}/appointments/{appointment}", None),
        ("POST", f"{A}/appointments/{appointment}/cancel", {"reason": "wrong org"}),
        ("POST", f"{A}/appointments/{appointment}/check-in", None),
        ("POST", f"{A}/staff/patients/{pid}/identity", None),
        ("GET", f"{A}/staff/patients/{pid}/appointments", None),
        ("GET", f"{A}/patients/{pid}/booking-status", None),
        ("GET", f"{A}/waitlist", None),
        ("POST", f"{A}/appointments", {"patient_id": pid, "schedule_id": schedule}),
    ]
    for headers in (theirs, nurse_theirs, no_org):
        for method, path, body in calls:
            params = {"patient_id": pid} if path.endswith("/waitlist") else None
            reply = await api.client.request(
                method, path, headers=headers, json=body, params=params
            )
            assert reply.status_code == 403, (method, path, reply.text)
            assert reply.json()["code"] == "forbidden_org", reply.text
            assert patient["national_id_masked"] not in reply.text
        looked_up = await api.client.post(
            f"{A}/staff/patients/lookup",
            headers=headers,
            json={"national_id": patient["national_id"]},
        )
        assert looked_up.status_code == 404, looked_up.text  # not "patient of another org"

    # the same calls by staff of the booking's own organization are let through
    assert (
        await api.client.get(f"{A}/appointments/{appointment}", headers=ours)
    ).status_code == 200
    found = await api.client.post(
        f"{A}/staff/patients/lookup", headers=ours, json={"national_id": patient["national_id"]}
    )
    assert (found.status_code, found.json()["id"]) == (200, pid)
    listed = await api.client.get(f"{A}/staff/patients/{pid}/appointments", headers=ours)
    assert [a["id"] for a in listed.json()] == [appointment]
    alliance = {**api.token("alliance-1", Role.ALLIANCE_ADMIN, org=None), **WHY}
    assert (
        await api.client.get(f"{A}/appointments/{appointment}", headers=alliance)
    ).status_code == 200
    still = await api.client.get(f"{A}/appointments/{appointment}", headers=ours)
    assert still.json()["status"] == "booked"  # the refused cancel changed nothing

    audit = mongo[api.settings.database_name][AUDIT_COLLECTION]
    denied = await audit.find({"action": DENIED, "actor_id": "agent-h2"}).to_list()
    assert len(denied) >= len(calls), denied
    assert {d["outcome"] for d in denied} == {"denied"}
    assert {d["resource"] for d in denied} >= {
        "GET /v1/appointments/appointments/{appointment_id}",
        "POST /v1/appointments/staff/patients/{patient_id}/identity",
    }
    assert {d["patient_id"] for d in denied if "identity" in d["resource"]} == {pid}
    lookups = await audit.find({"action": "patient.lookup", "actor_id": "agent-h2"}).to_list()
    assert [d["outcome"] for d in lookups] == ["denied"]


async def test_an_organizations_admin_manages_and_audits_its_own_organization_only(
    appointments_api: Api,
) -> None:
    api = appointments_api
    await booked_patient(api, "acct-w2")  # staff reads at ORG go into ORG's audit log
    ours = {**api.token("agent-h1", Role.AGENT), **WHY}
    patient_list = await api.client.get(f"{A}/appointments", headers=api.token("acct-w2"))
    appointment = patient_list.json()["items"][0]["id"]
    assert (
        await api.client.get(f"{A}/appointments/{appointment}", headers=ours)
    ).status_code == 200

    their_admin = {**api.token("admin-h2", Role.ADMIN, org=OTHER), **WHY}
    refused = await api.client.get(f"{A}/admin/policies/{ORG}", headers=their_admin)
    assert (refused.status_code, refused.json()["code"]) == (403, "forbidden_org")
    own = await api.client.get(f"{A}/admin/policies/{OTHER}", headers=their_admin)
    assert own.status_code == 200, own.text

    def reads(page: Any) -> set[str]:
        return {i["action"] for i in page["items"] if i["actor_id"] == "agent-h1"}

    their_log = await api.client.get(f"{A}/admin/audit", headers=their_admin)
    assert their_log.status_code == 200, their_log.text
    assert all(i["org_id"] == OTHER for i in their_log.json()["items"]), their_log.text
    assert not reads(their_log.json())
    our_log = await api.client.get(f"{A}/admin/audit", headers={**api.admin, **WHY})
    assert "appointment.read" in reads(our_log.json())
    assert all(i["org_id"] == ORG for i in our_log.json()["items"])
    alliance = {**api.token("alliance-1", Role.ALLIANCE_ADMIN, org=None), **WHY}
    every = await api.client.get(f"{A}/admin/audit", headers=alliance)
    assert {i["org_id"] for i in every.json()["items"]} >= {ORG, OTHER}

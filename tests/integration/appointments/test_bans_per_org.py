"""A ban is one organization's: status, appeals and overrides per organization, and the
staff's queue of appeals (through the service's HTTP API)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from shared.mongo import Document
from shared.principal import Role
from tests.integration.appointments.conftest import ORG, Api

pytestmark = pytest.mark.integration

A = "/v1/appointments"


async def banned_at(api: Api, mongo: AsyncMongoClient[Document], account: str, *orgs: str) -> str:
    """A patient of a phone-login account (no organization) with three recent no-shows at
    each of ``orgs``."""
    patient = await api.add_patient(account)
    now = datetime.now(UTC).replace(microsecond=0)
    no_shows = [{"at": now - timedelta(days=d), "org_id": o} for o in orgs for d in (20, 10, 1)]
    await mongo[api.settings.database_name]["patient_records"].insert_one(
        {"_id": patient["id"], "no_shows": no_shows, "late_cancels": []}
    )
    return str(patient["id"])


def phone(api: Api, account: str) -> dict[str, str]:
    return api.token(account, org=None)


async def status_of(api: Api, headers: dict[str, str], patient_id: str, **params: str) -> Any:
    response = await api.client.get(
        f"{A}/patients/{patient_id}/booking-status", headers=headers, params=params
    )
    assert response.status_code == 200, response.text
    return response.json()


async def appeal(
    api: Api, headers: dict[str, str], patient_id: str, org_id: str | None = None
) -> httpx.Response:
    body: dict[str, Any] = {"reason": "那几天住院了"}
    if org_id:
        body["org_id"] = org_id
    return await api.client.post(f"{A}/patients/{patient_id}/appeals", headers=headers, json=body)


async def test_a_phone_login_patient_sees_appeals_and_gets_lifted_the_ban_where_it_is(
    appointments_api: Api, mongo: AsyncMongoClient[Document]
) -> None:
    api = appointments_api
    me = phone(api, "pa-1")
    patient_id = await banned_at(api, mongo, "pa-1", ORG)
    schedule = await api.publish(days_ahead=2)
    booking = {"patient_id": patient_id, "schedule_id": schedule}
    refused = await api.client.post(f"{A}/appointments", headers=me, json=booking)
    assert (refused.status_code, refused.json()["code"]) == (403, "patient_banned")

    status = await status_of(api, me, patient_id)
    assert (status["org_id"], status["banned"], status["no_shows"]["count"]) == (ORG, True, 3)
    assert [(o["org_id"], o["banned"]) for o in status["organizations"]] == [(ORG, True)]
    assert (await status_of(api, me, patient_id, org_id="h2"))["banned"] is False

    filed = await appeal(api, me, patient_id)  # no org_id: the ban's own organization
    assert filed.status_code == 201, filed.text
    assert filed.json()["org_id"] == ORG
    assert (await status_of(api, me, patient_id))["appeal"]["id"] == filed.json()["id"]

    alliance_admin = api.token("admin-a", Role.ALLIANCE_ADMIN, org=None)
    url = f"{A}/patients/{patient_id}/ban-override"
    lifted = await api.client.post(url, headers=alliance_admin, json={"reason": "核实为系统误记"})
    assert lifted.status_code == 200, lifted.text
    assert (lifted.json()["org_id"], lifted.json()["banned"]) == (ORG, False)
    again = await api.client.post(url, headers=alliance_admin, json={"reason": "核实为系统误记"})
    assert (again.status_code, again.json()["code"]) == (409, "not_banned")
    booked = await api.client.post(f"{A}/appointments", headers=me, json=booking)
    assert booked.status_code == 201, booked.text


async def test_bans_at_several_organizations_need_an_org_id_and_stay_apart(
    appointments_api: Api, mongo: AsyncMongoClient[Document]
) -> None:
    api = appointments_api
    me = phone(api, "pa-2")
    patient_id = await banned_at(api, mongo, "pa-2", ORG, "h2")
    status = await status_of(api, me, patient_id)
    assert [(o["org_id"], o["banned"]) for o in status["organizations"]] == [
        (ORG, True),
        ("h2", True),
    ]
    ambiguous = await appeal(api, me, patient_id)
    assert ambiguous.status_code == 422, ambiguous.text
    assert (ambiguous.json()["code"], ambiguous.json()["org_ids"]) == (
        "org_id_required",
        [ORG, "h2"],
    )
    assert (await appeal(api, me, patient_id, "h2")).status_code == 201
    assert (await appeal(api, me, patient_id, ORG)).status_code == 201  # one per organization
    pending = await appeal(api, me, patient_id, "h2")
    assert (pending.status_code, pending.json()["code"]) == (409, "appeal_pending")

    # an admin of h2 lifts h2's ban only: h1's stays, and booking at h1 is still refused
    h2_admin = api.token("admin-h2", Role.ADMIN, org="h2")
    url = f"{A}/patients/{patient_id}/ban-override"
    lifted = await api.client.post(url, headers=h2_admin, json={"reason": "院方核实后解除"})
    assert lifted.status_code == 200, lifted.text
    assert lifted.json()["org_id"] == "h2"
    status = await status_of(api, me, patient_id)
    assert [(o["org_id"], o["banned"]) for o in status["organizations"]] == [(ORG, True)]
    schedule = await api.publish(days_ahead=2)
    refused = await api.client.post(
        f"{A}/appointments", headers=me, json={"patient_id": patient_id, "schedule_id": schedule}
    )
    assert (refused.status_code, refused.json()["code"]) == (403, "patient_banned")


async def test_offences_elsewhere_do_not_ban_here(
    appointments_api: Api, mongo: AsyncMongoClient[Document]
) -> None:
    api = appointments_api
    me = api.token("acct-3")  # an account of h1
    patient_id = await banned_at(api, mongo, "acct-3", "h2")
    schedule = await api.publish(days_ahead=2)
    booked = await api.client.post(
        f"{A}/appointments", headers=me, json={"patient_id": patient_id, "schedule_id": schedule}
    )
    assert booked.status_code == 201, booked.text
    status = await status_of(api, me, patient_id)
    assert (status["org_id"], status["banned"]) == ("h2", True)  # where the ban is
    here = await status_of(api, me, patient_id, org_id=ORG)
    assert (here["org_id"], here["banned"], here["no_shows"]["count"]) == (ORG, False, 0)


async def test_staff_list_pending_appeals_of_their_organization(
    appointments_api: Api, mongo: AsyncMongoClient[Document]
) -> None:
    api = appointments_api
    filed: dict[str, list[str]] = {ORG: [], "h2": []}
    for n, org in enumerate((ORG, "h2", ORG)):
        account = f"pa-q{n}"
        patient_id = await banned_at(api, mongo, account, org)
        response = await appeal(api, phone(api, account), patient_id)
        assert response.status_code == 201, response.text
        filed[org].append(response.json()["id"])
    url = f"{A}/staff/appeals"
    agent = {**api.token("agent-1", Role.AGENT), "X-Access-Reason": "appeal review"}

    no_reason = await api.client.get(url, headers=api.token("agent-1", Role.AGENT))
    assert (no_reason.status_code, no_reason.json()["code"]) == (400, "reason_required")
    page = await api.client.get(url, headers=agent, params={"limit": 1})
    assert page.status_code == 200, page.text
    first = page.json()
    assert [i["id"] for i in first["items"]] == filed[ORG][:1]
    assert first["items"][0]["patient_name"] == "张*"
    assert "national_id" not in page.text
    rest = await api.client.get(
        url, headers=agent, params={"limit": 1, "cursor": first["next_cursor"]}
    )
    assert [i["id"] for i in rest.json()["items"]] == filed[ORG][1:]
    other_org = await api.client.get(url, headers=agent, params={"org_id": "h2"})
    assert (other_org.status_code, other_org.json()["code"]) == (403, "forbidden_org")
    patient = await api.client.get(url, headers=api.token("pa-q0", org=None))
    assert patient.status_code == 403

    alliance_admin = {
        **api.token("admin-a", Role.ALLIANCE_ADMIN, org=None),
        "X-Access-Reason": "review",
    }
    h2 = await api.client.get(url, headers=alliance_admin, params={"org_id": "h2"})
    assert [i["id"] for i in h2.json()["items"]] == filed["h2"]
    everyone = await api.client.get(url, headers=alliance_admin)
    assert len(everyone.json()["items"]) == 3
    assert everyone.json()["next_cursor"] is None

    decided = await api.client.post(
        f"{A}/appeals/{filed[ORG][0]}/decision",
        headers=agent,
        json={"approve": False, "note": "无证明材料"},
    )
    assert decided.status_code == 200, decided.text
    pending = await api.client.get(url, headers=agent)
    assert [i["id"] for i in pending.json()["items"]] == filed[ORG][1:]
    rejected = await api.client.get(url, headers=agent, params={"status": "rejected"})
    assert [i["id"] for i in rejected.json()["items"]] == filed[ORG][:1]
    audit = mongo[api.settings.database_name]["audit_log"]
    assert await audit.count_documents({"action": "penalty.appeals.list"}) >= 1

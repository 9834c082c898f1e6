"""The bed desk's list of admission notices: waiting ones and those with an open offer,
urgency first then the longest wait, with the patient's masked name, the wait and the
offer; nurses and admins of the organization (the alliance admin any), with a reason,
audited; another organization's bed desk and other roles are refused."""

from __future__ import annotations

from typing import Any

import pytest

from shared.principal import Role
from tests.integration.appointments.beds.support import (
    B,
    assign,
    issue,
    nurse,
    patient,
    setup_beds,
)
from tests.integration.appointments.conftest import ORG, Api

pytestmark = pytest.mark.integration
URL = f"{B}/admission-notices"
WHY = {"reason": "床位安排"}


async def listed(api: Api, headers: dict[str, str], **query: Any) -> list[dict[str, Any]]:
    page = await api.client.get(URL, params={"org_id": ORG, **WHY, **query}, headers=headers)
    assert page.status_code == 200, page.text
    return list(page.json()["items"])


async def test_the_waiting_list_ranks_notices_and_shows_the_open_offer(
    appointments_api: Api,
) -> None:
    api = appointments_api
    beds = await setup_beds(api)
    alice = await patient(api, "acct-l1", "male", "李大山")
    bob = await patient(api, "acct-l2", "male", "王二")
    carol = await patient(api, "acct-l3", "female", "赵三")
    routine = await issue(api, alice, "ep-l1")
    urgent = await issue(api, bob, "ep-l2", urgency="urgent")
    surgery = await issue(api, carol, "ep-l3", department_code="SURG", urgency="urgent")

    items = await listed(api, nurse(api))
    assert [i["id"] for i in items] == [urgent["id"], surgery["id"], routine["id"]]
    first = items[0]
    assert first["patient_id"] == bob
    assert first["patient_name_masked"] == "王*"
    assert first["department_code"] == "CARD"
    assert first["diagnosis"]["code"] == "I21.0"
    assert first["status"] == "waiting"
    assert first["offer"] is None
    assert 0 <= first["waited_minutes"] <= 5
    assert items[2]["patient_name_masked"] == "李**"

    offer = await assign(api, surgery["id"], beds["W-S/1"])
    items = await listed(api, nurse(api))
    offered = next(i for i in items if i["id"] == surgery["id"])
    assert offered["status"] == "offered"
    assert offered["offer"]["id"] == offer["id"]
    assert offered["offer"]["bed_id"] == beds["W-S/1"]
    assert offered["offer"]["expires_at"] == offer["offer_expires_at"]

    only_offered = await listed(api, nurse(api), status="offered")
    assert [i["id"] for i in only_offered] == [surgery["id"]]
    card = await listed(api, api.admin, department_code="CARD", status="waiting")
    assert [i["id"] for i in card] == [urgent["id"], routine["id"]]
    alliance = api.token("alliance-1", Role.ALLIANCE_ADMIN, org=None)
    assert len(await listed(api, alliance)) == 3

    confirmed = await api.client.post(
        f"{B}/bed-offers/{offer['id']}/confirm", params=WHY, headers=nurse(api)
    )
    assert confirmed.status_code == 200, confirmed.text
    assert surgery["id"] not in {i["id"] for i in await listed(api, nurse(api))}
    (kept,) = await listed(api, nurse(api), status="confirmed")
    assert kept["offer"]["status"] == "confirmed"

    query = {"action": "admission_notice.list", **WHY}
    log = await api.client.get(f"{B}/admin/audit", headers=api.admin, params=query)
    assert log.status_code == 200, log.text
    reads = [i for i in log.json()["items"] if i["action"] == "admission_notice.list"]
    assert reads, log.text
    assert {r["reason"] for r in reads} == {"床位安排"}


async def test_the_list_needs_a_reason_and_the_bed_desk_of_the_organization(
    appointments_api: Api,
) -> None:
    api = appointments_api
    no_reason = await api.client.get(URL, params={"org_id": ORG}, headers=nurse(api))
    assert (no_reason.status_code, no_reason.json()["code"]) == (400, "reason_required")
    elsewhere = await api.client.get(
        URL, params={"org_id": ORG, **WHY}, headers=nurse(api, org="h2")
    )
    assert (elsewhere.status_code, elsewhere.json()["code"]) == (403, "forbidden_org")
    doctor = api.token("doctor-1", Role.DOCTOR)
    refused = await api.client.get(URL, params={"org_id": ORG, **WHY}, headers=doctor)
    assert refused.status_code == 403, refused.text
    admitted = await api.client.get(
        URL, params={"org_id": ORG, "status": "admitted", **WHY}, headers=nurse(api)
    )
    assert (admitted.status_code, admitted.json()["code"]) == (422, "status_not_listed")

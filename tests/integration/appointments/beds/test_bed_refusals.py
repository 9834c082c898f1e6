"""Bad input for beds, each a specific problem with nothing written; the organization's
walls and the patient's own account."""

from __future__ import annotations

import pytest

from shared.principal import Role
from tests.integration.appointments.beds.support import (
    B,
    assign,
    assign_body,
    bed_status,
    doctor,
    issue,
    my_notices,
    notice_body,
    nurse,
    patient,
    service,
    setup_beds,
)
from tests.integration.appointments.conftest import ORG, Api

pytestmark = pytest.mark.integration
OTHER = "h2"


async def test_bulk_master_data_with_a_bad_item_writes_nothing(appointments_api: Api) -> None:
    api = appointments_api
    await setup_beds(api)
    his = service(api)
    good = {"org_id": ORG, "ward_code": "W-M", "code": "9", "room": "309"}
    unknown_ward = {"org_id": ORG, "ward_code": "NOPE", "code": "1", "room": "1"}
    refused = await api.client.put(f"{B}/admin/beds", json=[good, unknown_ward], headers=his)
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "unknown_ward"
    bad_kind = {**good, "kind": "sofa"}
    invalid = await api.client.put(f"{B}/admin/beds", json=[good, bad_kind], headers=his)
    assert invalid.status_code == 422, invalid.text
    page = await api.client.get(f"{B}/beds", params={"org_id": ORG}, headers=nurse(api))
    assert "309" not in {b["room"] for b in page.json()["items"]}

    ward = {"org_id": ORG, "code": "W-NEW", "department_code": "CARD", "name": "新病区", "floor": 5}
    stray = {**ward, "code": "W-X", "department_code": "NOPE"}
    refused = await api.client.put(f"{B}/admin/wards", json=[ward, stray], headers=his)
    assert refused.status_code == 422
    assert refused.json()["code"] == "unknown_department"
    bed_in_new = {"org_id": ORG, "ward_code": "W-NEW", "code": "1", "room": "1"}
    later = await api.client.put(f"{B}/admin/beds", json=[bed_in_new], headers=his)
    assert later.status_code == 422
    assert later.json()["code"] == "unknown_ward"
    bad_gender = {**ward, "gender_policy": "other"}
    assert (
        await api.client.put(f"{B}/admin/wards", json=[bad_gender], headers=his)
    ).status_code == 422

    # an organization's admin keeps its own organization's master data only
    theirs = api.token("admin-2", Role.ADMIN, org=OTHER)
    walled = await api.client.put(f"{B}/admin/beds", json=[good], headers=theirs)
    assert walled.status_code == 403, walled.text

    blocked = await api.client.put(f"{B}/admin/beds", json=[{**good, "blocked": True}], headers=his)
    assert blocked.status_code == 200, blocked.text
    assert await bed_status(api, blocked.json()["ids"][0]) == "blocked"


async def test_assigning_a_bed_that_does_not_fit_is_refused_and_changes_nothing(
    appointments_api: Api,
) -> None:
    api = appointments_api
    beds = await setup_beds(api)
    man = await patient(api, "acct-m", "male", "吴男")
    woman = await patient(api, "acct-f", "female", "郑女")
    isolated = await patient(api, "acct-i", "male", "冯隔")
    monitored = await patient(api, "acct-x", "male", "陈监")
    notice_m = await issue(api, man, "ep-m")
    notice_f = await issue(api, woman, "ep-f")
    notice_i = await issue(api, isolated, "ep-i", needs={"isolation": True})
    notice_x = await issue(api, monitored, "ep-x", needs={"monitoring": True})

    async def refused(notice: dict[str, object], bed: str, status: int, code: str) -> None:
        reply = await api.client.post(
            f"{B}/admission-notices/{notice['id']}/assign",
            json=assign_body(bed),
            headers=nurse(api),
        )
        assert reply.status_code == status, reply.text
        assert reply.json()["code"] == code
        assert reply.headers["content-type"].startswith("application/problem+json")

    await refused(notice_f, beds["W-M/1"], 422, "gender_mismatch")
    await refused(notice_i, beds["W-M/1"], 422, "isolation_mismatch")
    await refused(notice_x, beds["W-M/1"], 422, "monitoring_mismatch")
    await refused(notice_m, beds["W-S/1"], 422, "borrowing_not_allowed")
    for bed in ("W-M/1", "W-S/1"):
        assert await bed_status(api, beds[bed]) == "free"
    for account in ("acct-f", "acct-i", "acct-x", "acct-m"):
        (notice,) = await my_notices(api, account)
        assert notice["status"] == "waiting"
        assert notice["offer"] is None

    await assign(api, notice_i["id"], beds["W-ISO/1"])
    await refused(notice_m, beds["W-ISO/1"], 409, "bed_not_free")
    await refused(notice_i, beds["W-M/1"], 409, "notice_not_waiting")

    # the organization lets cardiology borrow surgery's beds (借床)
    policy = {"offer_minutes": 60, "borrowing": [{"borrower": "CARD", "lender": "SURG"}]}
    saved = await api.client.put(f"{B}/admin/bed-policies/{ORG}", json=policy, headers=api.admin)
    assert saved.status_code == 200, saved.text
    borrowed = await assign(api, notice_m["id"], beds["W-S/1"])
    assert borrowed["borrowed"] is True


async def test_a_second_active_notice_for_one_episode_is_refused(appointments_api: Api) -> None:
    api = appointments_api
    await setup_beds(api)
    man = await patient(api, "acct-d", "male")
    await issue(api, man, "ep-1")
    again = await api.client.post(
        f"{B}/admission-notices", json=notice_body(man, "ep-1"), headers=doctor(api)
    )
    assert again.status_code == 409, again.text
    assert again.json()["code"] == "admission_notice_exists"
    assert len(await my_notices(api, "acct-d")) == 1
    bad_icd = notice_body(man, "ep-2", diagnosis={"code": "heart", "text": "x"})
    invalid = await api.client.post(f"{B}/admission-notices", json=bad_icd, headers=doctor(api))
    assert invalid.status_code == 422, invalid.text
    other_episode = await issue(api, man, "ep-2")
    assert other_episode["status"] == "waiting"

    # a retry with the same Idempotency-Key returns the first result, not a 409
    keyed = {**doctor(api), "Idempotency-Key": "notice-ep-3"}
    body = notice_body(man, "ep-3")
    first = await api.client.post(f"{B}/admission-notices", json=body, headers=keyed)
    assert first.status_code == 201, first.text
    retry = await api.client.post(f"{B}/admission-notices", json=body, headers=keyed)
    assert retry.status_code == 201, retry.text
    assert retry.headers.get("Idempotent-Replayed") == "true"
    assert retry.json()["id"] == first.json()["id"]
    assert len(await my_notices(api, "acct-d")) == 3


async def test_walls_of_the_organization_and_of_the_patient(appointments_api: Api) -> None:
    api = appointments_api
    beds = await setup_beds(api)
    man = await patient(api, "acct-o", "male")
    notice = await issue(api, man, "ep-o")
    url = f"{B}/admission-notices/{notice['id']}"
    reason = {"reason": "bed desk"}
    theirs = await api.client.get(url, params=reason, headers=nurse(api, org=OTHER))
    assert theirs.status_code == 403, theirs.text
    ours = await api.client.get(url, params=reason, headers=nurse(api))
    assert ours.status_code == 200, ours.text
    stranger = await api.client.get(url, headers=api.token("acct-stranger"))
    assert stranger.status_code == 403, stranger.text
    own = await api.client.get(url, headers=api.token("acct-o"))
    assert own.status_code == 200
    assert own.json()["patient_id"] == man

    other_assign = await api.client.post(
        f"{url}/assign", json=assign_body(beds["W-M/1"]), headers=nurse(api, org=OTHER)
    )
    assert other_assign.status_code == 403, other_assign.text
    other_clean = await api.client.post(
        f"{B}/beds/{beds['W-M/1']}/cleaned", headers=nurse(api, org=OTHER)
    )
    assert other_clean.status_code == 403, other_clean.text
    other_fhir = await api.client.get(
        f"{B}/fhir/Location/{beds['W-M/1']}", headers=nurse(api, org=OTHER)
    )
    assert other_fhir.status_code == 403, other_fhir.text
    other_list = await api.client.get(
        f"{B}/beds", params={"org_id": ORG}, headers=nurse(api, org=OTHER)
    )
    assert other_list.status_code == 403, other_list.text
    figures = await api.client.get(
        f"{B}/beds/figures", params={"org_id": ORG}, headers=api.token("a2", Role.ADMIN, org=OTHER)
    )
    assert figures.status_code == 403, figures.text
    as_patient = await api.client.post(
        f"{url}/assign", json=assign_body(beds["W-M/1"]), headers=api.token("acct-o")
    )
    assert as_patient.status_code == 403, as_patient.text

    offer = await assign(api, notice["id"], beds["W-M/1"])
    foreign_agent = api.token("agent-2", Role.AGENT, org=OTHER)
    refused = await api.client.post(
        f"{B}/bed-offers/{offer['id']}/confirm", params=reason, headers=foreign_agent
    )
    assert refused.status_code == 403, refused.text
    declined_by_stranger = await api.client.post(
        f"{B}/bed-offers/{offer['id']}/decline", headers=api.token("acct-stranger")
    )
    assert declined_by_stranger.status_code == 403, declined_by_stranger.text
    assert await bed_status(api, beds["W-M/1"]) == "reserved"

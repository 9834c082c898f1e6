"""A patient's referrals for the patient's page: staff give a reason (audited) and see the
cases their organization sent or holds now, newest first; the alliance admin sees all."""

from __future__ import annotations

from typing import Any

import pytest

from services.referrals.bootstrap import built
from services.referrals.store import PATIENTS
from shared.principal import Role
from tests.integration.referrals.cases_support import CASES, known_patient, referral_body, staff
from tests.integration.referrals.conftest import Api, seed_directory

pytestmark = pytest.mark.integration
R = "/v1/referrals"
SUMMARY_KEYS = {
    "referral_id",
    "status",
    "business_status",
    "direction",
    "urgency",
    "referring_org_id",
    "receiving_org_id",
    "created_at",
    "diagnosis",
}


async def refer(api: Api, patient: str, sender: str, **changes: Any) -> dict[str, Any]:
    sent = await api.client.post(
        CASES,
        json=referral_body(patient, **changes),
        headers=staff(api, sender, Role.DOCTOR, f"dr-{sender}"),
    )
    assert sent.status_code == 201, sent.text
    return dict(sent.json())


async def listed(api: Api, patient: str, headers: dict[str, str], **params: str) -> Any:
    return await api.client.get(f"{R}/patients/{patient}/referrals", headers=headers, params=params)


async def test_staff_see_their_organizations_cases_of_the_patient(referrals: Api) -> None:
    await seed_directory(referrals)
    patient = await known_patient(referrals)
    # town1 refers up to county1, then (another episode) county2 refers up to prov1
    first = await refer(referrals, patient, "town1", preferred_org_id="county1")
    second = await refer(
        referrals,
        patient,
        "county2",
        urgency="routine",
        diagnosis={"code": "I63.9", "text": "脑梗死"},
        specialty="neurology",
    )
    assert first["receiving_org_id"] == "county1"
    assert second["receiving_org_id"] == "prov1"

    nurse = staff(referrals, "county1", Role.NURSE, "nurse-county1")
    no_reason = await listed(referrals, patient, nurse)
    assert no_reason.status_code == 400
    assert no_reason.json()["code"] == "reason_required"

    seen = await listed(referrals, patient, nurse, reason="患者来电查询")
    assert seen.status_code == 200, seen.text
    (item,) = seen.json()["items"]  # county1 holds the first only
    assert set(item) == SUMMARY_KEYS
    assert item["referral_id"] == first["referral_id"]
    assert (item["referring_org_id"], item["receiving_org_id"]) == ("town1", "county1")
    assert (item["status"], item["business_status"]) == ("requested", "awaiting_triage")
    assert item["diagnosis"]["code"] == "I20.0"

    sender = await listed(
        referrals, patient, staff(referrals, "town1", Role.AGENT), reason="hotline"
    )
    assert [i["referral_id"] for i in sender.json()["items"]] == [first["referral_id"]]

    everything = await listed(referrals, patient, referrals.alliance_admin, reason="质控抽查")
    assert [i["referral_id"] for i in everything.json()["items"]] == [
        second["referral_id"],  # newest first
        first["referral_id"],
    ]

    # town2 never saw the patient: refused, nothing shown
    other = await listed(referrals, patient, staff(referrals, "town2", Role.DOCTOR), reason="查看")
    assert other.status_code == 403
    assert other.json()["code"] == "forbidden_org"
    assert first["referral_id"] not in other.text
    unknown = await listed(referrals, "no-such-patient", referrals.alliance_admin, reason="查看")
    assert unknown.status_code == 404

    # patients and services do not use this staff read
    assert (
        await listed(referrals, patient, referrals.token("acct-1"), reason="x1")
    ).status_code == 403
    assert (await listed(referrals, patient, referrals.service, reason="x1")).status_code == 403

    records = await built(referrals.app.state.runtime).audit.query(action="referral.patient_list")
    assert {(r.patient_id, r.reason) for r in records} >= {
        (patient, "患者来电查询"),
        (patient, "质控抽查"),
    }


async def test_a_patient_the_hotline_registered_without_an_account_can_be_referred(
    referrals: Api,
) -> None:
    """``patient.registered`` with no account (hotline registration): the patient is known,
    managed by no account, and a doctor may refer them."""
    await seed_directory(referrals)
    patient = await known_patient(referrals, no_account=True)
    doc = await built(referrals.app.state.runtime).patients.db[PATIENTS].find_one({"_id": patient})
    assert doc is not None
    assert doc["account_ids"] == []
    sent = await refer(referrals, patient, "town1", preferred_org_id="county1")
    assert sent["patient_id"] == patient

"""The views over many cases: the coordinator's incoming worklist (SLA first, filters, the
routing explanation), the referring doctor's outgoing list, the dashboard's figures, and the
FHIR R4 view of one case."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.principal import Role
from tests.integration.referrals.cases_support import (
    CASES,
    command,
    known_patient,
    referral_body,
    staff,
)
from tests.integration.referrals.conftest import Api, seed_directory

pytestmark = pytest.mark.integration
R = "/v1/referrals"


async def refer(api: Api, **changes: object) -> dict[str, object]:
    patient = await known_patient(api)
    sent = await api.client.post(
        CASES,
        json=referral_body(patient, **changes),
        headers=staff(api, "town1", Role.DOCTOR, "dr-town1"),
    )
    assert sent.status_code == 201, sent.text
    return dict(sent.json())


async def test_worklists_and_figures_follow_the_cases(referrals: Api) -> None:
    await seed_directory(referrals)
    urgent = await refer(referrals, urgency="urgent", preferred_org_id="county1")
    emergency = await refer(referrals, urgency="emergency", preferred_org_id="county1")
    routine = await refer(referrals, urgency="routine", preferred_org_id="county1")
    assert {c["receiving_org_id"] for c in (urgent, emergency, routine)} == {"county1"}
    assert "preferred" in str(urgent["routing"]["explanation"])  # type: ignore[index]

    coordinator = staff(referrals, "county1")
    incoming = await referrals.client.get(f"{R}/worklists/incoming", headers=coordinator)
    assert incoming.status_code == 200, incoming.text
    items = incoming.json()["items"]
    # the nearest deadline first: emergency (30 min), urgent (2 h), routine (24 h)
    assert [i["referral_id"] for i in items] == [
        emergency["referral_id"],
        urgent["referral_id"],
        routine["referral_id"],
    ]
    assert 0 < items[0]["sla_seconds_left"] <= 30 * 60
    assert items[0]["routing_explanation"].startswith("county1")
    only_urgent = await referrals.client.get(
        f"{R}/worklists/incoming", headers=coordinator, params={"urgency": "urgent"}
    )
    assert [i["referral_id"] for i in only_urgent.json()["items"]] == [urgent["referral_id"]]
    # another organization's coordinator sees none of them; naming county1 is refused
    other = await referrals.client.get(
        f"{R}/worklists/incoming", headers=staff(referrals, "county2")
    )
    assert other.json()["items"] == []
    named = await referrals.client.get(
        f"{R}/worklists/incoming", headers=staff(referrals, "county2"), params={"org_id": "county1"}
    )
    assert named.status_code == 403

    accepted = await command(
        referrals,
        str(urgent["referral_id"]),
        "accept",
        coordinator,
        {"department_id": "county1.CARD"},
    )
    assert accepted.status_code == 200
    rejected = await command(
        referrals,
        str(routine["referral_id"]),
        "reject",
        coordinator,
        {"reason_code": "no_capacity"},
    )
    assert rejected.status_code == 200

    outgoing = await referrals.client.get(
        f"{R}/worklists/outgoing",
        headers=staff(referrals, "town1", Role.DOCTOR, "dr-town1"),
        params={"mine": "true"},
    )
    assert len(outgoing.json()["items"]) == 3

    now = datetime.now(UTC)
    window = {
        "since": (now - timedelta(hours=1)).isoformat(),
        "until": (now + timedelta(hours=1)).isoformat(),
    }
    sent = await referrals.client.get(
        f"{R}/figures", headers=staff(referrals, "town1"), params=window
    )
    assert sent.status_code == 200, sent.text
    out = sent.json()["sent"]
    assert out["total"] == 3
    assert out["upward"] == 3
    assert out["reroutes"] == 1  # the routine one went on to county2
    received = (
        await referrals.client.get(f"{R}/figures", headers=coordinator, params=window)
    ).json()
    # the declined case counts where it went on; county1's answers count both
    assert received["received"]["total"] == 2
    offers = received["offers"]
    assert (offers["offered"], offers["accepted"], offers["rejected"], offers["open"]) == (
        3,
        1,
        1,
        1,
    )
    assert offers["acceptance_rate"] == 0.5
    assert offers["median_minutes_to_accept"] is not None
    assert received["received_by_department"]["county1.CARD"]["total"] == 1


async def test_the_fhir_view_of_a_case(referrals: Api) -> None:
    await seed_directory(referrals)
    case = await refer(referrals, urgency="emergency")
    case_id = case["referral_id"]
    sender = staff(referrals, "town1", Role.DOCTOR, "dr-town1")
    task = await referrals.client.get(f"{R}/fhir/Task/{case_id}", headers=sender)
    assert task.status_code == 200, task.text
    assert task.headers["content-type"].startswith("application/fhir+json")
    body = task.json()
    assert body["resourceType"] == "Task"
    assert body["status"] == "requested"
    assert body["priority"] == "stat"
    assert body["for"]["reference"].endswith(str(case["patient_id"]))
    request = await referrals.client.get(f"{R}/fhir/ServiceRequest/{case_id}", headers=sender)
    assert request.json()["resourceType"] == "ServiceRequest"
    assert request.json()["reasonCode"][0]["coding"][0]["code"] == "I20.0"
    outsider = await referrals.client.get(
        f"{R}/fhir/Task/{case_id}", headers=staff(referrals, "prov1")
    )
    assert outsider.status_code == 403

"""Referral cases on the embedded stack: submission, routing with its explanation, the
workflow's roles and states, re-routing after a rejection, and bad input that writes nothing."""

from __future__ import annotations

import pytest

from services.referrals.bootstrap import built
from services.referrals.store import CASES as CASES_COLLECTION
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


async def count_cases(api: Api) -> int:
    return await built(api.app.state.runtime).db[CASES_COLLECTION].count_documents({})


async def test_an_upward_referral_is_routed_accepted_and_its_history_kept(referrals: Api) -> None:
    await seed_directory(referrals)
    patient = await known_patient(referrals)
    doctor = staff(referrals, "town1", Role.DOCTOR, "dr-li")
    sent = await referrals.client.post(CASES, json=referral_body(patient), headers=doctor)
    assert sent.status_code == 201, sent.text
    case = sent.json()
    assert case["status"] == "requested"
    assert case["business_status"] == "awaiting_triage"
    assert case["receiving_org_id"] in ("county1", "county2")  # towns refer up to counties
    assert case["sending_doctor_id"] == "dr-li"
    assert sent.headers["ETag"] == f'"{case["version"]}"'
    routing = case["routing"]
    assert routing["explanation"].startswith(case["receiving_org_id"])
    ranked = {c["org_id"]: c for c in routing["candidates"]}
    assert set(ranked) == {"county1", "county2"}
    assert case["sla_seconds_left"] > 0
    receiver = case["receiving_org_id"]

    # only the receiver accepts; the sender cannot
    by_sender = await command(
        referrals, case["referral_id"], "accept", doctor, {"department_id": "county1.CARD"}
    )
    assert by_sender.status_code == 403
    assert by_sender.json()["code"] == "forbidden_side"
    coordinator = staff(referrals, receiver)
    no_department = await command(referrals, case["referral_id"], "accept", coordinator)
    assert no_department.status_code == 422
    assert no_department.json()["code"] == "department_id_required"
    accepted = await command(
        referrals, case["referral_id"], "accept", coordinator, {"department_id": f"{receiver}.CARD"}
    )
    assert accepted.status_code == 200, accepted.text
    body = accepted.json()
    assert body["status"] == "accepted"
    assert body["business_status"] == "awaiting_booking"
    assert body["booking"]["department_id"] == f"{receiver}.CARD"
    assert [h["action"] for h in body["history"]] == ["create", "route", "accept"]
    assert body["history"][-1]["by"]["org_id"] == receiver

    # a second accept is a transition from the wrong state: 409, nothing changes
    again = await command(
        referrals, case["referral_id"], "accept", coordinator, {"department_id": f"{receiver}.CARD"}
    )
    assert again.status_code == 409
    assert again.json()["code"] == "invalid_transition"


async def test_a_rejection_reroutes_and_never_back_to_who_declined(referrals: Api) -> None:
    await seed_directory(referrals)
    patient = await known_patient(referrals)
    sent = await referrals.client.post(
        CASES, json=referral_body(patient), headers=staff(referrals, "town1", Role.DOCTOR)
    )
    case = sent.json()
    first = case["receiving_org_id"]
    no_code = await command(referrals, case["referral_id"], "reject", staff(referrals, first))
    assert no_code.status_code == 422
    assert no_code.json()["code"] == "reason_code_required"
    rejected = await command(
        referrals,
        case["referral_id"],
        "reject",
        staff(referrals, first),
        {"reason_code": "no_capacity"},
    )
    assert rejected.status_code == 200, rejected.text
    moved = rejected.json()
    second = ({"county1", "county2"} - {first}).pop()
    assert moved["receiving_org_id"] == second  # routed on at once, to the other county
    now = await referrals.client.get(f"{CASES}/{case['referral_id']}", headers=referrals.service)
    state = now.json()
    assert state["status"] == "requested"
    assert state["receiving_org_id"] == second
    assert state["declined_org_ids"] == [first]
    assert state["routing"]["attempt"] == 2
    excluded = {c["org_id"]: c["excluded"] for c in state["routing"]["candidates"]}
    assert excluded[first] == "already_declined"

    last = await command(
        referrals,
        case["referral_id"],
        "reject",
        staff(referrals, second),
        {"reason_code": "not_indicated"},
    )
    assert last.status_code == 200
    final = (
        await referrals.client.get(f"{CASES}/{case['referral_id']}", headers=referrals.service)
    ).json()
    assert final["status"] == "rejected"
    assert final["business_status"] == "rejected"
    assert final["declined_org_ids"] == [first, second]
    # a new referral for the same episode is allowed once the case is over
    retry = await referrals.client.post(
        CASES,
        json=referral_body(patient, episode_id=case["episode_id"]),
        headers=staff(referrals, "town1", Role.DOCTOR),
    )
    assert retry.status_code == 201, retry.text


async def test_bad_referrals_get_a_specific_problem_and_write_nothing(referrals: Api) -> None:
    await seed_directory(referrals)
    patient = await known_patient(referrals)
    doctor = staff(referrals, "town1", Role.DOCTOR)
    cases = {
        "unknown_patient": referral_body("no-such-patient"),
        "unknown_organization": referral_body(patient, preferred_org_id="nowhere"),
        "consent_required": referral_body(
            patient,
            consent={"given": False, "method": "verbal", "recorded_at": "2026-12-01T08:00:00Z"},
        ),
        "no_eligible_receiver": referral_body(patient, specialty="oncology"),  # only prov1 has it
    }
    for code, body in cases.items():
        answer = await referrals.client.post(CASES, json=body, headers=doctor)
        assert answer.status_code == 422, (code, answer.text)
        assert answer.json()["code"] == code, answer.text
    malformed = await referrals.client.post(
        CASES,
        json=referral_body(patient, diagnosis={"code": "chest pain", "text": "胸痛"}),
        headers=doctor,
    )
    assert malformed.status_code == 422
    assert "diagnosis" in malformed.text
    assert await count_cases(referrals) == 0

    first = await referrals.client.post(
        CASES, json=referral_body(patient, episode_id="enc-1"), headers=doctor
    )
    assert first.status_code == 201
    second = await referrals.client.post(
        CASES, json=referral_body(patient, episode_id="enc-1"), headers=doctor
    )
    assert second.status_code == 409
    assert second.json()["code"] == "live_referral_exists"
    assert await count_cases(referrals) == 1

    # staff of another organization, a patient, an agent: none may write a referral here
    other = await referrals.client.post(
        CASES, json=referral_body(patient, sending_org_id="town2"), headers=doctor
    )
    assert other.status_code == 403
    agent = await referrals.client.post(
        CASES, json=referral_body(patient), headers=staff(referrals, "town1", Role.AGENT)
    )
    assert agent.status_code == 403
    assert (await referrals.client.post(CASES, json=referral_body(patient))).status_code == 401
    assert await count_cases(referrals) == 1


async def test_concurrent_changes_need_the_version_they_read(referrals: Api) -> None:
    await seed_directory(referrals)
    patient = await known_patient(referrals)
    case = (
        await referrals.client.post(
            CASES, json=referral_body(patient), headers=staff(referrals, "town1", Role.DOCTOR)
        )
    ).json()
    coordinator = staff(referrals, case["receiving_org_id"])
    url = f"{CASES}/{case['referral_id']}/accept"
    body = {"department_id": f"{case['receiving_org_id']}.CARD"}
    missing = await referrals.client.post(url, json=body, headers=coordinator)
    assert missing.status_code == 428
    stale = await referrals.client.post(url, json=body, headers={**coordinator, "If-Match": '"0"'})
    assert stale.status_code == 412
    assert stale.json()["current_version"] == case["version"]
    ok = await referrals.client.post(
        url, json=body, headers={**coordinator, "If-Match": f'"{case["version"]}"'}
    )
    assert ok.status_code == 200


async def test_staff_of_an_unrelated_organization_and_other_patients_see_nothing(
    referrals: Api,
) -> None:
    await seed_directory(referrals)
    account = "acct-owner"
    patient = await known_patient(referrals, account)
    case = (
        await referrals.client.post(
            CASES, json=referral_body(patient), headers=staff(referrals, "town1", Role.DOCTOR)
        )
    ).json()
    url = f"{CASES}/{case['referral_id']}"
    assert (await referrals.client.get(url, headers=staff(referrals, "town2"))).status_code == 403
    assert (await referrals.client.get(url, headers=staff(referrals, "prov1"))).status_code == 403
    stranger = referrals.minter.mint("acct-stranger", ["patient"], patient_ids=["p-other"])
    assert (
        await referrals.client.get(url, headers={"authorization": f"Bearer {stranger}"})
    ).status_code == 404
    owner = referrals.minter.mint(account, ["patient"], patient_ids=[patient])
    seen = await referrals.client.get(url, headers={"authorization": f"Bearer {owner}"})
    assert seen.status_code == 200
    assert "routing" not in seen.json()  # the patient sees where it stands, not the routing
    mine = await referrals.client.get(
        "/v1/referrals/me/referrals", headers={"authorization": f"Bearer {owner}"}
    )
    assert [i["referral_id"] for i in mine.json()["items"]] == [case["referral_id"]]

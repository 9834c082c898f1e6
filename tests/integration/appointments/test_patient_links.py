"""Proof before linking: a name and a national ID add no one's patient to an account; the
code goes to the phone on record, the answer never tells whether the ID is known, and staff
links are verified and audited."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from shared.crypto import FieldCipher
from shared.mongo import Document
from shared.principal import Role
from tests.factories import make_national_id, make_phone
from tests.integration.appointments.conftest import ORG, Api
from tests.support.patient_codes import PATIENTS, VERIFICATION_EVENT, add_patient, texted_code

pytestmark = pytest.mark.integration

A = "/v1/appointments"


async def texted_to(api: Api, mongo: AsyncMongoClient[Document], verification_id: str) -> str:
    """The phone number the verification's code was texted to."""
    cipher = FieldCipher.from_settings(api.settings.pii_encryption_keys, api.settings.pii_hash_key)
    outbox = mongo[api.settings.database_name]["outbox"]
    doc = await outbox.find_one({"_id": verification_id, "headers.ce_type": VERIFICATION_EVENT})
    assert doc is not None
    data = json.loads(doc["value"])["data"]
    return cipher.decrypt(
        data["phone_enc"], context="patient_verification.phone", record_id=verification_id
    )


async def known_patient(api: Api, account: str) -> dict[str, Any]:
    body = {"name": "慕容秀", "national_id": make_national_id(), "phone": make_phone()}
    added = await add_patient(api.client, api.settings, api.token(account), body)
    assert added.status_code == 201, added.text
    return {**added.json(), **body}


async def test_a_stranger_with_name_and_id_gets_no_link_and_the_code_goes_to_the_owner(
    appointments_api: Api, mongo: AsyncMongoClient[Document]
) -> None:
    api = appointments_api
    victim = await known_patient(api, "acct-victim")
    stranger = api.token("acct-stranger")
    own_phone = make_phone()
    asked = await api.client.post(
        PATIENTS,
        headers=stranger,
        json={"name": victim["name"], "national_id": victim["national_id"], "phone": own_phone},
    )
    assert asked.status_code == 202, asked.text
    vid = asked.json()["verification_id"]
    assert await texted_to(api, mongo, vid) == victim["phone"] != own_phone
    assert (await api.client.get(PATIENTS, headers=stranger)).json() == []
    status = await api.client.get(f"{A}/patients/{victim['id']}/booking-status", headers=stranger)
    assert status.status_code == 403
    wrong = await api.client.post(
        f"{PATIENTS}/verifications/{vid}", headers=stranger, json={"code": "000000"}
    )
    if wrong.status_code != 201:  # one in a million: 000000 was the code
        assert (wrong.status_code, wrong.json()["code"]) == (422, "verification_code_invalid")
    # another account cannot use the stranger's verification even with the right code
    code = await texted_code(api.settings, vid)
    other = await api.client.post(
        f"{PATIENTS}/verifications/{vid}", headers=api.token("acct-third"), json={"code": code}
    )
    assert (other.status_code, other.json()["code"]) == (404, "verification_not_found")
    # the owner read the code out to a family member's account: now it is linked
    linked = await api.client.post(
        f"{PATIENTS}/verifications/{vid}", headers=stranger, json={"code": code}
    )
    assert (linked.status_code, linked.json()["id"]) == (201, victim["id"])
    again = await api.client.post(
        f"{PATIENTS}/verifications/{vid}", headers=stranger, json={"code": code}
    )
    assert again.status_code == 404  # a code is used once


async def test_the_answer_is_the_same_whether_or_not_the_id_is_known(
    appointments_api: Api, mongo: AsyncMongoClient[Document]
) -> None:
    api = appointments_api
    victim = await known_patient(api, "acct-owner")
    me = api.token("acct-prober")
    probes = {
        "unknown": {"name": "路人甲", "national_id": make_national_id(), "phone": make_phone()},
        "known": {"name": victim["name"], "national_id": victim["national_id"]},
        "wrong name": {"name": "冒名者", "national_id": victim["national_id"]},
    }
    answers = {}
    for label, body in probes.items():
        reply = await api.client.post(PATIENTS, headers=me, json={"phone": make_phone(), **body})
        assert reply.status_code == 202, (label, reply.text)
        answers[label] = reply.json()
    shapes = {(tuple(sorted(a)), a["detail"]) for a in answers.values()}
    assert len(shapes) == 1, answers
    # a name that does not match texts no one, and no code can complete it
    mismatch = answers["wrong name"]["verification_id"]
    outbox = mongo[api.settings.database_name]["outbox"]
    assert await outbox.count_documents({"key": mismatch}) == 0
    for n in range(5):
        tried = await api.client.post(
            f"{PATIENTS}/verifications/{mismatch}", headers=me, json={"code": f"{n:06d}"}
        )
        assert (tried.status_code, tried.json()["code"]) == (422, "verification_code_invalid")
    locked = await api.client.post(
        f"{PATIENTS}/verifications/{mismatch}", headers=me, json={"code": "123456"}
    )
    assert (locked.status_code, locked.json()["code"]) == (409, "verification_expired")
    assert [p["id"] for p in (await api.client.get(PATIENTS, headers=me)).json()] == []


async def test_staff_verified_links_are_audited_and_guardians_must_be_the_account_holder(
    appointments_api: Api, mongo: AsyncMongoClient[Document]
) -> None:
    api = appointments_api
    parent = await known_patient(api, "acct-parent")  # the account holder (self)
    nurse = {**api.token("nurse-1", Role.NURSE), "X-Access-Reason": "counter, ID card seen"}
    child = {"name": "慕容小", "national_id": make_national_id(), "phone": parent["phone"]}
    body = {
        "account_id": "acct-parent",
        "patient": {**child, "relation": "child"},
        "method": "counter",
        "guardian_patient_id": parent["id"],
    }
    url = f"{A}/staff/patients/links"
    no_reason = await api.client.post(url, headers=api.token("nurse-1", Role.NURSE), json=body)
    assert (no_reason.status_code, no_reason.json()["code"]) == (400, "reason_required")
    stranger = await known_patient(api, "acct-other")
    bad_guardian = await api.client.post(
        url, headers=nurse, json={**body, "guardian_patient_id": stranger["id"]}
    )
    assert (bad_guardian.status_code, bad_guardian.json()["code"]) == (422, "guardian_not_verified")
    linked = await api.client.post(url, headers=nurse, json=body)
    assert linked.status_code == 201, linked.text
    child_id = linked.json()["id"]
    mine = (await api.client.get(PATIENTS, headers=api.token("acct-parent"))).json()
    assert {p["id"]: p["relation"] for p in mine}[child_id] == "child"
    db = mongo[api.settings.database_name]
    assert (await db["patients"].find_one({"_id": child_id}))["org_ids"] == [ORG]
    record = await db["audit_log"].find_one({"action": "patient.link.verified"})
    assert record is not None
    assert (record["patient_id"], record["actor_id"], record["details"]["method"]) == (
        child_id,
        "nurse-1",
        "counter",
    )
    assert child["national_id"] not in str(record)
    # the counter's organization now sees the child; another organization's staff do not
    seen = await api.client.post(
        f"{A}/staff/patients/lookup", headers=nurse, json={"national_id": child["national_id"]}
    )
    assert seen.status_code == 200, seen.text
    elsewhere = {**api.token("nurse-9", Role.NURSE, org="h2"), "X-Access-Reason": "counter"}
    unseen = await api.client.post(
        f"{A}/staff/patients/lookup", headers=elsewhere, json={"national_id": child["national_id"]}
    )
    assert unseen.status_code == 404


async def test_an_account_that_let_a_patient_go_no_longer_reaches_their_bookings(
    appointments_api: Api,
) -> None:
    api = appointments_api
    me = api.token("acct-leaver")
    patient = await known_patient(api, "acct-leaver")
    schedule = await api.publish(days_ahead=2)
    booked = await api.client.post(
        f"{A}/appointments", headers=me, json={"patient_id": patient["id"], "schedule_id": schedule}
    )
    assert booked.status_code == 201, booked.text
    appointment = booked.json()["id"]
    cancelled = await api.client.post(
        f"{A}/appointments/{appointment}/cancel", headers=me, json={"reason": "plans changed"}
    )
    assert cancelled.status_code == 200, cancelled.text
    assert (await api.client.get(f"{A}/appointments/{appointment}", headers=me)).status_code == 200
    removed = await api.client.delete(f"{PATIENTS}/{patient['id']}", headers=me)
    assert removed.status_code == 204, removed.text
    gone = await api.client.get(f"{A}/appointments/{appointment}", headers=me)
    assert gone.status_code == 404
    listed = await api.client.get(f"{A}/appointments", headers=me)
    assert listed.json()["items"] == []


async def test_a_patient_cannot_name_a_referral_it_cannot_prove(appointments_api: Api) -> None:
    """A referral id closes someone's referral loop: only coordinators and the referrals
    service name one; a patient's or an agent's claim is refused and books nothing."""
    api = appointments_api
    patient = await known_patient(api, "acct-claimer")
    schedule = await api.publish(days_ahead=2)
    body = {"patient_id": patient["id"], "schedule_id": schedule, "referral_id": "rf-someone"}
    agent = {**api.token("agent-1", Role.AGENT), "X-Access-Reason": "hotline"}
    for headers in (api.token("acct-claimer"), agent):
        refused = await api.client.post(f"{A}/appointments", headers=headers, json=body)
        assert (refused.status_code, refused.json()["code"]) == (422, "referral_not_verified")
    mine = await api.client.get(f"{A}/appointments", headers=api.token("acct-claimer"))
    assert mine.json()["items"] == []


async def test_a_crash_between_linking_and_spending_the_code_links_once(
    appointments_api: Api, mongo: AsyncMongoClient[Document]
) -> None:
    """The state a kill -9 leaves between the two steps of a confirmation (the patient
    linked, the code not yet spent): confirming again finds the patient linked, once."""
    api = appointments_api
    me = api.token("acct-crash")
    body = {"name": "上官燕", "national_id": make_national_id(), "phone": make_phone()}
    asked = await api.client.post(PATIENTS, headers=me, json=body)
    vid = asked.json()["verification_id"]
    code = await texted_code(api.settings, vid)
    url = f"{PATIENTS}/verifications/{vid}"
    first = await api.client.post(url, headers=me, json={"code": code})
    assert first.status_code == 201, first.text
    verifications = mongo[api.settings.database_name]["patient_verifications"]
    await verifications.update_one({"_id": vid}, {"$set": {"used": False}})  # not yet spent
    again = await api.client.post(url, headers=me, json={"code": code})
    assert (again.status_code, again.json()["id"]) == (201, first.json()["id"])
    mine = (await api.client.get(PATIENTS, headers=me)).json()
    assert [p["id"] for p in mine] == [first.json()["id"]]
    stored = await mongo[api.settings.database_name]["patients"].find_one({"_id": mine[0]["id"]})
    assert stored is not None
    assert stored["account_ids"] == ["acct-crash"]

"""The hotline finding its caller: staff search by phone, national ID or name among the
patients of their organization (masked, audited, with a reason), read one, and register a
caller who has no record."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest
from pymongo import AsyncMongoClient

from services.appointments.patients import Patients
from services.appointments.staff_search import backfill_phone_hashes
from shared.crypto import FieldCipher
from shared.mongo import Document
from shared.principal import Role
from tests.factories import make_national_id, make_phone
from tests.integration.appointments.conftest import Api

pytestmark = pytest.mark.integration

A = "/v1/appointments"
SEARCH = f"{A}/staff/patients/search"
REASON = {"reason": "来电查询"}


def staff(api: Api, role: Role = Role.AGENT, org: str | None = "h1") -> dict[str, str]:
    return api.token(f"{role.value}-{org}", role, org=org)


async def register(
    api: Api,
    name: str,
    *,
    org: str = "h1",
    role: Role = Role.AGENT,
    phone: str | None = None,
    national_id: str | None = None,
    expect: int = 201,
) -> dict[str, Any]:
    body = {"name": name, "national_id": national_id or make_national_id()}
    body["phone"] = phone or make_phone()
    reply = await api.client.post(
        f"{A}/staff/patients", headers=staff(api, role, org), params=REASON, json=body
    )
    assert reply.status_code == expect, reply.text
    return {**reply.json(), "national_id": body["national_id"], "phone": body["phone"]}


async def audit_records(api: Api, action: str) -> list[Document]:
    client: AsyncMongoClient[Document] = AsyncMongoClient(api.settings.mongo_url)
    try:
        db = client[api.settings.database_name]
        return await db["audit_log"].find({"action": action}).to_list()
    finally:
        await client.close()


async def search(api: Api, body: dict[str, str], headers: dict[str, str] | None = None) -> Any:
    reply = await api.client.post(SEARCH, headers=headers or staff(api), params=REASON, json=body)
    assert reply.status_code == 200, reply.text
    return reply.json()["items"]


async def test_search_by_each_term_is_masked_and_audited(appointments_api: Api) -> None:
    api = appointments_api
    patient = await register(api, "张小伟")
    namesake = await register(api, "张小伟")
    for term in ({"phone": patient["phone"]}, {"national_id": patient["national_id"]}):
        (match,) = await search(api, term)
        assert match == {
            "id": patient["id"],
            "name_masked": "张*伟",
            "national_id_masked": patient["national_id_masked"],
            "phone_masked": patient["phone_masked"],
            "sex": patient["sex"],
            "birth_year": int(patient["national_id"][6:10]),
        }
        assert patient["phone"] not in json.dumps(match)
    by_name = await search(api, {"name": " 张小伟 "})
    assert {m["id"] for m in by_name} == {patient["id"], namesake["id"]}
    assert await search(api, {"name": "张小"}) == []  # exact names only
    two = await register(api, "李娜")
    assert (await search(api, {"phone": two["phone"]}))[0]["name_masked"] == "李*"

    records = await audit_records(api, "patient.search")
    assert sorted((r["details"]["kind"], r["details"]["count"]) for r in records) == [
        ("name", 0),
        ("name", 2),
        ("national_id", 1),
        ("phone", 1),
        ("phone", 1),
    ]
    assert all(r["reason"] == REASON["reason"] for r in records)
    stored = json.dumps([{**r, "_id": str(r["_id"])} for r in records], default=str)
    assert patient["phone"] not in stored
    assert patient["national_id"] not in stored
    assert "张小伟" not in stored


async def test_another_organizations_patient_is_not_found(appointments_api: Api) -> None:
    api = appointments_api
    theirs = await register(api, "王二", org="h2", role=Role.NURSE)
    for term in (
        {"phone": theirs["phone"]},
        {"national_id": theirs["national_id"]},
        {"name": "王二"},
    ):
        assert await search(api, term) == []
        # the alliance's admin sees every organization's patients
        found = await search(api, term, api.token("alli", Role.ALLIANCE_ADMIN, org=None))
        assert [m["id"] for m in found] == [theirs["id"]]
    read = await api.client.get(
        f"{A}/staff/patients/{theirs['id']}", headers=staff(api), params=REASON
    )
    assert read.status_code == 403, read.text
    assert read.json()["code"] == "forbidden_org"


async def test_a_reason_and_exactly_one_valid_term_are_required(appointments_api: Api) -> None:
    api = appointments_api
    phone = make_phone()
    no_reason = await api.client.post(SEARCH, headers=staff(api), json={"phone": phone})
    assert no_reason.status_code == 400, no_reason.text
    assert no_reason.json()["code"] == "reason_required"
    cases = [
        ({}, "search_term_required"),
        ({"phone": phone, "name": "张三"}, "search_term_ambiguous"),
        ({"phone": "12345"}, "phone_invalid"),
        ({"national_id": "110101199001011234"}, "national_id_invalid"),
        ({"name": "   "}, "name_invalid"),
    ]
    for body, code in cases:
        reply = await api.client.post(SEARCH, headers=staff(api), params=REASON, json=body)
        assert reply.status_code == 422, reply.text
        assert reply.json()["code"] == code, reply.text
        assert reply.json()["detail_zh"]
    patient_role = await api.client.post(
        SEARCH, headers=api.token("acct-1"), params=REASON, json={"phone": phone}
    )
    assert patient_role.status_code == 403
    assert await audit_records(api, "patient.search") == []


async def test_staff_read_a_patient_of_their_organization(appointments_api: Api) -> None:
    api = appointments_api
    patient = await register(api, "赵六", role=Role.NURSE)
    url = f"{A}/staff/patients/{patient['id']}"
    assert (await api.client.get(url, headers=staff(api, Role.DOCTOR))).status_code == 400
    read = await api.client.get(url, headers=staff(api, Role.DOCTOR), params=REASON)
    assert read.status_code == 200, read.text
    assert read.json() == {
        "id": patient["id"],
        "name": "赵六",
        "national_id_masked": patient["national_id_masked"],
        "phone_masked": patient["phone_masked"],
        "sex": patient["sex"],
        "birth_date": patient["birth_date"],
        "org_ids": ["h1"],
        "account_count": 0,
    }
    (record,) = await audit_records(api, "patient.read")
    assert record["patient_id"] == patient["id"]


async def test_records_written_before_get_their_phone_hash(appointments_api: Api) -> None:
    api = appointments_api
    patient = await register(api, "钱七")
    client: AsyncMongoClient[Document] = AsyncMongoClient(api.settings.mongo_url)
    try:
        db = client[api.settings.database_name]
        await db["patients"].update_one({"_id": patient["id"]}, {"$unset": {"phone_hash": ""}})
        assert await search(api, {"phone": patient["phone"]}) == []
        cipher = FieldCipher.from_settings(
            api.settings.pii_encryption_keys, api.settings.pii_hash_key
        )
        patients = Patients(cast(Any, db), cipher, cast(Any, None))
        assert await backfill_phone_hashes(patients, batch=1) >= 1
        assert await backfill_phone_hashes(patients) == 0  # idempotent
    finally:
        await client.close()
    assert [m["id"] for m in await search(api, {"phone": patient["phone"]})] == [patient["id"]]

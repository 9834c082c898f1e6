"""Bans from no-shows, appeals and admin overrides, through the service's HTTP API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from shared.mongo import Database, Document
from shared.principal import Role
from tests.integration.appointments.conftest import Api

pytestmark = pytest.mark.integration


def service_db(api: Api, mongo: AsyncMongoClient[Document]) -> Database:
    return mongo[api.settings.database_name]


async def banned_patient(
    api: Api, mongo: AsyncMongoClient[Document], account: str
) -> tuple[str, datetime]:
    """A patient with three no-shows in the last 90 days: banned for 90 days after the last."""
    patient = await api.add_patient(account)
    now = datetime.now(UTC).replace(microsecond=0)
    no_shows = [now - timedelta(days=d) for d in (20, 10, 1)]
    await service_db(api, mongo)["patient_records"].insert_one(
        {"_id": patient["id"], "no_shows": no_shows, "late_cancels": []}
    )
    return str(patient["id"]), no_shows[-1] + timedelta(days=90)


async def try_booking(api: Api, account: str, patient_id: str, schedule: str) -> httpx.Response:
    return await api.client.post(
        "/v1/appointments/appointments",
        headers=api.token(account),
        json={"patient_id": patient_id, "schedule_id": schedule},
    )


async def status_of(api: Api, account: str, patient_id: str) -> dict[str, Any]:
    response = await api.client.get(
        f"/v1/appointments/patients/{patient_id}/booking-status", headers=api.token(account)
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def appeal(api: Api, account: str, patient_id: str, reason: str) -> httpx.Response:
    return await api.client.post(
        f"/v1/appointments/patients/{patient_id}/appeals",
        headers=api.token(account),
        json={"reason": reason},
    )


def decision_url(appeal_id: str) -> str:
    return f"/v1/appointments/appeals/{appeal_id}/decision"


async def test_an_approved_appeal_lifts_the_ban(
    appointments_api: Api, mongo: AsyncMongoClient[Document]
) -> None:
    api = appointments_api
    schedule = await api.publish(days_ahead=2)
    patient_id, until = await banned_patient(api, mongo, "acct-1")

    refused = await try_booking(api, "acct-1", patient_id, schedule)
    assert refused.status_code == 403
    assert refused.json()["code"] == "patient_banned"
    status = await status_of(api, "acct-1", patient_id)
    assert status["banned"] is True
    assert datetime.fromisoformat(status["banned_until"]) == until
    assert status["no_shows"]["count"] == 3
    assert status["appeal"] is None
    other = await api.client.get(
        f"/v1/appointments/patients/{patient_id}/booking-status", headers=api.token("acct-2")
    )
    assert other.status_code == 403

    assert (await appeal(api, "acct-2", patient_id, "not mine")).status_code == 403
    filed = await appeal(api, "acct-1", patient_id, "那几天住院了，有出院小结")
    assert filed.status_code == 201, filed.text
    appeal_id = filed.json()["id"]
    assert filed.json()["status"] == "pending"
    twice = await appeal(api, "acct-1", patient_id, "再次申诉")
    assert twice.status_code == 409
    assert twice.json()["code"] == "appeal_pending"
    assert (await status_of(api, "acct-1", patient_id))["appeal"]["id"] == appeal_id

    body = {"approve": True, "note": "出院小结核实无误"}
    by_patient = await api.client.post(
        decision_url(appeal_id), headers=api.token("acct-1"), json=body
    )
    assert by_patient.status_code == 403
    agent = api.token("agent-7", Role.AGENT)
    decided = await api.client.post(decision_url(appeal_id), headers=agent, json=body)
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "approved"
    again = await api.client.post(decision_url(appeal_id), headers=agent, json=body)
    assert again.status_code == 409
    assert again.json()["code"] == "appeal_already_decided"

    status = await status_of(api, "acct-1", patient_id)
    assert (status["banned"], status["banned_until"], status["appeal"]) == (False, None, None)
    assert status["no_shows"]["count"] == 0
    booked = await try_booking(api, "acct-1", patient_id, schedule)
    assert booked.status_code == 201, booked.text
    audit = await service_db(api, mongo)["audit_log"].find({"actor_id": "agent-7"}).to_list()
    assert [(a["action"], a["patient_id"]) for a in audit] == [
        ("penalty.appeal.approved", patient_id)
    ]


async def test_a_rejected_appeal_keeps_the_ban_and_unbanned_patients_cannot_appeal(
    appointments_api: Api, mongo: AsyncMongoClient[Document]
) -> None:
    api = appointments_api
    schedule = await api.publish(days_ahead=2)
    patient_id, until = await banned_patient(api, mongo, "acct-1")
    appeal_id = (await appeal(api, "acct-1", patient_id, "忘记了")).json()["id"]
    rejected = await api.client.post(
        decision_url(appeal_id),
        headers=api.admin,
        json={"approve": False, "note": "无正当理由"},
    )
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "rejected"
    status = await status_of(api, "acct-1", patient_id)
    assert status["banned"] is True
    assert datetime.fromisoformat(status["banned_until"]) == until
    assert status["appeal"] is None
    still = await try_booking(api, "acct-1", patient_id, schedule)
    assert still.status_code == 403
    assert still.json()["code"] == "patient_banned"
    # a rejected appeal is closed: a new one (with new evidence) may be filed
    assert (await appeal(api, "acct-1", patient_id, "补充材料")).status_code == 201

    clean = await api.add_patient("acct-3", name="李四")
    not_banned = await appeal(api, "acct-3", clean["id"], "想申诉")
    assert not_banned.status_code == 409
    assert not_banned.json()["code"] == "not_banned"
    assert not_banned.json()["detail_zh"]
    missing = await api.client.post(
        decision_url("no-such-appeal"), headers=api.admin, json={"approve": True, "note": "ok"}
    )
    assert missing.status_code == 404


async def test_an_admin_override_lifts_the_ban_and_is_audited(
    appointments_api: Api, mongo: AsyncMongoClient[Document]
) -> None:
    api = appointments_api
    schedule = await api.publish(days_ahead=2)
    patient_id, _until = await banned_patient(api, mongo, "acct-1")
    pending = (await appeal(api, "acct-1", patient_id, "系统误记爽约")).json()["id"]
    url = f"/v1/appointments/patients/{patient_id}/ban-override"
    reason = "HIS 签到数据同步故障，误记爽约"
    for headers in (api.token("agent-7", Role.AGENT), api.token("acct-1")):
        denied = await api.client.post(url, headers=headers, json={"reason": reason})
        assert denied.status_code == 403
        assert denied.json()["code"] == "forbidden_role"
    short = await api.client.post(url, headers=api.admin, json={"reason": "bug"})
    assert short.status_code == 422
    assert (await status_of(api, "acct-1", patient_id))["banned"] is True

    lifted = await api.client.post(url, headers=api.admin, json={"reason": reason})
    assert lifted.status_code == 200, lifted.text
    assert (lifted.json()["banned"], lifted.json()["banned_until"]) == (False, None)
    assert (await status_of(api, "acct-1", patient_id))["banned"] is False
    booked = await try_booking(api, "acct-1", patient_id, schedule)
    assert booked.status_code == 201, booked.text
    again = await api.client.post(url, headers=api.admin, json={"reason": reason})
    assert again.status_code == 409
    assert again.json()["code"] == "not_banned"

    db = service_db(api, mongo)
    audit = await db["audit_log"].find({"action": "penalty.ban.override"}).to_list()
    assert [(a["actor_id"], a["patient_id"], a["reason"]) for a in audit] == [
        ("admin-1", patient_id, reason)
    ]
    closed = await db["penalties"].find_one({"_id": pending})
    assert closed is not None
    assert (closed["status"], closed["open"]) == ("overridden", False)
    record = await db["patient_records"].find_one({"_id": patient_id})
    assert record is not None
    assert record["clearances"][-1]["by"] == "admin-1"

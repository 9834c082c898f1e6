"""Policies are checked when written, and organization ids are strict, through HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo import AsyncMongoClient

from shared.mongo import Document
from tests.integration.appointments.conftest import ORG, Api

pytestmark = pytest.mark.integration

POLICY = f"/v1/appointments/admin/policies/{ORG}"


async def book(api: Api, account: str, schedule: str) -> int:
    patient = await api.add_patient(account)
    response = await api.client.post(
        "/v1/appointments/appointments",
        headers=api.token(account),
        json={"patient_id": patient["id"], "schedule_id": schedule},
    )
    return response.status_code


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"timezone": "Mars/Olympus"}, "validation_error", "body.timezone"),
        ({"timezone": ""}, "validation_error", "body.timezone"),
        ({"timezone": "../../etc/passwd"}, "validation_error", "body.timezone"),
        ({"release": {"days_ahead": 7, "at": "07:00:30"}}, "validation_error", "body.release.at"),
        (
            {"pool_shares": {"referral": 0.7, "hotline": 0.2, "onsite": 0.2}},
            "validation_error",
            "body.pool_shares",
        ),
        (
            {"referral_release_days_ahead": 2},
            "policy_invalid",
            "body.referral_release_days_ahead",
        ),
        (
            {"department_release": {"h2.CARD": {"days_ahead": 7, "at": "08:00"}}},
            "policy_invalid",
            "body.department_release",
        ),
    ],
)
async def test_a_policy_that_cannot_be_applied_is_refused_and_the_old_one_stays(
    appointments_api: Api, change: dict[str, Any], code: str, field: str
) -> None:
    api = appointments_api
    good = {
        **(await api.client.get(POLICY, headers=api.admin)).json(),
        "max_active_bookings_per_patient": 4,
    }
    saved = await api.client.put(POLICY, json=good, headers=api.admin)
    assert saved.status_code == 200, saved.text

    refused = await api.client.put(POLICY, json={**good, **change}, headers=api.admin)
    assert refused.status_code == 422, refused.text
    body = refused.json()
    assert body["code"] == code
    assert any(e["field"].startswith(field) for e in body["errors"]), body["errors"]
    assert "etc/passwd" not in refused.text  # never echoed
    assert "Mars" not in refused.text

    assert (await api.client.get(POLICY, headers=api.admin)).json() == good
    schedule = await api.publish(days_ahead=2)  # publishing and booking still work
    assert await book(api, "acct-1", schedule) == 201


async def test_org_ids_are_strict_everywhere(appointments_api: Api) -> None:
    api = appointments_api
    for org in (" $x", "$x", "H1", "h1.x", "-h1"):
        policy = await api.client.get(f"/v1/appointments/admin/policies/{org}", headers=api.admin)
        assert policy.status_code in (404, 422), (org, policy.text)  # "h1.x" may not route
        listed = await api.client.get(
            "/v1/appointments/departments", params={"org_id": org}, headers=api.admin
        )
        assert listed.status_code == 422, (org, listed.text)
        bad_dep = [{"org_id": org, "code": "CARD", "name": "心内科"}]
        put = await api.client.put(
            "/v1/appointments/admin/departments", json=bad_dep, headers=api.admin
        )
        assert put.status_code == 422, (org, put.text)
    status = await api.client.get(
        "/v1/appointments/patients/p1/booking-status",
        params={"org_id": " $x"},
        headers=api.token("acct-1"),
    )
    assert status.status_code == 422
    put = await api.client.put("/v1/appointments/admin/policies/%20$x", json={}, headers=api.admin)
    assert (put.status_code, put.json()["code"]) == (422, "validation_error")
    assert (await api.client.get(POLICY, headers=api.admin)).status_code == 200  # "h1" is fine


async def test_a_bad_policy_stored_before_the_checks_does_not_break_booking(
    appointments_api: Api, mongo: AsyncMongoClient[Document]
) -> None:
    api = appointments_api
    await mongo[api.settings.database_name]["booking_policies"].insert_one(
        {"_id": ORG, "policy": {"timezone": "Mars/Olympus"}}
    )
    schedule = await api.publish(days_ahead=2)  # the defaults apply (and an error is logged)
    assert await book(api, "acct-1", schedule) == 201

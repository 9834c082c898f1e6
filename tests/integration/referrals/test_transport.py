"""Patient transport (陪检 / 院内转运) over real HTTP: a nurse's wheelchair escort is
dispatched to the porter on duty in the ward's zone and stepped through to completed;
steps out of order or by another porter are refused with nothing written; the dispatcher
assigns by hand; the walls between organizations; patients of another organization."""

from __future__ import annotations

import json

import pytest

from services.referrals.settings import ReferralsSettings
from shared.principal import Role
from tests.integration.referrals.cases_support import known_patient, staff
from tests.integration.referrals.conftest import Api
from tests.integration.referrals.transport_support import (
    NEXT,
    WARD_ZONE,
    T,
    escort_body,
    on_duty,
    patient_at,
    porter,
    porter_headers,
    read,
    request,
    roster,
    step,
)
from tests.support.kafka import read_topic

pytestmark = pytest.mark.integration
COUNTY = "county1"


async def test_a_wheelchair_escort_is_dispatched_and_stepped_through_to_completed(
    referrals: Api,
) -> None:
    await roster(
        referrals,
        COUNTY,
        porter("porter-a", COUNTY, [WARD_ZONE]),
        porter("porter-b", COUNTY, ["outpatient"]),
        porter("porter-c", COUNTY, ["outpatient"]),
    )
    await on_duty(referrals, COUNTY, "porter-b", zone="outpatient")
    await on_duty(referrals, COUNTY, "porter-a")  # in the ward's zone: the one chosen
    patient = await patient_at(referrals, COUNTY)
    made = await request(referrals, COUNTY, escort_body(patient))
    transport_id = made["transport_id"]
    assert (made["state"], made["porter_id"]) == ("assigned", "porter-a")
    mine = porter_headers(referrals, COUNTY, "porter-a")
    job = (await referrals.client.get(NEXT, headers=mine)).json()
    assert job["next"]["transport_id"] == transport_id

    # another porter's step, and a step out of order: refused, nothing written
    other = await step(
        referrals, transport_id, "accept", porter_headers(referrals, COUNTY, "porter-b")
    )
    assert (other.status_code, other.json()["code"]) == (403, "not_assigned_porter")
    early = await step(referrals, transport_id, "picked_up", mine)
    assert (early.status_code, early.json()["code"]) == (409, "step_out_of_order")
    assert (await read(referrals, transport_id))["version"] == made["version"]

    for name in ("accept", "picked_up", "arrived", "handed_over", "returned", "completed"):
        done = await step(referrals, transport_id, name, mine)
        assert done.status_code == 200, done.text
    final = await read(referrals, transport_id)
    assert final["state"] == "completed"
    stamps = [
        final["times"][s]
        for s in (
            "requested",
            "assigned",
            "en_route",
            "with_patient",
            "arrived",
            "handed_over",
            "returned",
            "completed",
        )
    ]
    assert stamps == sorted(stamps)
    actions = [h["action"] for h in final["history"]]
    assert actions == [
        "request",
        "dispatch",
        "accept",
        "picked_up",
        "arrived",
        "handed_over",
        "returned",
        "completed",
    ]
    again = await step(referrals, transport_id, "completed", mine)  # a handheld's retry
    assert again.status_code == 200, again.text
    assert again.json()["version"] == final["version"]  # nothing written
    late = await step(referrals, transport_id, "arrived", mine)
    assert (late.status_code, late.json()["code"]) == (409, "step_out_of_order")

    task = await referrals.client.get(
        f"/v1/referrals/fhir/Task/transport/{transport_id}", headers=referrals.service
    )
    assert task.status_code == 200, task.text
    assert task.headers["content-type"].startswith("application/fhir+json")
    assert (task.json()["status"], task.json()["businessStatus"]["text"]) == (
        "completed",
        "completed",
    )
    figures = await referrals.client.get(
        f"{T}/figures", params={"org_id": COUNTY}, headers=staff(referrals, COUNTY)
    )
    assert figures.status_code == 200, figures.text
    assert figures.json()["per_porter"] == [
        {"porter_id": "porter-a", "jobs": 1, "completed": 1, "failed": 0}
    ]
    assert figures.json()["by_priority"]["urgent"]["count"] == 1
    settings = referrals.settings
    records = await read_topic(
        settings.kafka_bootstrap, f"{settings.kafka_topic_prefix}.referrals", expected=9
    )
    types = [json.loads(r.value)["type"] for r in records]
    assert types.count("careloop.transport.requested") == 1
    assert types.count("careloop.transport.assigned") == 1
    assert types.count("careloop.transport.step_recorded") == 5
    assert types.count("careloop.transport.completed") == 1


async def test_waiting_transports_go_out_when_a_porter_comes_on_duty_and_the_dispatcher_overrides(
    referrals: Api,
) -> None:
    await roster(
        referrals,
        COUNTY,
        porter("porter-s", COUNTY, [WARD_ZONE], "stretcher", "oxygen"),
        porter("porter-w", COUNTY, [WARD_ZONE]),
    )
    patient = await patient_at(referrals, COUNTY)
    body = escort_body(patient, mode="stretcher", needs=["oxygen"], priority="emergency")
    waiting = await request(referrals, COUNTY, body)
    assert (waiting["state"], waiting["porter_id"]) == ("requested", None)
    await on_duty(referrals, COUNTY, "porter-w")  # no stretcher skill: still waiting
    assert (await read(referrals, waiting["transport_id"]))["state"] == "requested"
    duty = await on_duty(referrals, COUNTY, "porter-s")
    assert duty["dispatched"] == 1
    assert (await read(referrals, waiting["transport_id"]))["porter_id"] == "porter-s"

    url = f"{T}/{waiting['transport_id']}/assign"
    desk = staff(referrals, COUNTY, Role.COORDINATOR)
    no_reason = await referrals.client.post(url, json={"porter_id": "porter-w"}, headers=desk)
    assert (no_reason.status_code, no_reason.json()["code"]) == (422, "reason_required")
    by_nurse = await referrals.client.post(
        url,
        json={"porter_id": "porter-w", "reason": "x"},
        headers=staff(referrals, COUNTY, Role.NURSE),
    )
    assert by_nurse.status_code == 403
    moved = await referrals.client.post(
        url, json={"porter_id": "porter-w", "reason": "porter-s 被急诊借调"}, headers=desk
    )
    assert moved.status_code == 200, moved.text
    assert (moved.json()["porter_id"], moved.json()["history"][-1]["action"]) == (
        "porter-w",
        "override",
    )
    assert moved.json()["history"][-1]["reason"] == "porter-s 被急诊借调"
    # the former porter may no longer step; the dispatcher may, in the porter's place
    former = await step(
        referrals, waiting["transport_id"], "accept", porter_headers(referrals, COUNTY, "porter-s")
    )
    assert former.status_code == 403
    by_desk = await step(referrals, waiting["transport_id"], "accept", desk)
    assert by_desk.status_code == 200, by_desk.text
    assert by_desk.json()["history"][-1]["details"] == {"by_dispatcher": True}

    cancelled = await referrals.client.post(
        f"{T}/{waiting['transport_id']}/cancel",
        json={"reason": "检查取消"},
        headers=staff(referrals, COUNTY, Role.NURSE),
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["state"] == "cancelled"
    board = await referrals.client.get(T, params={"org_id": COUNTY}, headers=desk)
    assert board.status_code == 200
    assert {i["state"] for i in board.json()["items"]} == {"cancelled"}


async def test_the_walls_between_organizations_and_the_patients_view(referrals: Api) -> None:
    account = "acct-transport-1"
    patient = await patient_at(referrals, COUNTY, account_id=account)
    made = await request(referrals, COUNTY, escort_body(patient))
    url = f"{T}/{made['transport_id']}"
    for role in (Role.NURSE, Role.COORDINATOR):
        other = await referrals.client.get(url, headers=staff(referrals, "county2", role))
        assert (other.status_code, other.json()["code"]) == (403, "forbidden_org")
    stepped = await step(
        referrals, made["transport_id"], "accept", staff(referrals, "county2", Role.COORDINATOR)
    )
    assert stepped.status_code == 403
    cancel = await referrals.client.post(
        f"{url}/cancel", json={"reason": "x"}, headers=staff(referrals, "county2", Role.NURSE)
    )
    assert cancel.status_code == 403
    board = await referrals.client.get(
        T, params={"org_id": COUNTY}, headers=staff(referrals, "county2", Role.COORDINATOR)
    )
    assert board.status_code == 403
    own = await referrals.client.get(url, headers=referrals.token(account, Role.PATIENT))
    assert own.status_code == 200, own.text
    assert set(own.json()) == {"transport_id", "state", "mode", "pickup_at", "times"}
    stranger = await referrals.client.get(
        url, headers=referrals.token("acct-stranger", Role.PATIENT)
    )
    assert stranger.status_code == 404
    fhir = await referrals.client.get(
        f"/v1/referrals/fhir/Task/transport/{made['transport_id']}",
        headers=referrals.token(account, Role.PATIENT),
    )
    assert fhir.status_code == 403


async def test_a_patient_of_another_organization_needs_a_referral(referrals: Api) -> None:
    elsewhere = await patient_at(referrals, "county2")
    refused = await request(referrals, COUNTY, escort_body(elsewhere), status=403)
    assert refused["code"] == "patient_of_another_org"
    patient = await patient_at(referrals, COUNTY)
    transfer = escort_body(patient, to={"org_id": "prov1"}, mode="ambulance")
    crossing = await request(referrals, COUNTY, transfer, status=403)
    assert crossing["code"] == "referral_required"
    unknown = await request(
        referrals, COUNTY, escort_body(await known_patient(referrals)), status=403
    )
    assert unknown["code"] == "patient_of_another_org"  # real, but never seen here
    board = await referrals.client.get(T, params={"org_id": COUNTY}, headers=referrals.service)
    assert board.json()["items"] == []  # nothing written
    assert isinstance(referrals.settings, ReferralsSettings)


async def test_a_request_retried_with_its_idempotency_key_is_made_once(referrals: Api) -> None:
    patient = await patient_at(referrals, COUNTY)
    headers = {**staff(referrals, COUNTY, Role.NURSE), "Idempotency-Key": "transport-retry-0001"}
    first = await referrals.client.post(T, json=escort_body(patient), headers=headers)
    assert first.status_code == 201, first.text
    again = await referrals.client.post(T, json=escort_body(patient), headers=headers)
    assert again.status_code == 201, again.text
    assert again.json()["transport_id"] == first.json()["transport_id"]
    changed = await referrals.client.post(T, json=escort_body(patient, mode="bed"), headers=headers)
    assert (changed.status_code, changed.json()["code"]) == (422, "idempotency_key_reused")
    board = await referrals.client.get(T, params={"org_id": COUNTY}, headers=referrals.service)
    assert len(board.json()["items"]) == 1

"""Transports tied to what happens elsewhere: an exam appointment moved moves its transport
and a cancelled one cancels it (appointments' events on their topic, as appointments
writes them); an accepted emergency referral asks for an ambulance transfer, once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.appointments.events import AppointmentCancelled, AppointmentRescheduled
from shared.events import make_event
from shared.ids import new_id
from shared.principal import Role
from tests.integration.referrals.cases_support import (
    CASES,
    command,
    known_patient,
    referral_body,
    staff,
)
from tests.integration.referrals.conftest import Api, seed_directory
from tests.integration.referrals.transport_support import (
    T,
    appointment,
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
from tests.support.kafka import publish_events, wait_until

pytestmark = pytest.mark.integration
COUNTY = "county1"


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_a_moved_exam_moves_its_transport_and_a_cancelled_one_cancels_it(
    referrals: Api,
) -> None:
    patient = await patient_at(referrals, COUNTY)
    exam_id = new_id()
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=3)
    body = escort_body(
        patient, appointment_id=exam_id, appointment_starts_at=starts.isoformat(), mode="bed"
    )
    made = await request(referrals, COUNTY, body)
    assert _at(made["pickup_at"]) == starts - timedelta(minutes=30)  # the lead time before

    later = starts + timedelta(days=1)
    moved_id = new_id()
    moved = AppointmentRescheduled(
        **appointment(patient, COUNTY, appointment_id=moved_id, starts_at=later, ends_at=later),
        previous_appointment_id=exam_id,
        previous_starts_at=starts,
    )
    await publish_events(
        referrals.settings,
        "appointments",
        [make_event(moved, source="appointments", subject=patient)],
    )

    async def state() -> dict[str, Any]:
        return await read(referrals, made["transport_id"])

    async def followed() -> bool:
        return (await state())["appointment_id"] == moved_id

    await wait_until(followed, timeout=30, what="the transport following its exam")
    current = await state()
    assert _at(current["pickup_at"]) == later - timedelta(minutes=30)
    assert _at(current["pickup_due_at"]) == later - timedelta(minutes=30)
    assert current["state"] == "requested"

    cancelled = AppointmentCancelled(
        **appointment(patient, COUNTY, appointment_id=moved_id, starts_at=later, ends_at=later),
        reason="patient_request",
        cancelled_by_role="nurse",
    )
    await publish_events(
        referrals.settings,
        "appointments",
        [make_event(cancelled, source="appointments", subject=patient)],
    )

    async def gone() -> bool:
        return (await state())["state"] == "cancelled"

    await wait_until(gone, timeout=30, what="the transport cancelled with its exam")
    final = await state()
    assert final["history"][-1]["action"] == "cancel"
    assert "appointment cancelled" in final["reason"]


async def test_an_accepted_emergency_referral_asks_for_an_ambulance_transfer_once(
    referrals: Api,
) -> None:
    await seed_directory(referrals)
    patient = await known_patient(referrals)
    sent = await referrals.client.post(
        CASES,
        json=referral_body(patient, urgency="emergency"),
        headers=staff(referrals, "town1", Role.DOCTOR),
    )
    assert sent.status_code == 201, sent.text
    case = sent.json()
    receiver = case["receiving_org_id"]
    await roster(
        referrals, receiver, porter("crew-1", receiver, [], "ambulance", kind="ambulance_crew")
    )
    await on_duty(referrals, receiver, "crew-1", zone=None)
    accepted = await command(
        referrals,
        case["referral_id"],
        "accept",
        staff(referrals, receiver),
        {"department_id": f"{receiver}.CARD"},
    )
    assert accepted.status_code == 200, accepted.text
    desk = staff(referrals, receiver, Role.COORDINATOR)

    async def transfers() -> list[dict[str, Any]]:
        board = await referrals.client.get(T, params={"org_id": receiver}, headers=desk)
        assert board.status_code == 200, board.text
        return list(board.json()["items"])

    async def asked() -> bool:
        return len(await transfers()) == 1

    await wait_until(asked, timeout=30, what="the ambulance transfer asked for")
    (transfer,) = await transfers()
    assert transfer["mode"] == "ambulance"
    assert transfer["priority"] == "emergency"
    assert transfer["referral_id"] == case["referral_id"]
    assert (transfer["from"]["org_id"], transfer["to"]["org_id"]) == ("town1", receiver)
    assert (transfer["state"], transfer["porter_id"]) == ("assigned", "crew-1")
    # the sending township sees it too (it concerns both); another county does not
    sender = await referrals.client.get(
        f"{T}/{transfer['transport_id']}", headers=staff(referrals, "town1", Role.NURSE)
    )
    assert sender.status_code == 200, sender.text
    crew = porter_headers(referrals, receiver, "crew-1")
    for name in ("accept", "picked_up"):
        assert (await step(referrals, transfer["transport_id"], name, crew)).status_code == 200
    assert len(await transfers()) == 1  # once per referral

    # the sending township asks for its own leg with the referral that links the two
    leg = {
        "patient_id": patient,
        "from": {"ward": "留观室"},
        "to": {"org_id": receiver},
        "mode": "stretcher",
        "priority": "emergency",
    }
    township = staff(referrals, "town1", Role.NURSE)
    refused = await referrals.client.post(T, json=leg, headers=township)
    assert (refused.status_code, refused.json()["code"]) == (403, "referral_required")
    other_case = await referrals.client.post(
        T, json={**leg, "referral_id": new_id()}, headers=township
    )
    assert (other_case.status_code, other_case.json()["code"]) == (403, "referral_required")
    linked = await referrals.client.post(
        T, json={**leg, "referral_id": case["referral_id"]}, headers=township
    )
    assert linked.status_code == 201, linked.text
    assert linked.json()["org_id"] == "town1"

"""An inpatient's exam booked with an escort asks for the transport by itself: a CT booking
(``appointment.booked`` with ``escort``, as appointments writes it for a ward's staff)
makes one wheelchair escort from the ward and bed to the exam, picked up the lead time
before the start and tied to the appointment; the event again makes nothing more; the
porter on duty steps it through to completed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.appointments.events import AppointmentBooked
from shared.events import make_event
from shared.ids import new_id
from shared.principal import Role
from tests.integration.referrals.cases_support import staff
from tests.integration.referrals.conftest import Api
from tests.integration.referrals.transport_support import (
    T,
    appointment,
    on_duty,
    patient_at,
    porter,
    porter_headers,
    read,
    roster,
    step,
)
from tests.support.kafka import publish_events, wait_until

pytestmark = pytest.mark.integration
COUNTY = "county1"
ESCORT = {"mode": "wheelchair", "needs": ["nurse_escort"], "from_ward": "5W", "from_bed": "12"}


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_an_inpatients_ct_booking_creates_a_wheelchair_escort_once_that_a_porter_completes(
    referrals: Api,
) -> None:
    await roster(referrals, COUNTY, porter("porter-a", COUNTY, []))
    await on_duty(referrals, COUNTY, "porter-a", zone=None)
    patient = await patient_at(referrals, COUNTY)
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=3)
    exam = AppointmentBooked(
        **appointment(patient, COUNTY, starts_at=starts, ends_at=starts + timedelta(minutes=20)),
        booked_by_role="nurse",
        escort=ESCORT,
    )
    booked = make_event(exam, source="appointments", subject=patient)
    await publish_events(referrals.settings, "appointments", [booked])
    desk = staff(referrals, COUNTY, Role.COORDINATOR)

    async def escorts(appointment_id: str) -> list[dict[str, Any]]:
        board = await referrals.client.get(T, params={"org_id": COUNTY}, headers=desk)
        assert board.status_code == 200, board.text
        return [t for t in board.json()["items"] if t["appointment_id"] == appointment_id]

    async def asked() -> bool:
        return len(await escorts(exam.appointment_id)) == 1

    await wait_until(asked, timeout=30, what="the escort asked for by the booking")
    (listed,) = await escorts(exam.appointment_id)
    made = await read(referrals, listed["transport_id"])
    assert (made["mode"], made["needs"], made["priority"]) == (
        "wheelchair",
        ["nurse_escort"],
        "routine",
    )
    assert (made["from"]["ward"], made["from"]["bed"], made["from"]["org_id"]) == (
        "5W",
        "12",
        COUNTY,
    )
    assert (made["to"]["department_id"], made["to"]["room"], made["to"]["org_id"]) == (
        f"{COUNTY}.RAD",
        "CT 2",
        COUNTY,
    )
    assert (made["org_id"], made["appointment_id"]) == (COUNTY, exam.appointment_id)
    assert _at(made["pickup_at"]) == starts - timedelta(minutes=30)  # the lead time before
    assert (made["state"], made["porter_id"]) == ("assigned", "porter-a")

    # the same event delivered again, and the booking announced again under a new event id:
    # nothing more; a later booking of another exam (same patient, same partition, so read
    # after them) shows they were handled
    again = make_event(exam, source="appointments", subject=patient)
    other_starts = starts + timedelta(hours=1)
    other = AppointmentBooked(
        **appointment(
            patient,
            COUNTY,
            appointment_id=new_id(),
            starts_at=other_starts,
            ends_at=other_starts + timedelta(minutes=20),
        ),
        booked_by_role="nurse",
        escort={**ESCORT, "mode": "walk_with_escort", "needs": [], "from_bed": None},
    )
    later = make_event(other, source="appointments", subject=patient)
    await publish_events(referrals.settings, "appointments", [booked, again, later])

    async def marker() -> bool:
        return len(await escorts(other.appointment_id)) == 1

    await wait_until(marker, timeout=30, what="the later booking's escort")
    assert len(await escorts(exam.appointment_id)) == 1  # once per appointment
    (walk,) = await escorts(other.appointment_id)
    assert (walk["mode"], walk["from"]["bed"]) == ("walk_escort", None)

    # the porter on duty steps it through, as for any request
    mine = porter_headers(referrals, COUNTY, "porter-a")
    transport_id = made["transport_id"]
    for name in ("accept", "picked_up", "arrived", "handed_over", "completed"):
        done = await step(referrals, transport_id, name, mine)
        assert done.status_code == 200, done.text
    final = await read(referrals, transport_id)
    assert final["state"] == "completed"
    assert [h["action"] for h in final["history"]] == [
        "request",
        "dispatch",
        "accept",
        "picked_up",
        "arrived",
        "handed_over",
        "completed",
    ]

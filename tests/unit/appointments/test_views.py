"""An appointment's facts and its API view come from one definition (AppointmentFacts)."""

from __future__ import annotations

from datetime import UTC, datetime

from services.appointments.booking_common import SCHEDULE_FACTS, SLOT_FACTS, new_appointment_facts
from services.appointments.domain.models import Channel
from services.appointments.events import AppointmentFacts
from services.appointments.views import FACT_FIELDS, appointment_facts, appointment_view
from shared.mongo import Document

STARTS = datetime(2025, 3, 17, 1, 0, tzinfo=UTC)
ENDS = datetime(2025, 3, 17, 1, 10, tzinfo=UTC)
DOC: Document = {
    **{"_id": "ap-1", "status": "booked", "patient_id": "pt-1", "account_id": "acc-1"},
    **{"org_id": "org-a", "department_id": "org-a.cardio", "department_name": "心内科"},
    **{"resource_id": "org-a.dr-li", "resource_name": "李医生", "resource_kind": "doctor"},
    **{"schedule_id": "sc-1", "slot_id": "sl-1", "clinic_date": "2025-03-17"},
    **{"session": "am", "number": 3, "starts_at": STARTS, "ends_at": ENDS},
    **{"channel": "app", "pool": "public"},
}


def test_the_facts_are_the_event_payloads_fields() -> None:
    facts = appointment_facts(DOC)
    assert set(facts) == set(AppointmentFacts.model_fields)
    assert AppointmentFacts(**facts).appointment_id == "ap-1"


def test_the_view_shows_every_fact_but_the_account() -> None:
    view = appointment_view(DOC, "Asia/Shanghai")
    shown = set(AppointmentFacts.model_fields) - {"appointment_id", "account_id"}
    assert shown <= set(view)
    assert "account_id" not in view
    assert view["id"] == "ap-1"
    assert (view["starts_at"], view["starts_local"]) == (
        "2025-03-17T01:00:00+00:00",
        "2025-03-17T09:00:00+08:00",
    )
    assert (view["referral_id"], view["preparation"], view["fee_cents"]) == (None, None, 0)


def test_a_new_appointment_stores_every_fact_of_the_event_payload() -> None:
    schedule = {k: DOC[k] for k in SCHEDULE_FACTS}
    slot = {k: DOC[k] for k in SLOT_FACTS}
    facts = new_appointment_facts(
        patient={"_id": "pt-1"},
        schedule=schedule,
        slot=slot,
        department={"name": "心内科"},
        resource={"preparation": None},
        channel=Channel(DOC["channel"]),
        account_id="acc-1",
        referral_id=None,
    )
    assert tuple(facts) == FACT_FIELDS
    assert facts == {k: v for k, v in appointment_facts(DOC).items() if k != "appointment_id"}
    assert AppointmentFacts(appointment_id="ap-1", **facts).resource_name == "李医生"

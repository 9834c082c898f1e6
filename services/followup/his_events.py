"""The JSON events the HIS publishes on ``careloop.his`` (its contract with CareLoop; the
schemas are in ``schemas/events/``). Followup reads them; an event that breaks the
contract is kept for review as malformed (``intake.py``), never dropped silently.

The patient is named by CareLoop's ``patient_id`` when the HIS knows it, else by the
national ID (matched by keyed hash, never stored) and the hospital's MRN.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, Field

from shared.events import EventPayload, event_type

Id = Annotated[str, Field(min_length=1, max_length=64)]


class HisPatient(EventPayload):
    """``ward_id`` / ``bed_id``: where the patient lies (the HIS's codes, or the alliance's
    ``<org>.<code>``); appointments' beds follow them, followup does not need them."""

    org_id: Id
    patient_id: Id | None = None
    national_id: Annotated[str, Field(max_length=32)] | None = None
    mrn: Id | None = None
    name: Annotated[str, Field(max_length=64)] | None = None
    ward_id: Id | None = None
    bed_id: Id | None = None


@event_type("his.discharge")
class HisDischarge(HisPatient):
    visit_id: Id | None = None
    department_id: Id | None = None
    doctor_id: Id | None = None
    discharged_at: AwareDatetime
    diagnosis_codes: list[Annotated[str, Field(max_length=16)]] = Field(
        default_factory=list, max_length=20
    )
    deceased: bool = False


@event_type("his.admitted")
class HisAdmitted(HisPatient):
    visit_id: Id | None = None
    admitted_at: datetime | None = None

"""HL7 v2 ADT intake: read discharges (ADT^A03) and admissions (ADT^A01) as the hospital's
systems really send them.

``parse_discharge`` says one of four things about a raw message:

- :class:`Discharge`: an ADT^A03, with what the followup plan needs;
- :class:`Admission`: an ADT^A01 (a readmission ends the patient's plans); it is also a
  :class:`NonDischarge`: acknowledged (AA), not planned;
- :class:`NonDischarge`: a well-formed message of another trigger (A08, ORU…): to be
  acknowledged (AA), not planned;
- :class:`Malformed`: no usable header, or an A03/A01 without a patient: to be rejected (AR).

python-hl7 (``hl7.parse``, see ``hl7_reader``) does the reading: segments, fields,
repetitions, components, subcomponents and escape sequences, in the message's own encoding
characters. Ours are the decisions: CR, LF or CRLF segment separators (mixed), Z segments
anywhere, empty segments, an EVN-1 that disagrees with MSH-9 (MSH-9 wins; noted), repeated
PID-3 identifiers (kept once), which of them is the national ID, when the patient died,
HL7's explicit null ``""`` (read as None and listed in ``cleared``). Timestamps without an
offset are the hospital's local time (``timezone``); every datetime returned is aware, in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import cast

from services.followup.domain.hl7_reader import (
    HOSPITAL_TIMEZONE,
    DischargeTimeSource,
    EventTimeSource,
    Header,
    Malformed,
    read_message,
    read_timestamp,
)
from services.followup.domain.hl7_segments import (
    Diagnosis,
    Doctor,
    Location,
    PatientIdentifier,
    PersonName,
    event_time,
    is_deceased,
    national_id_of,
    read_attending,
    read_birth_date,
    read_diagnoses,
    read_identifiers,
    read_location,
    read_name,
)

__all__ = [
    "Admission",
    "Diagnosis",
    "Discharge",
    "Doctor",
    "Header",
    "Location",
    "Malformed",
    "NonDischarge",
    "Parsed",
    "PatientIdentifier",
    "PersonName",
    "parse_discharge",
]


@dataclass(frozen=True, slots=True)
class Discharge:
    header: Header
    control_id: str
    sending_facility: str | None
    identifiers: tuple[PatientIdentifier, ...]
    name: PersonName | None
    birth_date: date | None
    sex: str | None
    visit_number: str | None
    location: Location | None
    attending: Doctor | None
    admitted_at: datetime | None
    discharged_at: datetime | None
    discharge_time_source: DischargeTimeSource | None
    diagnoses: tuple[Diagnosis, ...]
    cleared: tuple[str, ...] = ()  # fields sent as HL7's explicit null "" (e.g. "PID-7")
    notes: tuple[str, ...] = ()
    national_id: str | None = None  # the first valid national ID in PID-3, normalized
    disposition: str | None = None  # PV1-36 (HL7 table 0112)
    deceased: bool = False  # PV1-36 is 20/40/41/42 (expired) or PID-30 is Y

    @property
    def department(self) -> str | None:
        return self.location.point_of_care if self.location else None


@dataclass(frozen=True, slots=True)
class NonDischarge:
    """A well-formed message of another trigger: acknowledged, not planned."""

    header: Header
    control_id: str
    message_code: str
    trigger_event: str
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Admission(NonDischarge):
    """An ADT^A01: the patient is (re)admitted. Not planned (so a :class:`NonDischarge`),
    but it says who and when."""

    sending_facility: str | None
    identifiers: tuple[PatientIdentifier, ...]
    national_id: str | None
    admitted_at: datetime | None
    location: Location | None
    admit_time_source: EventTimeSource | None = None
    cleared: tuple[str, ...] = ()

    @property
    def department(self) -> str | None:
        return self.location.point_of_care if self.location else None


Parsed = Discharge | Admission | NonDischarge | Malformed


def parse_discharge(raw: str, timezone: str = HOSPITAL_TIMEZONE) -> Parsed:
    """Read one HL7 v2 message (see the module's docstring for what is accepted)."""
    read = read_message(raw)
    if isinstance(read, Malformed):
        return read
    header, r, notes = read
    if header.control_id is None:
        return Malformed(reason="missing message control id (MSH-10)", header=header)
    if header.message_code is None:
        return Malformed(reason="missing message type (MSH-9)", header=header)

    trigger = header.trigger_event
    evn = r.first("EVN")
    evn_trigger = r.field(evn, 1, "EVN-1") if evn is not None else None
    if trigger is None:
        if evn_trigger is None:
            return Malformed(reason="missing trigger event (MSH-9.2)", header=header)
        trigger = evn_trigger
        notes.append(f"MSH-9 has no trigger event; EVN-1 {evn_trigger} used")
    elif evn_trigger is not None and evn_trigger != trigger:
        notes.append(f"EVN-1 says {evn_trigger} but MSH-9 says {trigger}: MSH-9 wins")

    kind = (header.message_code, trigger)
    if kind not in (("ADT", "A03"), ("ADT", "A01")):
        return NonDischarge(
            header=header,
            control_id=header.control_id,
            message_code=header.message_code,
            trigger_event=trigger,
            notes=tuple(notes),
        )

    pid = r.first("PID")
    if pid is None:
        return Malformed(reason=f"ADT^{trigger} without a PID segment", header=header)
    identifiers = read_identifiers(r, pid, notes)
    if not identifiers:
        reason = f"ADT^{trigger} without a patient identifier (PID-3)"
        return Malformed(reason=reason, header=header)
    national_id = national_id_of(identifiers)
    sending_facility = r.field(r.message[0], 4, "MSH-4")
    pv1 = r.first("PV1")
    if pv1 is None:
        notes.append("no PV1 segment")
    location = read_location(r, pv1) if pv1 is not None else None

    if trigger == "A01":
        admitted, admit_source = event_time(r, pv1, 44, "admission", timezone, notes)
        return Admission(
            header=header,
            control_id=header.control_id,
            message_code=header.message_code,
            trigger_event=trigger,
            sending_facility=sending_facility,
            identifiers=tuple(identifiers),
            national_id=national_id,
            admitted_at=admitted,
            admit_time_source=admit_source,
            location=location,
            cleared=tuple(r.cleared),
            notes=tuple(notes),
        )

    name = read_name(r, pid)
    birth_date = read_birth_date(r, pid, notes)
    sex = r.field(pid, 8, "PID-8")
    visit = attending = admitted = disposition = None
    if pv1 is not None:
        visit = r.field(pv1, 19, "PV1-19")
        attending = read_attending(r, pv1)
        admitted = read_timestamp(r.field(pv1, 44, "PV1-44"), "PV1-44", timezone, notes)
        disposition = r.field(pv1, 36, "PV1-36")
    discharged, source = event_time(r, pv1, 45, "discharge", timezone, notes)
    return Discharge(
        header=header,
        control_id=header.control_id,
        sending_facility=sending_facility,
        identifiers=tuple(identifiers),
        national_id=national_id,
        name=name,
        birth_date=birth_date,
        sex=sex.upper() if sex else None,
        visit_number=visit,
        location=location,
        attending=attending,
        admitted_at=admitted,
        discharged_at=discharged,
        discharge_time_source=cast(DischargeTimeSource | None, source),  # PV1-45 asked
        disposition=disposition,
        deceased=is_deceased(r, pid, disposition),
        diagnoses=tuple(read_diagnoses(r)),
        cleared=tuple(r.cleared),
        notes=tuple(notes),
    )

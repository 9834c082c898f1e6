"""HL7 v2 discharge intake: read an ADT^A03 as the hospital's systems really send it, and ACK it.

``parse_discharge`` says one of three things about a raw message:

- :class:`Discharge`: an ADT^A03, with what the followup plan needs;
- :class:`NonDischarge`: a well-formed message of another trigger (A01, A08, ORU…): to be
  acknowledged (AA), not planned;
- :class:`Malformed`: no usable header, or an A03 without a patient: to be rejected (AR).

It takes real-world mess: CR, LF or CRLF segment separators (mixed), Z segments anywhere,
empty segments, an EVN-1 that disagrees with MSH-9 (MSH-9 wins; noted), repeated PID-3
identifiers, and HL7's explicit null ``""`` (read as None and listed in ``cleared``).
Timestamps without an offset are the hospital's local time (``timezone``); every
datetime returned is aware, in UTC.

Pure: the standard library only (python-hl7 reads the ACKs back in the tests).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from services.followup.domain.hl7_reader import (
    DATE,
    HOSPITAL_TIMEZONE,
    SEGMENT_ID,
    DischargeTimeSource,
    Header,
    Malformed,
    read_header,
    read_timestamp,
    split_segments,
)


@dataclass(frozen=True, slots=True)
class PatientIdentifier:
    """One PID-3 repetition (CX): the id, its type code (CX.5) and assigning authority (CX.4)."""

    id: str
    type_code: str | None
    authority: str | None


@dataclass(frozen=True, slots=True)
class PersonName:
    family: str | None
    given: str | None
    middle: str | None = None


@dataclass(frozen=True, slots=True)
class Doctor:
    """PV1-7 (XCN): id, family and given name."""

    id: str | None
    family: str | None
    given: str | None


@dataclass(frozen=True, slots=True)
class Location:
    """PV1-3 (PL): the point of care is the department (ward/clinic)."""

    point_of_care: str | None
    room: str | None
    bed: str | None
    facility: str | None


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """DG1-3 (CE/CWE): code, text and coding system."""

    code: str
    text: str | None
    system: str | None


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


Parsed = Discharge | NonDischarge | Malformed


def parse_discharge(raw: str, timezone: str = HOSPITAL_TIMEZONE) -> Parsed:
    """Read one HL7 v2 message (see the module's docstring for what is accepted)."""
    segments = split_segments(raw)
    if not segments:
        return Malformed(reason="empty message")
    read = read_header(segments[0])
    if isinstance(read, Malformed):
        return read
    header, r = read
    if header.control_id is None:
        return Malformed(reason="missing message control id (MSH-10)", header=header)
    if header.message_code is None:
        return Malformed(reason="missing message type (MSH-9)", header=header)

    notes: list[str] = []
    by_id: dict[str, list[list[str]]] = {}
    for text in segments[1:]:
        fields = text.split(r.field_separator)
        if not SEGMENT_ID.match(fields[0]):
            notes.append(f"skipped a line that is not a segment: {text[:20]!r}")
            continue
        by_id.setdefault(fields[0], []).append(fields)

    trigger = header.trigger_event
    evn = by_id.get("EVN", [None])[0]
    evn_trigger = r.field(evn, 1, "EVN-1") if evn else None
    if trigger is None:
        if evn_trigger is None:
            return Malformed(reason="missing trigger event (MSH-9.2)", header=header)
        trigger = evn_trigger
        notes.append(f"MSH-9 has no trigger event; EVN-1 {evn_trigger} used")
    elif evn_trigger is not None and evn_trigger != trigger:
        notes.append(f"EVN-1 says {evn_trigger} but MSH-9 says {trigger}: MSH-9 wins")

    if (header.message_code, trigger) != ("ADT", "A03"):
        return NonDischarge(
            header=header,
            control_id=header.control_id,
            message_code=header.message_code,
            trigger_event=trigger,
            notes=tuple(notes),
        )

    pid = by_id.get("PID", [None])[0]
    if pid is None:
        return Malformed(reason="ADT^A03 without a PID segment", header=header)
    identifiers: list[PatientIdentifier] = []
    for rep in r.reps(pid, 3):
        ident = r.value(rep, "PID-3")
        if ident is None:
            continue
        authority = r.value(rep, "PID-3", 4, 1) or r.value(rep, "PID-3", 4, 2)
        found = PatientIdentifier(ident, r.value(rep, "PID-3", 5), authority)
        if found in identifiers:
            notes.append(f"PID-3 repeats identifier {ident}; kept once")
            continue
        identifiers.append(found)
    if not identifiers:
        return Malformed(reason="ADT^A03 without a patient identifier (PID-3)", header=header)

    name_reps = r.reps(pid, 5)
    name = None
    if name_reps:
        family, given = r.value(name_reps[0], "PID-5", 1), r.value(name_reps[0], "PID-5", 2)
        middle = r.value(name_reps[0], "PID-5", 3)
        if family or given:
            name = PersonName(family, given, middle)

    birth_date = None
    birth_raw = r.field(pid, 7, "PID-7")
    if birth_raw is not None:
        match = DATE.match(birth_raw)
        try:
            birth_date = date(*(int(g) for g in match.groups())) if match else None
        except ValueError:
            birth_date = None
        if birth_date is None:
            notes.append(f"PID-7 is not a date ({birth_raw!r}); ignored")
    sex = r.field(pid, 8, "PID-8")

    pv1 = by_id.get("PV1", [None])[0]
    visit = location = attending = admitted = discharged = None
    source: DischargeTimeSource | None = None
    if pv1 is None:
        notes.append("no PV1 segment")
    else:
        visit = r.field(pv1, 19, "PV1-19")
        loc_reps = r.reps(pv1, 3)
        if loc_reps:
            rep = loc_reps[0]
            parts = (r.value(rep, "PV1-3", c) for c in (1, 2, 3))
            point, room, bed = parts
            facility = r.value(rep, "PV1-3", 4, 1)
            if point or room or bed or facility:
                location = Location(point, room, bed, facility)
        doc_reps = r.reps(pv1, 7)
        if doc_reps:
            rep = doc_reps[0]
            doc = Doctor(*(r.value(rep, "PV1-7", c) for c in (1, 2, 3)))
            attending = doc if (doc.id or doc.family or doc.given) else None
        admitted = read_timestamp(r.field(pv1, 44, "PV1-44"), "PV1-44", timezone, notes)
        discharged = read_timestamp(r.field(pv1, 45, "PV1-45"), "PV1-45", timezone, notes)
        if discharged is not None:
            source = "PV1-45"
    if discharged is None:
        # the event's own time (EVN-6) before when it was recorded (EVN-2), then the header's
        msh = segments[0].split(r.field_separator)
        fallbacks: list[tuple[DischargeTimeSource, list[str] | None, int]] = [
            ("EVN-6", evn, 6),
            ("EVN-2", evn, 2),
            ("MSH-7", msh, 7),
        ]
        for ref, segment, number in fallbacks:
            if segment is None:
                continue
            discharged = read_timestamp(r.field(segment, number, ref), ref, timezone, notes)
            if discharged is not None:
                source = ref
                notes.append(f"discharge time from {ref} (PV1-45 empty or unusable)")
                break
        else:
            notes.append("no discharge time anywhere (PV1-45, EVN-6, EVN-2, MSH-7)")

    diagnoses: list[Diagnosis] = []
    for dg1 in by_id.get("DG1", []):
        for rep in r.reps(dg1, 3)[:1]:
            code = r.value(rep, "DG1-3", 1)
            if code is not None:
                diagnoses.append(
                    Diagnosis(code, r.value(rep, "DG1-3", 2), r.value(rep, "DG1-3", 3))
                )

    return Discharge(
        header=header,
        control_id=header.control_id,
        sending_facility=r.value(header.sending_facility or "", "MSH-4"),
        identifiers=tuple(identifiers),
        name=name,
        birth_date=birth_date,
        sex=sex.upper() if sex else None,
        visit_number=visit,
        location=location,
        attending=attending,
        admitted_at=admitted,
        discharged_at=discharged,
        discharge_time_source=source,
        diagnoses=tuple(diagnoses),
        cleared=tuple(r.cleared),
        notes=tuple(notes),
    )


# --- acknowledging -----------------------------------------------------------------------

"""What ADT messages say about the patient and the visit, read from PID, PV1, EVN and DG1.

The fields come from python-hl7's containers through :class:`~.hl7_reader.Reader`; what is
ours is the choice of fields and what they mean: repeated identifiers kept once, the national
ID picked among PID-3's repetitions, death from PV1-36 or PID-30, event times falling back
from the visit (PV1-44/45) to the event (EVN-6, EVN-2) to the header (MSH-7).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from services.followup.domain.hl7_reader import DATE, EventTimeSource, Reader, read_timestamp
from shared.privacy import is_valid_national_id, normalize_national_id

# PID-3 type codes (CX.5) under which a Chinese resident ID is sent
NATIONAL_ID_TYPES = ("NNCHN", "ID")
# HL7 table 0112 (discharge disposition): expired; expired at home / in a facility / place unknown
DEATH_DISPOSITIONS = frozenset({"20", "40", "41", "42"})


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


def read_identifiers(r: Reader, pid: Any, notes: list[str]) -> list[PatientIdentifier]:
    """Every PID-3 repetition with an id, each once."""
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
    return identifiers


def national_id_of(identifiers: list[PatientIdentifier]) -> str | None:
    """The first valid Chinese national ID among PID-3's repetitions (normalized), those typed
    NNCHN or ID first."""
    typed = [i for i in identifiers if (i.type_code or "").upper() in NATIONAL_ID_TYPES]
    others = [i for i in identifiers if i not in typed]
    for ident in typed + others:
        if is_valid_national_id(ident.id):
            return normalize_national_id(ident.id)
    return None


def read_name(r: Reader, pid: Any) -> PersonName | None:
    reps = r.reps(pid, 5)
    if not reps:
        return None
    family, given = r.value(reps[0], "PID-5", 1), r.value(reps[0], "PID-5", 2)
    middle = r.value(reps[0], "PID-5", 3)
    return PersonName(family, given, middle) if family or given else None


def read_birth_date(r: Reader, pid: Any, notes: list[str]) -> date | None:
    raw = r.field(pid, 7, "PID-7")
    if raw is None:
        return None
    match = DATE.match(raw)
    try:
        born = date(*(int(g) for g in match.groups())) if match else None
    except ValueError:
        born = None
    if born is None:
        notes.append(f"PID-7 is not a date ({raw!r}); ignored")
    return born


def read_location(r: Reader, pv1: Any) -> Location | None:
    reps = r.reps(pv1, 3)
    if not reps:
        return None
    point, room, bed = (r.value(reps[0], "PV1-3", c) for c in (1, 2, 3))
    facility = r.value(reps[0], "PV1-3", 4, 1)
    return Location(point, room, bed, facility) if point or room or bed or facility else None


def read_attending(r: Reader, pv1: Any) -> Doctor | None:
    reps = r.reps(pv1, 7)
    if not reps:
        return None
    doc = Doctor(*(r.value(reps[0], "PV1-7", c) for c in (1, 2, 3)))
    return doc if doc.id or doc.family or doc.given else None


def is_deceased(r: Reader, pid: Any, disposition: str | None) -> bool:
    """PV1-36 says the patient expired (table 0112), or PID-30 (death indicator) is Y."""
    indicator = r.field(pid, 30, "PID-30")
    return disposition in DEATH_DISPOSITIONS or (indicator or "").upper() == "Y"


def read_diagnoses(r: Reader) -> list[Diagnosis]:
    """DG1-3 of each DG1 (its first repetition)."""
    diagnoses: list[Diagnosis] = []
    for dg1 in r.segments("DG1"):
        for rep in r.reps(dg1, 3)[:1]:
            code = r.value(rep, "DG1-3", 1)
            if code is not None:
                diagnoses.append(
                    Diagnosis(code, r.value(rep, "DG1-3", 2), r.value(rep, "DG1-3", 3))
                )
    return diagnoses


def event_time(
    r: Reader, pv1: Any, pv1_field: int, what: str, tz: str, notes: list[str]
) -> tuple[datetime | None, EventTimeSource | None]:
    """PV1-``pv1_field`` (44 admit, 45 discharge), else the event's own time (EVN-6), when
    it was recorded (EVN-2), the header's (MSH-7): the time and where it came from."""
    ref: EventTimeSource = "PV1-44" if pv1_field == 44 else "PV1-45"
    if pv1 is not None:
        found = read_timestamp(r.field(pv1, pv1_field, ref), ref, tz, notes)
        if found is not None:
            return found, ref
    evn, msh = r.first("EVN"), r.message[0]
    fallbacks: list[tuple[EventTimeSource, Any, int]] = [
        ("EVN-6", evn, 6),
        ("EVN-2", evn, 2),
        ("MSH-7", msh, 7),
    ]
    for source, segment, number in fallbacks:
        if segment is None:
            continue
        found = read_timestamp(r.field(segment, number, source), source, tz, notes)
        if found is not None:
            notes.append(f"{what} time from {source} ({ref} empty or unusable)")
            return found, source
    notes.append(f"no {what} time anywhere ({ref}, EVN-6, EVN-2, MSH-7)")
    return None, None

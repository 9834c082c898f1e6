"""Reading HL7 v2 as hospitals send it: segments split on CR, LF or CRLF, the header and its
encoding characters, fields with HL7's explicit null, and timestamps (pure, standard library).
``hl7_discharge`` reads an ADT^A03 with it; ``hl7_ack`` answers."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import timezone as fixed_offset
from typing import Literal
from zoneinfo import ZoneInfo

HOSPITAL_TIMEZONE = "Asia/Shanghai"
PLACEHOLDER_CONTROL_ID = "UNKNOWN"
DEFAULT_ENCODING = "^~\\&"
AckCode = Literal["AA", "AE", "AR"]
DischargeTimeSource = Literal["PV1-45", "EVN-6", "EVN-2", "MSH-7"]

_EXPLICIT_NULL = '""'
SEGMENT_ID = re.compile(r"^[A-Z][A-Z0-9]{2}$")
_TS = re.compile(
    r"^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(?:(\d{2})(?:\.(\d{1,4}))?)?(?:([+-])(\d{2})(\d{2}))?$"
)
DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})")


# --- what a message says ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Header:
    """MSH as read (raw, still escaped in the message's own encoding), for routing and ACKs."""

    field_separator: str
    encoding_characters: str
    sending_application: str | None = None
    sending_facility: str | None = None
    receiving_application: str | None = None
    receiving_facility: str | None = None
    message_code: str | None = None
    trigger_event: str | None = None
    control_id: str | None = None
    processing_id: str | None = None
    version: str | None = None


@dataclass(frozen=True, slots=True)
class Malformed:
    """Unusable: ``header`` is what could be read of MSH (None when not even that)."""

    reason: str
    header: Header | None = None

    @property
    def control_id(self) -> str | None:
        return self.header.control_id if self.header else None


# --- reading -----------------------------------------------------------------------------


@dataclass(slots=True)
class Reader:
    """Field access over one message's segments, in its own encoding characters."""

    field_separator: str
    component: str
    repetition: str
    escape: str
    subcomponent: str
    cleared: list[str] = field(default_factory=list)

    def raw(self, segment: list[str], number: int) -> str:
        """Field ``number`` of a segment as sent (MSH counts MSH-1 as the separator)."""
        index = number - 1 if segment[0] == "MSH" else number
        return segment[index] if 0 < index < len(segment) else ""

    def reps(self, segment: list[str], number: int) -> list[str]:
        raw = self.raw(segment, number)
        return raw.split(self.repetition) if raw else []

    def value(self, raw: str, ref: str, component: int = 1, sub: int = 1) -> str | None:
        """One (sub)component of a raw field or repetition: unescaped, None when empty or
        ``""`` (the explicit null: recorded in ``cleared`` under ``ref``)."""
        if raw == _EXPLICIT_NULL:
            if ref not in self.cleared:
                self.cleared.append(ref)
            return None
        components = raw.split(self.component)
        if component > len(components):
            return None
        subs = components[component - 1].split(self.subcomponent)
        if sub > len(subs):
            return None
        text = subs[sub - 1].strip()
        if text == _EXPLICIT_NULL:
            if ref not in self.cleared:
                self.cleared.append(ref)
            return None
        return self.unescape(text) or None

    def field(self, segment: list[str], number: int, ref: str, component: int = 1) -> str | None:
        reps = self.reps(segment, number)
        return self.value(reps[0], ref, component) if reps else None

    def unescape(self, text: str) -> str:
        if self.escape not in text:
            return text
        table = {
            "F": self.field_separator,
            "S": self.component,
            "T": self.subcomponent,
            "R": self.repetition,
            "E": self.escape,
        }
        parts = text.split(self.escape)
        out = [parts[0]]
        # escapes come in pairs: odd-indexed parts are the sequences
        for i in range(1, len(parts)):
            if i % 2 == 1 and i + 1 < len(parts):
                out.append(table.get(parts[i], self.escape + parts[i] + self.escape))
            elif i % 2 == 0:
                out.append(parts[i])
            else:  # a dangling escape character: keep it as text
                out.append(self.escape + parts[i])
        return "".join(out)


def split_segments(raw: str) -> list[str]:
    text = raw.replace("\r\n", "\r").replace("\n", "\r").lstrip("\ufeff\x0b \t")
    return [s.rstrip() for s in text.split("\r") if s.strip()]


def read_header(first: str) -> tuple[Header, Reader] | Malformed:
    if not first.startswith("MSH"):
        return Malformed(reason=f"first segment is not MSH: {first[:3]!r}")
    if len(first) < 8:
        return Malformed(reason="MSH too short to hold its encoding characters")
    separator = first[3]
    if separator.isalnum() or separator.isspace():
        return Malformed(reason=f"bad field separator (MSH-1) {separator!r}")
    end = first.find(separator, 4)
    encoding = first[4:] if end < 0 else first[4:end]
    if (
        len(encoding) not in (4, 5)
        or len(set(encoding)) != len(encoding)
        or separator in encoding
        or any(c.isalnum() or c.isspace() for c in encoding)
    ):
        return Malformed(reason=f"bad encoding characters (MSH-2) {encoding!r}")
    reader = Reader(separator, encoding[0], encoding[1], encoding[2], encoding[3])
    # MSH-2 as a field: MSH-n is msh[n-1]
    rest = first[end + 1 :].split(separator) if end >= 0 else []
    msh = ["MSH", encoding, *rest]
    header = Header(
        field_separator=separator,
        encoding_characters=encoding,
        sending_application=reader.raw(msh, 3) or None,
        sending_facility=reader.raw(msh, 4) or None,
        receiving_application=reader.raw(msh, 5) or None,
        receiving_facility=reader.raw(msh, 6) or None,
        message_code=reader.field(msh, 9, "MSH-9", 1),
        trigger_event=reader.field(msh, 9, "MSH-9", 2),
        control_id=reader.field(msh, 10, "MSH-10"),
        processing_id=reader.field(msh, 11, "MSH-11"),
        version=reader.field(msh, 12, "MSH-12"),
    )
    return header, reader


def parse_timestamp(value: str | None, tz: str = HOSPITAL_TIMEZONE) -> datetime | None:
    """HL7 TS ``YYYYMMDDHHMM[SS[.S]][+/-ZZZZ]`` as an aware UTC datetime; no offset means the
    hospital's local time. Raises ValueError on anything else (None for None)."""
    if value is None:
        return None
    match = _TS.match(value.strip())
    if match is None:
        raise ValueError(f"not an HL7 timestamp: {value!r}")
    year, month, day, hour, minute, second, fraction, sign, off_h, off_m = match.groups()
    micro = int((fraction or "0").ljust(6, "0")[:6])
    if sign:
        offset = timedelta(hours=int(off_h), minutes=int(off_m))
        zone: fixed_offset | ZoneInfo = fixed_offset(-offset if sign == "-" else offset)
    else:
        zone = ZoneInfo(tz)
    local = datetime(
        int(year), int(month), int(day), int(hour), int(minute), int(second or 0), micro, zone
    )
    return local.astimezone(UTC)


def read_timestamp(value: str | None, ref: str, tz: str, notes: list[str]) -> datetime | None:
    try:
        return parse_timestamp(value, tz)
    except ValueError:
        notes.append(f"{ref} is not a usable timestamp ({value!r}); ignored")
        return None

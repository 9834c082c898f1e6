"""Reading HL7 v2 as hospitals send it, with python-hl7 (the ``hl7`` package) doing the reading.

python-hl7 (``hl7.parse``) splits a message into its ``Message``/``Segment``/``Field``/
``Repetition``/``Component`` containers in the message's own encoding characters (MSH-1 and
MSH-2), and ``Message.unescape`` reads the escape sequences (``\\F\\ \\S\\ \\T\\ \\R\\ \\E\\``, hex,
formatting). Our own code here does only what python-hl7 does not:

- segment separators as they really come (CR, LF, CRLF, mixed: all made CR before parsing),
  empty segments and lines that are not segments dropped (the latter noted);
- checking MSH-1/MSH-2 (python-hl7 takes anything, and defaults missing encoding characters);
- HL7's explicit null ``""`` (read as None and listed in ``cleared``);
- escape sequences python-hl7 would drop (and log, with the field's text): kept as sent;
- timestamps, read in the hospital's time zone when they carry no offset.

``hl7_discharge`` reads ADT messages with it; ``hl7_ack`` answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import timezone as fixed_offset
from typing import Any, Literal
from zoneinfo import ZoneInfo

import hl7  # type: ignore[import-untyped]

HOSPITAL_TIMEZONE = "Asia/Shanghai"
PLACEHOLDER_CONTROL_ID = "UNKNOWN"
DEFAULT_ENCODING = "^~\\&"
EXPLICIT_NULL = hl7.NULL  # '""'
AckCode = Literal["AA", "AE", "AR"]
EventTimeSource = Literal["PV1-44", "PV1-45", "EVN-6", "EVN-2", "MSH-7"]
DischargeTimeSource = Literal["PV1-45", "EVN-6", "EVN-2", "MSH-7"]

SEGMENT_ID = re.compile(r"^[A-Z][A-Z0-9]{2}$")
_TS = re.compile(
    r"^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(?:(\d{2})(?:\.(\d{1,4}))?)?(?:([+-])(\d{2})(\d{2}))?$"
)
DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})")

# formatting sequences hl7.util.unescape reads (2.10.6), alone or with a count (".sp2")
_FORMATTING = frozenset({".br", ".sp", ".fi", ".nf", ".in", ".ti", ".sk", ".ce"})
_HEX_SEQUENCE = re.compile(r"X(?:[0-9A-Fa-f]{2})+")


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


def _leaf(rep: Any, component: int, sub: int) -> str | None:
    """One (sub)component of a python-hl7 repetition, as sent (still escaped).

    python-hl7 only nests as deep as the text does: a repetition without a component
    separator is a plain string, a component without a subcomponent separator holds one."""
    if isinstance(rep, str):
        return rep if component == 1 and sub == 1 else None
    if component > len(rep):
        return None
    part = rep[component - 1]
    if isinstance(part, str):
        return part if sub == 1 else None
    return str(part[sub - 1]) if sub <= len(part) else None


@dataclass(slots=True)
class Reader:
    """Field access over one python-hl7 ``Message`` (MSH-n and XXX-n are both ``segment[n]``:
    python-hl7 keeps MSH-1, the field separator, as a field of its own)."""

    message: Any  # hl7.Message (python-hl7 has no type hints)
    cleared: list[str] = field(default_factory=list)

    def segments(self, segment_id: str) -> list[Any]:
        return [s for s in self.message if str(s[0]) == segment_id]

    def first(self, segment_id: str) -> Any | None:
        found = self.segments(segment_id)
        return found[0] if found else None

    def reps(self, segment: Any, number: int) -> list[Any]:
        """The repetitions of field ``number`` ([] when absent or empty)."""
        if number >= len(segment):
            return []
        found = segment[number]
        if isinstance(found, str):  # a segment sent as its id alone
            return []
        reps = list(found)
        return [] if reps == [""] else reps

    def raw(self, segment: Any, number: int) -> str:
        """Field ``number`` as sent, re-joined by python-hl7 in the message's encoding."""
        return str(segment[number]) if number < len(segment) else ""

    def value(self, rep: Any, ref: str, component: int = 1, sub: int = 1) -> str | None:
        """One (sub)component of a repetition: unescaped, None when empty or ``""`` (the
        explicit null: recorded in ``cleared`` under ``ref``)."""
        text = _leaf(rep, component, sub)
        if text is None:
            return None
        text = text.strip()
        if text == EXPLICIT_NULL:
            if ref not in self.cleared:
                self.cleared.append(ref)
            return None
        return self.unescape(text).strip() or None

    def field(self, segment: Any, number: int, ref: str, component: int = 1) -> str | None:
        reps = self.reps(segment, number)
        return self.value(reps[0], ref, component) if reps else None

    def unescape(self, text: str) -> str:
        """Each escape sequence read by python-hl7 (``Message.unescape``), except those it
        would drop (logging the field's text): unknown or broken sequences, an empty one and
        a dangling escape character are kept as sent; highlighting (H, N) is dropped."""
        esc = str(self.message.esc)
        if esc not in text:
            return text
        parts = text.split(esc)  # escapes pair from the left: odd parts are the sequences
        out: list[str] = []
        for i, part in enumerate(parts):
            if i % 2 == 0:
                out.append(part)
            elif i == len(parts) - 1:  # an escape character with no closing one
                out.append(esc + part)
            elif part in ("H", "N"):
                continue
            elif _known_sequence(part):
                out.append(str(self.message.unescape(esc + part + esc)))
            else:
                out.append(esc + part + esc)
        return "".join(out)


def _known_sequence(sequence: str) -> bool:
    """A sequence hl7.util.unescape reads (anything else it drops, or fails on)."""
    if sequence in ("F", "S", "T", "R", "E") or _HEX_SEQUENCE.fullmatch(sequence):
        return True
    return sequence[:3] in _FORMATTING and (len(sequence) == 3 or sequence[3:].isdigit())


def split_segments(raw: str) -> list[str]:
    """CR, LF, CRLF (mixed) all end a segment; empty segments are dropped."""
    text = raw.replace("\r\n", "\r").replace("\n", "\r").lstrip("\ufeff\x0b \t")
    return [s.rstrip() for s in text.split("\r") if s.strip()]


def check_msh(first: str) -> tuple[str, str] | Malformed:
    """(MSH-1, MSH-2) of the first segment, or why they are unusable."""
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
    return separator, encoding


def read_message(raw: str) -> tuple[Header, Reader, list[str]] | Malformed:
    """Parse ``raw`` with python-hl7: (MSH as read, a reader, notes on what was dropped)."""
    segments = split_segments(raw)
    if not segments:
        return Malformed(reason="empty message")
    checked = check_msh(segments[0])
    if isinstance(checked, Malformed):
        return checked
    separator, encoding = checked
    first = segments[0]
    if first.find(separator, 4) < 0:  # python-hl7 needs MSH-2 to end with a separator
        first += separator
    kept, notes = [first], []
    for text in segments[1:]:
        if SEGMENT_ID.match(text.split(separator, 1)[0]):
            kept.append(text)
        else:
            notes.append(f"skipped a line that is not a segment: {text[:20]!r}")
    try:
        message = hl7.parse("\r".join(kept))
    except (hl7.HL7Exception, ValueError, IndexError) as exc:  # pragma: no cover - checked above
        return Malformed(reason=f"python-hl7 could not parse the message: {exc}")
    reader = Reader(message)
    msh = message[0]
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
    return header, reader, notes


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

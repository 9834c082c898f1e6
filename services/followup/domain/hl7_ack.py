r"""HL7 v2 acknowledgements: AA, AE or AR with the reason in MSA/ERR, for any message,
even one that could not be read.

The original is read by python-hl7 (through ``hl7_discharge``/``hl7_reader``); the ACK is
written here, in the sender's own encoding characters: python-hl7's ``Message.create_ack``
needs a parsed message (a garbage original has none), stamps UTC without an offset, writes
no MSA-3/ERR, and its escaping turns non-ASCII text (a Chinese reason) into ``\X..\``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from services.followup.domain.hl7_discharge import Parsed, parse_discharge
from services.followup.domain.hl7_reader import (
    DEFAULT_ENCODING,
    HOSPITAL_TIMEZONE,
    PLACEHOLDER_CONTROL_ID,
    AckCode,
    Header,
)

__all__ = ["AckCode", "ack"]


def _escape(text: str, separator: str, encoding: str) -> str:
    component, repetition, escape, subcomponent = (encoding[i] for i in range(4))
    out = text.replace(escape, f"{escape}E{escape}")
    for char, code in ((separator, "F"), (component, "S"), (repetition, "R"), (subcomponent, "T")):
        out = out.replace(char, f"{escape}{code}{escape}")
    return " ".join(out.split())  # no CR/LF (they would end the segment)


def ack(
    original: str | Parsed,
    code: AckCode,
    reason: str | None = None,
    *,
    control_id: str | None = None,
    now: datetime | None = None,
    timezone: str = HOSPITAL_TIMEZONE,
) -> str:
    """An HL7 ACK (segments joined by CR, no MLLP framing) for ``original`` (raw or parsed).

    MSH swaps sending and receiving application/facility; MSA-1 is ``code``, MSA-2 the
    original's control id (``UNKNOWN`` when it cannot be read); for AE/AR, MSA-3 and an ERR
    segment (ERR-3 207, ERR-4 E, ERR-8 the reason) say why. A malformed original is
    acknowledged with what could be read of it; with unusable encoding characters, the
    standard ones."""
    parsed = parse_discharge(original, timezone) if isinstance(original, str) else original
    header = parsed.header
    if header is None:
        header = Header(field_separator="|", encoding_characters=DEFAULT_ENCODING)
    sep, enc = header.field_separator, header.encoding_characters
    stamp = (now or datetime.now(UTC)).astimezone(ZoneInfo(timezone)).strftime("%Y%m%d%H%M%S%z")
    trigger = header.trigger_event or ""
    msh = [
        "MSH",
        enc,
        header.receiving_application or "CARELOOP",
        header.receiving_facility or "",
        header.sending_application or "",
        header.sending_facility or "",
        stamp,
        "",
        enc[0].join(["ACK", trigger, "ACK"]) if trigger else "ACK",
        _escape(control_id or uuid.uuid4().hex[:20], sep, enc),
        _escape(header.processing_id or "P", sep, enc),
        _escape(header.version or "2.5", sep, enc),
    ]
    original_id = _escape(header.control_id or PLACEHOLDER_CONTROL_ID, sep, enc)
    text = _escape(reason, sep, enc) if reason else ""
    msa = ["MSA", code, original_id]
    segments = [sep.join(msh)]
    if code != "AA" or text:
        msa.append(text)
    segments.append(sep.join(msa))
    if code != "AA":
        c = enc[0]
        err = ["ERR", "", "", c.join(["207", "Application internal error", "HL70357"]), "E"]
        err += ["", "", "", text]
        segments.append(sep.join(err))
    return "\r".join(segments) + "\r"

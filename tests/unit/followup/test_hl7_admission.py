"""ADT^A01 (admit): who was admitted, where and when; acknowledged, not planned."""

from __future__ import annotations

from datetime import UTC, datetime

import hl7  # type: ignore[import-untyped]
import pytest

from services.followup.domain.hl7_ack import ack
from services.followup.domain.hl7_discharge import (
    Admission,
    Discharge,
    Malformed,
    NonDischarge,
    PatientIdentifier,
    parse_discharge,
)

pytestmark = pytest.mark.unit

NID = "11010519491231002X"
MSH = "MSH|^~\\&|HIS|BJH^1.2.3^ISO|CARELOOP|CL|20260301083500||ADT^A01^ADT_A01|ADM001|P|2.5"
EVN = "EVN|A01|20260301083200||||20260301083000"
PID = f"PID|1||123^^^BJH^MR~{NID.lower()}^^^^NNCHN||Wang^Li||19491231|M"
PV1 = "PV1|1|I|CARD^301^2^BJH" + "|" * 41 + "20260301082000"


def admit(*segments: str, sep: str = "\r") -> str:
    return sep.join(segments or (MSH, EVN, PID, PV1)) + sep


def admission(raw: str) -> Admission:
    parsed = parse_discharge(raw)
    assert isinstance(parsed, Admission), parsed
    return parsed


def test_an_a01_gives_who_where_and_when() -> None:
    a = admission(admit())
    assert (a.control_id, a.message_code, a.trigger_event) == ("ADM001", "ADT", "A01")
    assert a.sending_facility == "BJH"
    assert a.identifiers == (
        PatientIdentifier("123", "MR", "BJH"),
        PatientIdentifier(NID.lower(), "NNCHN", None),
    )
    assert a.national_id == NID
    assert a.department == "CARD"
    assert a.location is not None
    assert (a.location.room, a.location.bed) == ("301", "2")
    assert a.admitted_at == datetime(2026, 3, 1, 0, 20, tzinfo=UTC)  # PV1-44, Beijing time
    assert a.admit_time_source == "PV1-44"
    assert a.notes == ()


def test_an_admission_is_acknowledged_not_planned() -> None:
    parsed = parse_discharge(admit())
    assert isinstance(parsed, NonDischarge)  # what is not planned
    assert not isinstance(parsed, Discharge)
    text = ack(parsed, "AA", control_id="ACK1")
    msa = hl7.parse(text).segment("MSA")
    assert (str(msa(1)), str(msa(2))) == ("AA", "ADM001")
    assert "|ACK^A01^ACK|" in text


@pytest.mark.parametrize(
    ("evn", "source", "expected"),
    [
        (EVN, "EVN-6", datetime(2026, 3, 1, 0, 30, tzinfo=UTC)),
        ("EVN|A01|20260301083200", "EVN-2", datetime(2026, 3, 1, 0, 32, tzinfo=UTC)),
        ("EVN|A01", "MSH-7", datetime(2026, 3, 1, 0, 35, tzinfo=UTC)),
    ],
)
def test_admission_time_falls_back(evn: str, source: str, expected: datetime) -> None:
    a = admission(admit(MSH, evn, PID, "PV1|1|I|CARD" + "|" * 41 + "soon"))
    assert (a.admit_time_source, a.admitted_at) == (source, expected)
    assert any("PV1-44 is not a usable timestamp" in n for n in a.notes)
    assert any(f"admission time from {source}" in n for n in a.notes)


def test_no_pv1_no_location_time_from_evn() -> None:
    a = admission(admit(MSH, EVN, PID))
    assert a.location is None
    assert a.admit_time_source == "EVN-6"
    assert "no PV1 segment" in a.notes


def test_an_a01_without_a_valid_national_id() -> None:
    a = admission(admit(MSH, EVN, "PID|1||123^^^BJH^MR~110105194912310021^^^^NNCHN", PV1))
    assert a.national_id is None
    assert [i.id for i in a.identifiers] == ["123", "110105194912310021"]


def test_an_a01_in_lf_with_a_z_segment_and_custom_separators() -> None:
    table = str.maketrans("|^~\\&", "#$*!%")
    segments = (MSH, EVN, PID, "ZPV#local$stuff", PV1)
    a = admission(admit(*(s.translate(table) for s in segments), sep="\n") + "\n\n")
    assert a.header.encoding_characters == "$*!%"
    assert a.national_id == NID
    assert a.department == "CARD"


def test_evn1_disagreeing_msh9_still_wins() -> None:
    a = admission(admit(MSH, "EVN|A03|20260301083200", PID, PV1))
    assert any("EVN-1 says A03" in n and "MSH-9 wins" in n for n in a.notes)


def test_other_triggers_stay_non_discharges() -> None:
    for trigger in ("A04", "A08", "A02"):
        parsed = parse_discharge(admit(MSH.replace("A01^ADT_A01", trigger), EVN, PID, PV1))
        assert type(parsed) is NonDischarge
        assert parsed.trigger_event == trigger


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (admit(MSH, EVN, PV1), "ADT^A01 without a PID segment"),
        (admit(MSH, EVN, 'PID|1||""', PV1), "ADT^A01 without a patient identifier (PID-3)"),
        (admit(MSH.replace("ADM001", ""), EVN, PID, PV1), "MSH-10"),
    ],
)
def test_malformed_admissions(raw: str, reason: str) -> None:
    parsed = parse_discharge(raw)
    assert isinstance(parsed, Malformed)
    assert reason in parsed.reason
    msa = hl7.parse(ack(parsed, "AR", parsed.reason)).segment("MSA")
    assert str(msa(1)) == "AR"

"""The HL7 v2 discharge intake: ADT^A03 as hospitals really send it, and the ACKs."""

from __future__ import annotations

from datetime import UTC, date, datetime

import hl7  # type: ignore[import-untyped]
import pytest

from services.followup.domain.hl7_ack import ack
from services.followup.domain.hl7_discharge import (
    Discharge,
    Malformed,
    NonDischarge,
    PatientIdentifier,
    parse_discharge,
)
from services.followup.domain.hl7_reader import parse_timestamp

pytestmark = pytest.mark.unit


def segment(name: str, fields: dict[int, str]) -> str:
    """A segment with ``fields`` at their HL7 positions (name-n)."""
    values = [""] * (max(fields) if fields else 0)
    for number, value in fields.items():
        values[number - 1] = value
    return "|".join([name, *values])


MSH = "MSH|^~\\&|HIS|BJH^1.2.3^ISO|CARELOOP|CL|20260310101500||ADT^A03^ADT_A03|MSG001|P|2.5"
EVN = segment("EVN", {1: "A03", 2: "20260310101400", 6: "20260310100500"})
PID = segment(
    "PID",
    {
        1: "1",
        3: "123^^^BJH^MR~G456^^^&2.16.840&ISO^NI~123^^^BJH^MR",
        5: "Wang^Li^Ming",
        7: "19800102",
        8: "f",
    },
)
PV1 = segment(
    "PV1",
    {
        2: "I",
        3: "CARD^301^2^BJH",
        7: "D01^Zhang^Wei",
        19: "V999",
        44: "20260301083000",
        45: "20260310100000+0800",
    },
)
DG1 = segment("DG1", {1: "1", 3: "I21.9^Acute myocardial infarction^I10"})


def message(*segments: str, sep: str = "\r") -> str:
    return sep.join(segments) + sep


def a03(**replace: str) -> str:
    parts = {"MSH": MSH, "EVN": EVN, "PID": PID, "PV1": PV1, "DG1": DG1} | replace
    return message(*(s for s in parts.values() if s))


def discharge(raw: str) -> Discharge:
    parsed = parse_discharge(raw)
    assert isinstance(parsed, Discharge), parsed
    return parsed


def test_a_clean_a03_gives_every_field() -> None:
    d = discharge(a03())
    assert d.control_id == "MSG001"
    assert d.sending_facility == "BJH"
    assert d.identifiers == (
        PatientIdentifier("123", "MR", "BJH"),
        PatientIdentifier("G456", "NI", "2.16.840"),
    )
    assert d.name is not None
    assert (d.name.family, d.name.given, d.name.middle) == ("Wang", "Li", "Ming")
    assert d.birth_date == date(1980, 1, 2)
    assert d.sex == "F"
    assert d.visit_number == "V999"
    assert d.department == "CARD"
    assert d.location is not None
    assert (d.location.room, d.location.bed, d.location.facility) == ("301", "2", "BJH")
    assert d.attending is not None
    assert (d.attending.id, d.attending.family, d.attending.given) == ("D01", "Zhang", "Wei")
    # no offset: Beijing time (UTC+8)
    assert d.admitted_at == datetime(2026, 3, 1, 0, 30, tzinfo=UTC)
    assert d.discharged_at == datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
    assert d.discharge_time_source == "PV1-45"
    assert [(g.code, g.text, g.system) for g in d.diagnoses] == [
        ("I21.9", "Acute myocardial infarction", "I10")
    ]


@pytest.mark.parametrize("sep", ["\r", "\n", "\r\n"])
def test_any_segment_separator(sep: str) -> None:
    d = discharge(message(MSH, EVN, PID, PV1, DG1, sep=sep))
    assert d.visit_number == "V999"
    assert len(d.diagnoses) == 1


def test_mixed_separators_z_segments_and_empty_trailing_segments() -> None:
    raw = f"{MSH}\r\n{EVN}\nZEV|local|stuff\r{PID}\r\nZPI|1|x^y\n{PV1}\r{DG1}\rZZZ|end\r\r\n\n\r"
    d = discharge(raw)
    assert d.visit_number == "V999"
    assert d.identifiers[0].id == "123"
    assert d.diagnoses[0].code == "I21.9"


def test_a_z_segment_before_pid_and_a_non_segment_line() -> None:
    d = discharge(message(MSH, "ZXX|1", EVN, "free text wrapped by a sender", PID, PV1))
    assert d.visit_number == "V999"
    assert any("not a segment" in n for n in d.notes)


def test_evn1_disagreeing_with_msh9_msh9_wins_and_is_noted() -> None:
    d = discharge(a03(EVN=segment("EVN", {1: "A02", 2: "20260310101400"})))
    assert any("EVN-1 says A02" in n and "MSH-9 wins" in n for n in d.notes)


def test_evn1_disagreeing_the_other_way_is_not_a_discharge() -> None:
    raw = a03(MSH=MSH.replace("ADT^A03^ADT_A03", "ADT^A08"))
    parsed = parse_discharge(raw)
    assert isinstance(parsed, NonDischarge)
    assert parsed.trigger_event == "A08"
    assert any("MSH-9 wins" in n for n in parsed.notes)


def test_repeated_identifiers_are_all_kept_once() -> None:
    d = discharge(a03())
    assert [i.id for i in d.identifiers] == ["123", "G456"]
    assert any("repeats identifier 123" in n for n in d.notes)


def test_explicit_null_reads_as_cleared_none() -> None:
    pid = segment("PID", {3: "123^^^BJH^MR", 5: '""', 7: '""', 8: '""'})
    pv1 = segment("PV1", {3: "CARD", 7: '""', 19: '""', 45: "20260310100000"})
    d = discharge(a03(PID=pid, PV1=pv1))
    assert d.name is None
    assert d.birth_date is None
    assert d.sex is None
    assert d.attending is None
    assert d.visit_number is None
    assert set(d.cleared) == {"PID-5", "PID-7", "PID-8", "PV1-7", "PV1-19"}


def test_empty_fields_are_none_but_not_cleared() -> None:
    d = discharge(a03(PID=segment("PID", {3: "123^^^BJH^MR"}), DG1=""))
    assert d.name is None
    assert d.sex is None
    assert d.cleared == ()
    assert d.diagnoses == ()


@pytest.mark.parametrize(
    ("evn", "msh7", "source", "expected"),
    [
        ({6: "20260310100500", 2: "20260310101400"}, True, "EVN-6", datetime(2026, 3, 10, 2, 5)),
        ({2: "20260310101400"}, True, "EVN-2", datetime(2026, 3, 10, 2, 14)),
        ({1: "A03"}, True, "MSH-7", datetime(2026, 3, 10, 2, 15)),
    ],
)
def test_discharge_time_falls_back(
    evn: dict[int, str], msh7: bool, source: str, expected: datetime
) -> None:
    pv1 = segment("PV1", {3: "CARD", 19: "V1", 45: '""'})
    d = discharge(a03(EVN=segment("EVN", evn), PV1=pv1))
    assert d.discharge_time_source == source
    assert d.discharged_at == expected.replace(tzinfo=UTC)


def test_an_unusable_pv1_45_falls_back_with_a_note() -> None:
    d = discharge(a03(PV1=segment("PV1", {3: "CARD", 45: "yesterday"})))
    assert d.discharge_time_source == "EVN-6"
    assert any("PV1-45 is not a usable timestamp" in n for n in d.notes)


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        ("202603101000", datetime(2026, 3, 10, 2, 0, tzinfo=UTC)),
        ("20260310100030", datetime(2026, 3, 10, 2, 0, 30, tzinfo=UTC)),
        ("20260310100030.5", datetime(2026, 3, 10, 2, 0, 30, 500000, tzinfo=UTC)),
        ("20260310100030-0500", datetime(2026, 3, 10, 15, 0, 30, tzinfo=UTC)),
        ("202603101000+0000", datetime(2026, 3, 10, 10, 0, tzinfo=UTC)),
    ],
)
def test_hl7_timestamps(ts: str, expected: datetime) -> None:
    assert parse_timestamp(ts) == expected


def test_timestamp_timezone_is_a_parameter() -> None:
    assert parse_timestamp("202601011200", "UTC") == datetime(2026, 1, 1, 12, tzinfo=UTC)
    d = parse_discharge(a03(), timezone="UTC")
    assert isinstance(d, Discharge)
    assert d.admitted_at == datetime(2026, 3, 1, 8, 30, tzinfo=UTC)


@pytest.mark.parametrize("ts", ["2026031010", "20260310", "2026-03-10T10:00", "20261310100000"])
def test_bad_timestamps_raise(ts: str) -> None:
    with pytest.raises(ValueError, match=r"HL7 timestamp|must be in"):
        parse_timestamp(ts)


def test_escape_sequences_are_read() -> None:
    pid = segment("PID", {3: "123^^^BJH^MR", 5: "O\\T\\Brien^Ann\\S\\Marie"})
    d = discharge(a03(PID=pid))
    assert d.name is not None
    assert (d.name.family, d.name.given) == ("O&Brien", "Ann^Marie")


def test_a01_is_acknowledged_not_planned() -> None:
    raw = a03(
        MSH=MSH.replace("ADT^A03^ADT_A03", "ADT^A01^ADT_A01"),
        EVN=segment("EVN", {1: "A01", 2: "20260301083000"}),
    )
    parsed = parse_discharge(raw)
    assert isinstance(parsed, NonDischarge)
    assert (parsed.message_code, parsed.trigger_event, parsed.control_id) == (
        "ADT",
        "A01",
        "MSG001",
    )


def test_a_missing_trigger_is_taken_from_evn1() -> None:
    d = discharge(a03(MSH=MSH.replace("ADT^A03^ADT_A03", "ADT")))
    assert any("EVN-1 A03 used" in n for n in d.notes)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("\r\n\r\n", "empty"),
        (message(EVN, MSH, PID, PV1), "not MSH"),
        (message("PID|1||123"), "not MSH"),
        (message("MSH|^~"), "MSH too short"),
        (message(MSH.replace("^~\\&", "^^\\&"), PID), "MSH-2"),
        (message(MSH.replace("^~\\&", "^~"), PID), "MSH-2"),
        (message(MSH.replace("^~\\&", "ab12"), PID), "MSH-2"),
        (message("MSHA^~\\&A" + "x" * 10, PID), "MSH-1"),
        (message(MSH.replace("ADT^A03^ADT_A03", ""), PID), "MSH-9"),
        (message(MSH.replace("ADT^A03^ADT_A03", '""'), PID), "MSH-9"),
        (message(MSH.replace("|MSG001|", "||"), PID), "MSH-10"),
        (a03(PID=""), "without a PID"),
        (a03(PID=segment("PID", {3: '""', 5: "Wang^Li"})), "PID-3"),
        (message(MSH.replace("ADT^A03^ADT_A03", "ADT"), PID, PV1), "MSH-9.2"),
    ],
)
def test_malformed(raw: str, reason: str) -> None:
    parsed = parse_discharge(raw)
    assert isinstance(parsed, Malformed)
    assert reason in parsed.reason


def read_ack(text: str) -> hl7.Message:
    assert text.endswith("\r")
    return hl7.parse(text)


def test_ack_aa_swaps_sender_and_receiver() -> None:
    now = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
    message_ = read_ack(ack(parse_discharge(a03()), "AA", control_id="ACK1", now=now))
    msh, msa = message_.segment("MSH"), message_.segment("MSA")
    assert str(msh(3)) == "CARELOOP"
    assert str(msh(4)) == "CL"
    assert str(msh(5)) == "HIS"
    assert str(msh(6)) == "BJH^1.2.3^ISO"
    assert str(msh(7)) == "20260310100000+0800"
    assert str(msh(9)) == "ACK^A03^ACK"
    assert str(msh(10)) == "ACK1"
    assert str(msh(12)) == "2.5"
    assert str(msa(1)) == "AA"
    assert str(msa(2)) == "MSG001"
    assert "ERR" not in str(message_)


@pytest.mark.parametrize("code", ["AE", "AR"])
def test_ack_error_carries_the_reason_escaped(code: str) -> None:
    text = ack(a03(), code, "bad | value^here\r\nsecond line")  # type: ignore[arg-type]
    message_ = read_ack(text)
    assert str(message_.segment("MSA")(1)) == code
    assert str(message_.segment("MSA")(2)) == "MSG001"
    err = message_.segment("ERR")
    assert str(err(3)(1)(1)) == "207"
    assert str(err(4)) == "E"
    assert message_.unescape(str(err(8))) == "bad | value^here second line"
    assert len(text.split("\r")) == 4  # MSH, MSA, ERR and the final CR


def test_ack_of_a_malformed_message_uses_what_can_be_read() -> None:
    raw = message(MSH.replace("|MSG001|", "||"), PID)
    message_ = read_ack(ack(raw, "AR", "missing MSH-10"))
    assert str(message_.segment("MSA")(2)) == "UNKNOWN"
    assert str(message_.segment("MSH")(5)) == "HIS"  # the sender still gets it back
    assert str(message_.segment("MSH")(9)) == "ACK^A03^ACK"


@pytest.mark.parametrize("raw", ["", "garbage", "MSH|^^\\&|HIS|BJH", "\x00\x01"])
def test_ack_of_garbage_uses_a_placeholder(raw: str) -> None:
    message_ = read_ack(ack(raw, "AR", "not HL7"))
    msh, msa = message_.segment("MSH"), message_.segment("MSA")
    assert str(msh(2)) == "^~\\&"
    assert str(msh(9)) == "ACK"
    assert (str(msa(1)), str(msa(2))) == ("AR", "UNKNOWN")


def test_ack_keeps_the_senders_encoding_characters() -> None:
    msh = MSH.replace("^~\\&", "$*\\%").replace("^", "$").replace("|", "#")
    raw = message(msh, PID.replace("^", "$").replace("~", "*").replace("|", "#"), "PV1#1")
    parsed = parse_discharge(raw)
    assert isinstance(parsed, Discharge)
    assert [i.id for i in parsed.identifiers] == ["123", "G456"]
    text = ack(parsed, "AE", "a # b")
    assert text.startswith("MSH#$*\\%#CARELOOP#CL#HIS#BJH$1.2.3$ISO#")
    assert "#ACK$A03$ACK#" in text
    assert "MSA#AE#MSG001#a \\F\\ b" in text


# --- disposition, death and the national ID -------------------------------------------

NID = "11010519491231002X"  # a valid GB 11643-1999 number (the standard's example)
NID2 = "110101199003074477"


def test_no_disposition_and_alive_by_default() -> None:
    d = discharge(a03())
    assert (d.disposition, d.deceased, d.national_id) == (None, False, None)


@pytest.mark.parametrize(
    ("pv1_36", "pid_30", "deceased"),
    [
        ("01", "", False),
        ("20", "", True),
        ("40", "", True),
        ("41", "N", True),
        ("42", "", True),
        ("07", "Y", True),
        ("", "y", True),
        ("", "N", False),
    ],
)
def test_deceased_from_pv1_36_or_pid_30(pv1_36: str, pid_30: str, deceased: bool) -> None:
    pid = segment("PID", {3: "123^^^BJH^MR", 30: pid_30})
    pv1 = segment("PV1", {3: "CARD", 36: pv1_36, 45: "20260310100000"})
    d = discharge(a03(PID=pid, PV1=pv1))
    assert d.disposition == (pv1_36 or None)
    assert d.deceased is deceased


def test_an_explicit_null_disposition_is_cleared() -> None:
    pv1 = segment("PV1", {3: "CARD", 36: '""', 45: "20260310100000"})
    d = discharge(a03(PV1=pv1))
    assert d.disposition is None
    assert "PV1-36" in d.cleared


@pytest.mark.parametrize(
    ("pid_3", "expected"),
    [
        (f"123^^^BJH^MR~{NID.lower()}^^^^NNCHN", NID),  # normalized: upper-case check char
        (f"{NID2}^^^^PI~{NID}^^^CHN^ID", NID),  # a typed repetition first
        (f"{NID2}^^^^NNCHN~{NID}^^^^ID", NID2),  # both typed: the first
        (f"123^^^BJH^MR~{NID2}^^^^PI", NID2),  # untyped but valid: still found
        ("110105194912310021^^^^NNCHN~123^^^BJH^MR", None),  # bad check character
        ("１１０１０５１９４９１２３１００２Ｘ^^^^NNCHN", NID),  # full-width digits
    ],
)
def test_national_id_from_pid_3(pid_3: str, expected: str | None) -> None:
    d = discharge(a03(PID=segment("PID", {3: pid_3})))
    assert d.national_id == expected
    assert len(d.identifiers) == len(pid_3.split("~"))  # every repetition is kept


# --- what python-hl7 reads for us ------------------------------------------------------


def test_every_separator_escape_sequence_is_read() -> None:
    pid = segment("PID", {3: "A\\F\\1^^^BJH^MR", 5: "Li\\R\\Lee\\E\\^Ann\\T\\Marie\\S\\X"})
    d = discharge(a03(PID=pid))
    assert d.identifiers[0].id == "A|1"
    assert d.name is not None
    assert (d.name.family, d.name.given) == ("Li~Lee\\", "Ann&Marie^X")


@pytest.mark.parametrize(
    ("sent", "read"),
    [
        ("\\H\\Wang\\N\\", "Wang"),  # highlighting: no text of its own
        ("\\X5761\\ng", "Wang"),  # hex
        ("Wang\\Zfoo\\", "Wang\\Zfoo\\"),  # unknown (python-hl7 alone would drop it): kept
        ("Wa\\.spx\\ng", "Wa\\.spx\\ng"),  # broken count (python-hl7 alone would raise)
        ("Wa\\\\ng", "Wa\\\\ng"),  # empty sequence: kept
        ("C:\\temp", "C:\\temp"),  # a dangling escape character: kept
    ],
)
def test_other_escape_sequences(sent: str, read: str) -> None:
    d = discharge(a03(PID=segment("PID", {3: "123^^^BJH^MR", 5: f"{sent}^Li"})))
    assert d.name is not None
    assert (d.name.family, d.name.given) == (read, "Li")


def recode(text: str, separator: str, encoding: str) -> str:
    """``text`` in other encoding characters (MSH-1, MSH-2)."""
    return text.translate(str.maketrans("|^~\\&", separator + encoding[:4]))


@pytest.mark.parametrize(
    ("separator", "encoding"), [("$", "%~\\&"), ("#", "$*!%"), ("|", "^~\\&#")]
)
def test_custom_encoding_characters(separator: str, encoding: str) -> None:
    pid = segment("PID", {3: "123^^^BJH^MR~G4\\S\\5^^^&2.16.840&ISO^NI", 5: "O\\T\\Brien^Ann"})
    raw = recode(a03(PID=pid), separator, encoding)
    if len(encoding) == 5:  # MSH-2 with a truncation character (v2.7): not ours to read
        raw = raw.replace(encoding[:4], encoding, 1)
    d = discharge(raw)
    assert d.header.encoding_characters == encoding
    assert d.identifiers == (
        PatientIdentifier("123", "MR", "BJH"),
        PatientIdentifier(f"G4{encoding[0]}5", "NI", "2.16.840"),
    )
    assert d.name is not None
    assert d.name.family == f"O{encoding[3]}Brien"
    assert (d.department, d.visit_number, d.diagnoses[0].code) == ("CARD", "V999", "I21.9")


def test_a_z_segment_between_pid_and_pv1() -> None:
    d = discharge(message(MSH, EVN, PID, "ZPD|1|x^y~z|PV1|", PV1, DG1))
    assert (d.department, d.visit_number) == ("CARD", "V999")
    assert d.name is not None
    assert d.name.family == "Wang"


def test_mixed_line_ends_and_trailing_empty_segments() -> None:
    raw = f"\ufeff{MSH}\n{EVN}\r\n{PID}\r{PV1}\n\r\n{DG1}\r\n \r\t\n\r\r\n"
    d = discharge(raw)
    assert (d.visit_number, d.diagnoses[0].code) == ("V999", "I21.9")
    assert d.discharge_time_source == "PV1-45"
    assert d.identifiers[0] == PatientIdentifier("123", "MR", "BJH")
    assert not any("not a segment" in n for n in d.notes)


def test_segments_sent_as_their_id_alone() -> None:
    d = discharge(message(MSH, "EVN", PID, "PV1", "ZZZ"))
    assert d.location is None
    assert d.discharge_time_source == "MSH-7"


def test_an_msh_ending_at_its_encoding_characters() -> None:
    parsed = parse_discharge(message("MSH|^~\\&", PID))
    assert isinstance(parsed, Malformed)
    assert "MSH-10" in parsed.reason

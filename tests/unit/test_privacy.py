"""National ID rules, masking, free-text redaction and field encryption (docs/architecture.md
§8)."""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import date, datetime, timedelta, timezone

import pytest

from shared.crypto import DecryptionError, FieldCipher, generate_key
from shared.privacy import (
    InvalidNationalId,
    birth_date_of,
    is_valid_national_id,
    mask_name,
    mask_national_id,
    mask_phone,
    normalize_national_id,
    parse_national_id,
    redact_data,
    redact_text,
    sex_of,
)
from tests.factories import check_char, complete_national_id, make_national_id, make_phone

pytestmark = pytest.mark.unit

CHECK_CHARS = "0123456789X"


def _china_today() -> date:
    return datetime.now(timezone(timedelta(hours=8))).date()


def _id_ending_in_x() -> str:
    for seed in range(1000):
        candidate = make_national_id(seed=seed)
        if candidate.endswith("X"):
            return candidate
    raise AssertionError("no seed below 1000 gives a check character X")


def _with_birth(birth: str, sequence: str = "123") -> str:
    """A correctly checksummed ID whose date field is ``birth`` (may be impossible)."""
    return complete_national_id(f"310104{birth}{sequence}")


def _keys() -> tuple[bytes, bytes, bytes]:
    return (bytes(range(32)), bytes(range(1, 33)), bytes(range(100, 132)))


# --- validation -----------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(50))
def test_generated_ids_are_valid(seed: int) -> None:
    assert is_valid_national_id(make_national_id(seed=seed))


def test_only_the_right_check_char_is_accepted() -> None:
    valid = make_national_id(seed=7)
    accepted = [c for c in CHECK_CHARS if is_valid_national_id(valid[:17] + c)]
    assert accepted == [valid[17]]


def test_factory_check_char_matches_the_standard_weights() -> None:
    # weights 7,9,10,5,8,4,2,1,6,3,7,9,10,5,8,4,2 and check chars "10X98765432"
    first17 = make_national_id(seed=3)[:17]
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(c) * w for c, w in zip(first17, weights, strict=True))
    assert check_char(first17) == "10X98765432"[total % 11]


def test_every_single_digit_change_is_detected() -> None:
    valid = make_national_id(seed=11)
    for position in range(17):
        changed = str((int(valid[position]) + 1) % 10)
        assert not is_valid_national_id(valid[:position] + changed + valid[position + 1 :])


@pytest.mark.parametrize(
    "value",
    ["", "12345", "1" * 17, "1" * 19, "X" + "1" * 17, "11010119900307X234", "abcdefghijklmnopqr"],
)
def test_malformed_values_are_invalid(value: str) -> None:
    assert not is_valid_national_id(value)


def test_non_string_is_invalid() -> None:
    assert not is_valid_national_id(make_national_id(seed=1)[:17])  # 17 chars
    assert not is_valid_national_id(int(make_national_id(seed=1)[:17]))  # type: ignore[arg-type]


def test_lowercase_x_is_accepted_and_normalized() -> None:
    with_x = _id_ending_in_x()
    lower = with_x[:17] + "x"
    assert is_valid_national_id(lower)
    assert normalize_national_id(f"  {lower} ") == with_x
    assert parse_national_id(lower) == with_x


def test_full_width_digits_are_normalized() -> None:
    valid = make_national_id(seed=5)
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in valid)
    assert parse_national_id(full_width) == valid


@pytest.mark.parametrize(
    "birth",
    ["20000230", "19010229", "19901301", "19900100", "19900132", "18991231", "00000101"],
)
def test_impossible_birth_dates_are_invalid(birth: str) -> None:
    assert not is_valid_national_id(_with_birth(birth))


def test_leap_day_in_leap_year_is_valid() -> None:
    assert is_valid_national_id(_with_birth("20000229"))
    assert is_valid_national_id(_with_birth("19000101"))


def test_future_birth_dates_are_invalid_and_today_is_valid() -> None:
    today = _china_today()
    assert is_valid_national_id(_with_birth(f"{today:%Y%m%d}"))
    assert not is_valid_national_id(_with_birth(f"{today + timedelta(days=2):%Y%m%d}"))
    assert not is_valid_national_id(_with_birth(f"{today.year + 1}0101"))


def test_parse_raises_without_echoing_the_value() -> None:
    valid = make_national_id(seed=9)
    bad = valid[:17] + ("0" if valid[17] != "0" else "1")
    with pytest.raises(InvalidNationalId) as caught:
        parse_national_id(bad)
    assert isinstance(caught.value, ValueError)
    assert bad not in str(caught.value)


def test_birth_date_and_sex() -> None:
    born = date(1985, 6, 15)
    assert birth_date_of(make_national_id(birth=born, seed=2)) == born
    assert sex_of(_with_birth("19850615", "131")) == "male"
    assert sex_of(_with_birth("19850615", "120")) == "female"
    with pytest.raises(InvalidNationalId):
        birth_date_of(_with_birth("20000230"))
    with pytest.raises(InvalidNationalId):
        sex_of("not an id")


# --- masking ----------------------------------------------------------------------------


def test_mask_national_id_keeps_first_3_and_last_2() -> None:
    value = make_national_id(seed=4)
    masked = mask_national_id(value)
    assert masked == value[:3] + "*" * 13 + value[-2:]
    assert len(masked) == len(value)
    assert mask_national_id("12345") == "*****"


def test_mask_phone() -> None:
    phone = make_phone(seed=1)
    assert mask_phone(phone) == f"{phone[:3]}****{phone[-4:]}"
    assert mask_phone(f"+86{phone}") == f"+86{phone[:3]}****{phone[-4:]}"
    assert mask_phone("0571-87654321") == "****-****4321"
    assert mask_phone("110") == "***"


def test_mask_name() -> None:
    assert mask_name("张三丰") == "张**"
    assert mask_name("李四") == "李*"
    assert mask_name("王") == "*"
    assert mask_name("") == ""


# --- free-text redaction ------------------------------------------------------------------


def test_redact_text_in_a_chinese_sentence() -> None:
    nid, phone = make_national_id(seed=21), make_phone(seed=21)
    text = f"患者身份证{nid}，联系电话{phone}，请回电。"
    redacted = redact_text(text)
    assert nid not in redacted
    assert phone not in redacted
    assert redacted == f"患者身份证{mask_national_id(nid)}，联系电话{mask_phone(phone)}，请回电。"


def test_redact_text_in_json() -> None:
    nid, phone = make_national_id(seed=22), make_phone(seed=22)
    text = json.dumps({"patient": {"national_id": nid, "phones": [phone]}, "n": int(phone)})
    redacted = redact_text(text)
    assert nid not in redacted
    assert phone not in redacted
    # a bare JSON number is masked too (the text then is no longer strict JSON)
    assert redacted.endswith(f'"n": {mask_phone(phone)}}}')
    start = redacted.index('"national_id": "') + len('"national_id": "')
    assert redacted[start : start + 18] == mask_national_id(nid)


def test_redact_text_masks_ids_with_a_wrong_checksum_and_lowercase_x() -> None:
    valid = make_national_id(seed=23)
    wrong = valid[:17] + ("1" if valid[17] != "1" else "2")
    lower_x = valid[:17] + "x"
    redacted = redact_text(f"a {wrong} b {lower_x} c")
    assert redacted == f"a {mask_national_id(wrong)} b {mask_national_id(lower_x)} c"


@pytest.mark.parametrize("prefix", ["+86", "86", "0086", "+86 ", "+86-"])
def test_redact_text_masks_prefixed_phones(prefix: str) -> None:
    phone = make_phone(seed=24)
    assert redact_text(f"tel:{prefix}{phone}.") == f"tel:{prefix}{mask_phone(phone)}."


def test_redact_text_masks_grouped_phones() -> None:
    phone = make_phone(seed=25)
    grouped = f"{phone[:3]} {phone[3:7]} {phone[7:]}"
    assert redact_text(f"call {grouped} now") == f"call {phone[:3]} **** {phone[7:]} now"


def test_redact_text_leaves_other_digit_runs_alone() -> None:
    phone, nid = make_phone(seed=26), make_national_id(seed=26)
    epoch_ms = str(int(time.time() * 1000))
    crafted_uuid = f"123e4567-e89b-12d3-a456-a{phone}"  # last group holds a phone-like run
    untouched = [
        str(uuid.uuid4()),
        crafted_uuid,
        uuid.UUID(crafted_uuid).hex,
        "665f1c2e8a1b2c3d4e5f6a7b",  # a Mongo ObjectId
        f"epoch {epoch_ms} ms",
        f"order 9{phone}",  # 12-digit run
        f"order {phone}9",
        f"ref {nid}7",  # 19-digit run
        f"ref {nid[:17]}",  # 17-digit run
        "2024-05-06T13:45:12.123456+08:00",
        "booking.created",
        "no digits at all, but a long enough text",
    ]
    for text in untouched:
        assert redact_text(text) == text, text


def test_any_18_digit_run_counts_as_an_id() -> None:
    # safer to mask an order number of exactly 18 digits than to miss an ID
    run = "5" + make_national_id(seed=28)[:17]
    assert redact_text(f"ref {run}") == f"ref {mask_national_id(run)}"


def test_redact_data_walks_containers_and_masks_numbers() -> None:
    nid, phone = make_national_id(seed=27), make_phone(seed=27)
    data = {
        "event": f"lookup {nid}",
        int(phone): [int(nid[:17] + "1"), (phone, 42), {phone}],
        "count": 42,
        "flag": True,
        "when": date(2024, 1, 2),
    }
    redacted = redact_data(data)
    assert isinstance(redacted, dict)
    assert nid not in str(redacted)
    assert phone not in str(redacted)
    assert redacted["count"] == 42
    assert redacted["flag"] is True
    assert redacted["when"] == date(2024, 1, 2)  # kept as an object without stringify
    assert redacted[mask_phone(phone)][1] == (mask_phone(phone), 42)
    stringified = redact_data({"obj": _Holder(phone)}, stringify=True)
    assert stringified == {"obj": f"holder {mask_phone(phone)}"}


class _Holder:
    def __init__(self, phone: str) -> None:
        self.phone = phone

    def __str__(self) -> str:
        return f"holder {self.phone}"


# --- field encryption -----------------------------------------------------------------------


def test_cipher_round_trip_and_token_shape() -> None:
    key, _, hash_key = _keys()
    cipher = FieldCipher({"k1": key}, hash_key)
    nid = make_national_id(seed=31)
    token = cipher.encrypt(nid, context="national_id")
    version, kid, nonce, _ = token.split(".")
    assert (version, kid) == ("v2", "k1")
    assert len(base64.urlsafe_b64decode(nonce + "==")) == 12
    assert nid not in token
    assert "=" not in token
    assert cipher.encrypt(nid, context="national_id") != token  # fresh nonce each time
    assert cipher.decrypt(token, context="national_id") == nid
    assert cipher.decrypt(cipher.encrypt("")) == ""
    assert cipher.decrypt(cipher.encrypt("张三丰")) == "张三丰"


def test_context_is_bound() -> None:
    key, _, hash_key = _keys()
    cipher = FieldCipher({"k1": key}, hash_key)
    token = cipher.encrypt(make_phone(seed=32), context="phone")
    with pytest.raises(DecryptionError):
        cipher.decrypt(token, context="national_id")
    with pytest.raises(DecryptionError):
        cipher.decrypt(token)


def test_tampered_and_malformed_tokens_fail() -> None:
    key, other, hash_key = _keys()
    cipher = FieldCipher({"k1": key}, hash_key)
    token = cipher.encrypt("secret")
    head, sealed = token.rsplit(".", 1)
    flipped = head + "." + ("A" if sealed[0] != "A" else "B") + sealed[1:]
    bad_tokens = [
        flipped,
        "garbage",
        "v9" + token[2:],
        token.replace(".k1.", ".k9."),
        head + ".***",
        token.rsplit(".", 2)[0] + ".AAAA." + sealed,  # short nonce
    ]
    for bad in bad_tokens:
        with pytest.raises(DecryptionError):
            cipher.decrypt(bad)
    with pytest.raises(DecryptionError):
        FieldCipher({"k1": other}, hash_key).decrypt(token)  # same kid, different key


def test_key_rotation() -> None:
    old_key, new_key, hash_key = _keys()
    old = FieldCipher({"k1": old_key}, hash_key)
    old_token = old.encrypt("value", context="f")

    rotated = FieldCipher({"k2": new_key, "k1": old_key}, hash_key)
    assert rotated.active_kid == "k2"
    assert rotated.decrypt(old_token, context="f") == "value"
    new_token = rotated.encrypt("value", context="f")
    assert new_token.split(".")[1] == "k2"
    assert rotated.needs_rotation(old_token)
    assert not rotated.needs_rotation(new_token)
    assert old.needs_rotation(new_token)

    migrated = rotated.reencrypt(old_token, context="f")
    assert migrated.split(".")[1] == "k2"
    assert rotated.decrypt(migrated, context="f") == "value"
    assert rotated.reencrypt(new_token, context="f") == new_token

    retired = FieldCipher({"k2": new_key}, hash_key)
    assert retired.decrypt(migrated, context="f") == "value"
    with pytest.raises(DecryptionError):
        retired.decrypt(old_token, context="f")


def test_lookup_hash_is_keyed_stable_and_normalized() -> None:
    key, _, hash_key = _keys()
    cipher = FieldCipher({"k1": key}, hash_key)
    with_x = _id_ending_in_x()
    digest = cipher.lookup_hash_national_id(with_x)
    assert len(digest) == 64
    int(digest, 16)
    assert digest == FieldCipher({"k1": key}, hash_key).lookup_hash_national_id(with_x)
    assert digest == cipher.lookup_hash_national_id(f" {with_x[:17]}x ")
    assert digest == cipher.lookup_hash(with_x, kind="national_id")
    assert digest != cipher.lookup_hash_national_id(make_national_id(seed=33))
    assert digest != FieldCipher({"k1": key}, bytes(32)).lookup_hash_national_id(with_x)
    phone = make_phone(seed=33)
    assert cipher.lookup_hash(f" {phone}", kind="phone") == cipher.lookup_hash(phone, kind="phone")


def test_from_settings_parses_keys_in_order() -> None:
    first, second, hash_key = generate_key(), generate_key(), generate_key()
    cipher = FieldCipher.from_settings(f" new:{first} , old:{second} ", hash_key)
    assert cipher.active_kid == "new"
    token = cipher.encrypt("x")
    assert token.startswith("v2.new.")
    only_old = FieldCipher.from_settings(f"old:{second}", hash_key)
    assert cipher.decrypt(only_old.encrypt("y")) == "y"


@pytest.mark.parametrize(
    ("keys_spec", "hash_key", "message"),
    [
        ("", "HASH", "pii_encryption_keys is empty"),
        (" , ", "HASH", "pii_encryption_keys is empty"),
        ("KEY", "HASH", "expected 'kid:base64urlkey'"),
        ("k1:", "HASH", "expected 'kid:base64urlkey'"),
        ("k1:not*base64!", "HASH", "not valid base64url"),
        ("k1:" + base64.urlsafe_b64encode(bytes(16)).decode(), "HASH", "must be 32 bytes"),
        ("k1:KEY,k1:KEY", "HASH", "duplicate key id"),
        ("bad.kid:KEY", "HASH", "bad key id"),
        ("k1:KEY", "", "pii_hash_key is empty"),
        ("k1:KEY", "c2hvcnQ", "at least 32 bytes"),
        ("k1:KEY", "KEY", "must differ"),
    ],
)
def test_from_settings_rejects_bad_config(keys_spec: str, hash_key: str, message: str) -> None:
    key, other = generate_key(), generate_key()
    spec = keys_spec.replace("KEY", key)
    with pytest.raises(ValueError, match=message) as caught:
        FieldCipher.from_settings(spec, hash_key.replace("HASH", other).replace("KEY", key))
    assert key not in str(caught.value)
    assert other not in str(caught.value)


def test_generate_key() -> None:
    key = generate_key()
    assert len(base64.urlsafe_b64decode(key + "=")) == 32
    assert set(key) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert generate_key() != key


def test_a_name_in_a_list_to_pick_from_keeps_its_first_and_last_character() -> None:
    from shared.privacy import mask_name_ends

    assert [mask_name_ends(n) for n in ("张", "张伟", "张小伟", "欧阳安泰", " 李娜 ")] == [
        "*",
        "张*",
        "张*伟",
        "欧**泰",
        "李*",
    ]

"""Field tokens are bound to their record, lookup hashes to their kind (issue 13).

``v1`` tokens (bound to the field only) and single-key lookup hashes are what versions
before stored: they are made here by hand, the way those versions made them, so the
compatibility is checked against the old format rather than against the new code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.crypto import LOOKUP_KINDS, DecryptionError, FieldCipher, generate_key

pytestmark = pytest.mark.unit

NATIONAL_ID = "11010519900101002X"
PHONE = "13800138000"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def v1_token(key: bytes, kid: str, plaintext: str, context: str) -> str:
    """A token as versions before the record binding made it."""
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), f"v1\x00{kid}\x00{context}".encode())
    return f"v1.{kid}.{_b64(nonce)}.{_b64(sealed)}"


def legacy_hash(hash_key: bytes, normalized: str) -> str:
    return hmac.new(hash_key, normalized.encode(), hashlib.sha256).hexdigest()


@pytest.fixture
def keys() -> tuple[bytes, bytes]:
    return os.urandom(32), os.urandom(32)


def test_a_token_moved_to_another_record_fails(keys: tuple[bytes, bytes]) -> None:
    cipher = FieldCipher({"k1": keys[0]}, keys[1])
    token = cipher.encrypt(PHONE, context="patient.phone", record_id="p-1")
    assert token.startswith("v2.k1.")
    assert cipher.decrypt(token, context="patient.phone", record_id="p-1") == PHONE
    for record_id in ("p-2", "", "p-1 "):
        with pytest.raises(DecryptionError):
            cipher.decrypt(token, context="patient.phone", record_id=record_id)
    with pytest.raises(DecryptionError):  # nor into another field of the same record
        cipher.decrypt(token, context="patient.national_id", record_id="p-1")
    unbound = cipher.encrypt(PHONE, context="patient.phone")
    with pytest.raises(DecryptionError):
        cipher.decrypt(unbound, context="patient.phone", record_id="p-1")
    assert not cipher.needs_rotation(token)


def test_v1_tokens_still_decrypt_and_need_rotation(keys: tuple[bytes, bytes]) -> None:
    cipher = FieldCipher({"k1": keys[0]}, keys[1])
    old = v1_token(keys[0], "k1", NATIONAL_ID, "patient.national_id")
    # the legacy path: bound to the field only, whatever record asks
    assert cipher.decrypt(old, context="patient.national_id", record_id="p-1") == NATIONAL_ID
    with pytest.raises(DecryptionError):
        cipher.decrypt(old, context="patient.phone", record_id="p-1")
    assert cipher.needs_rotation(old)  # under the active key, but v1

    upgraded = cipher.reencrypt(old, context="patient.national_id", record_id="p-1")
    assert upgraded.startswith("v2.k1.")
    assert cipher.decrypt(upgraded, context="patient.national_id", record_id="p-1") == NATIONAL_ID
    with pytest.raises(DecryptionError):
        cipher.decrypt(upgraded, context="patient.national_id", record_id="p-2")
    assert cipher.reencrypt(upgraded, context="patient.national_id", record_id="p-1") == upgraded


def test_each_kind_of_value_hashes_under_its_own_key(keys: tuple[bytes, bytes]) -> None:
    cipher = FieldCipher({"k1": keys[0]}, keys[1])
    same = "110105199001010021"
    as_phone = cipher.lookup_hash(same, kind="phone")
    as_id = cipher.lookup_hash(same, kind="national_id")
    assert as_phone != as_id
    assert as_id == cipher.lookup_hash_national_id(same)
    assert as_id == cipher.lookup_hash_national_id(f" {same} ")
    assert cipher.lookup_hash_national_id(NATIONAL_ID.lower()) == cipher.lookup_hash_national_id(
        NATIONAL_ID
    )
    # stable for the same hash key, different under another
    again = FieldCipher({"k9": os.urandom(32)}, keys[1])
    assert again.lookup_hash(PHONE, kind="phone") == cipher.lookup_hash(PHONE, kind="phone")
    other = FieldCipher({"k1": keys[0]}, os.urandom(32))
    assert other.lookup_hash(PHONE, kind="phone") != cipher.lookup_hash(PHONE, kind="phone")
    with pytest.raises(ValueError, match="unknown lookup hash kind"):
        cipher.lookup_hash(PHONE, kind="email")
    assert set(LOOKUP_KINDS) == {"phone", "national_id", "verification_code"}


def test_lookups_during_the_upgrade_also_match_legacy_hashes(keys: tuple[bytes, bytes]) -> None:
    cipher = FieldCipher({"k1": keys[0]}, keys[1])
    current, legacy = cipher.lookup_hashes(f" {PHONE}", kind="phone")
    assert current == cipher.lookup_hash(PHONE, kind="phone")
    assert legacy == legacy_hash(keys[1], PHONE)  # what versions before stored
    assert current != legacy
    id_current, id_legacy = cipher.lookup_hashes(NATIONAL_ID.lower(), kind="national_id")
    assert id_current == cipher.lookup_hash_national_id(NATIONAL_ID)
    assert id_legacy == legacy_hash(keys[1], NATIONAL_ID)
    assert cipher.legacy_lookup_hash(PHONE, kind="phone") == legacy


def test_a_labelled_hash_key_is_the_same_key() -> None:
    key, hash_key = generate_key(), generate_key()
    plain = FieldCipher.from_settings(f"k1:{key}", hash_key)
    labelled = FieldCipher.from_settings(f"k1:{key}", f"dev:{hash_key}")
    assert plain.lookup_hash(PHONE, kind="phone") == labelled.lookup_hash(PHONE, kind="phone")

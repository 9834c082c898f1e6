"""PII key rotation: values under an old key are rewritten under the active one; tokens
and lookup hashes of versions before the record binding are upgraded (issue 13)."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from shared.crypto import DecryptionError, FieldCipher, generate_key
from shared.pii_rotation import EncryptedField, reencrypt_fields
from tests.unit.test_crypto_binding import legacy_hash, v1_token

pytestmark = pytest.mark.integration

FIELDS = [EncryptedField("patients", "national_id_enc", "patient.national_id")]


async def test_old_values_move_to_the_new_key_in_batches(
    mongo: AsyncMongoClient[Any], run_id: str
) -> None:
    old_key, new_key, hash_key = generate_key(), generate_key(), generate_key()
    before = FieldCipher.from_settings(f"k1:{old_key}", hash_key)
    after = FieldCipher.from_settings(f"k2:{new_key},k1:{old_key}", hash_key)
    db = mongo[f"{run_id}_rotation"]
    ids = [f"1101051990010{n:04d}" for n in range(5)]
    await db.patients.insert_many(
        [
            {
                "_id": f"p{n}",
                "national_id_enc": before.encrypt(
                    v, context="patient.national_id", record_id=f"p{n}"
                ),
            }
            for n, v in enumerate(ids)
        ]
        + [
            {
                "_id": "fresh",
                "national_id_enc": after.encrypt(
                    "x", context="patient.national_id", record_id="fresh"
                ),
            }
        ]
        + [{"_id": "none"}]
    )

    first = await reencrypt_fields(db, after, FIELDS, limit=3)
    assert first.active_key == "k2"
    assert (first.fields[0].scanned, first.fields[0].reencrypted, first.remaining) == (6, 3, 2)
    second = await reencrypt_fields(db, after, FIELDS)
    assert (second.fields[0].reencrypted, second.remaining) == (2, 0)

    only_new = FieldCipher.from_settings(f"k2:{new_key}", hash_key)  # the old key may now go
    docs = await db.patients.find({"national_id_enc": {"$type": "string"}}).sort("_id").to_list()
    plain = [
        only_new.decrypt(d["national_id_enc"], context="patient.national_id", record_id=d["_id"])
        for d in docs
    ]
    assert sorted(plain) == sorted([*ids, "x"])
    third = await reencrypt_fields(db, only_new, FIELDS)
    assert (third.fields[0].reencrypted, third.fields[0].unreadable) == (0, 0)


def _raw(key_b64: str) -> bytes:
    return base64.urlsafe_b64decode(key_b64 + "=" * (-len(key_b64) % 4))


async def test_v1_tokens_and_legacy_hashes_are_upgraded(
    mongo: AsyncMongoClient[Any], run_id: str
) -> None:
    """What versions before stored (field-bound v1 tokens, single-key hashes) is found
    during the upgrade, then rewritten: tokens bound to their record, hashes per kind."""
    key, hash_key = generate_key(), generate_key()
    cipher = FieldCipher.from_settings(f"k1:{key}", hash_key)
    db = mongo[f"{run_id}_upgrade"]
    ids = {f"p{n}": f"1101051990010{n:04d}" for n in range(4)}
    phones = {f"pa-{n}": f"1380013800{n}" for n in range(3)}
    await db.patients.create_index("national_id_hash", unique=True)
    await db.patients.insert_many(
        [
            {
                "_id": pid,
                "national_id_enc": v1_token(_raw(key), "k1", nid, "patient.national_id"),
                "national_id_hash": legacy_hash(_raw(hash_key), nid),
                "phone_enc": v1_token(_raw(key), "k1", "13900000000", "patient.phone"),
            }
            for pid, nid in ids.items()
        ]
    )
    await db.accounts.insert_many(
        [
            {
                "_id": aid,
                "phone_enc": v1_token(_raw(key), "k1", phone, "account.phone"),
                "phone_hash": legacy_hash(_raw(hash_key), phone),
            }
            for aid, phone in phones.items()
        ]
    )
    fields = [
        EncryptedField(
            "patients",
            "national_id_enc",
            "patient.national_id",
            hash_field="national_id_hash",
            hash_kind="national_id",
        ),
        EncryptedField("patients", "phone_enc", "patient.phone"),
        EncryptedField(
            "accounts", "phone_enc", "account.phone", hash_field="phone_hash", hash_kind="phone"
        ),
    ]
    # during the upgrade a lookup finds records by either hash
    hashes = cipher.lookup_hashes(ids["p1"], kind="national_id")
    found = await db.patients.find_one({"national_id_hash": {"$in": hashes}})
    assert found is not None
    assert found["_id"] == "p1"
    assert await db.patients.find_one({"national_id_hash": hashes[0]}) is None

    first = await reencrypt_fields(db, cipher, fields, limit=2)
    assert [(f.reencrypted, f.rehashed) for f in first.fields] == [(2, 2), (2, 0), (2, 2)]
    assert first.remaining == 2 + 2 + 1
    second = await reencrypt_fields(db, cipher, fields)
    assert [(f.reencrypted, f.rehashed) for f in second.fields] == [(2, 2), (2, 0), (1, 1)]
    assert second.remaining == 0
    third = await reencrypt_fields(db, cipher, fields)
    assert [(f.reencrypted, f.rehashed, f.unreadable) for f in third.fields] == [(0, 0, 0)] * 3

    for pid, nid in ids.items():
        doc = await db.patients.find_one({"national_id_hash": cipher.lookup_hash_national_id(nid)})
        assert doc is not None
        assert doc["_id"] == pid
        token = doc["national_id_enc"]
        assert token.startswith("v2.k1.")
        assert cipher.decrypt(token, context="patient.national_id", record_id=pid) == nid
        with pytest.raises(DecryptionError):  # bound to its record now
            cipher.decrypt(token, context="patient.national_id", record_id="p-other")
        assert cipher.decrypt(doc["phone_enc"], context="patient.phone", record_id=pid)
    for aid, phone in phones.items():
        account = await db.accounts.find_one({"_id": aid})
        assert account is not None
        assert account["phone_hash"] == cipher.lookup_hash(phone, kind="phone")
        assert account["phone_hash"] != cipher.lookup_hash(phone, kind="national_id")
        assert cipher.decrypt(account["phone_enc"], context="account.phone", record_id=aid) == phone

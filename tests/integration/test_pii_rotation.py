"""PII key rotation: values under an old key are rewritten under the active one."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo import AsyncMongoClient

from shared.crypto import FieldCipher, generate_key
from shared.pii_rotation import EncryptedField, reencrypt_fields

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
            {"_id": f"p{n}", "national_id_enc": before.encrypt(v, context="patient.national_id")}
            for n, v in enumerate(ids)
        ]
        + [{"_id": "fresh", "national_id_enc": after.encrypt("x", context="patient.national_id")}]
        + [{"_id": "none"}]
    )

    first = await reencrypt_fields(db, after, FIELDS, limit=3)
    assert first.active_key == "k2"
    assert (first.fields[0].scanned, first.fields[0].reencrypted, first.remaining) == (6, 3, 2)
    second = await reencrypt_fields(db, after, FIELDS)
    assert (second.fields[0].reencrypted, second.remaining) == (2, 0)

    only_new = FieldCipher.from_settings(f"k2:{new_key}", hash_key)  # the old key may now go
    docs = await db.patients.find({"national_id_enc": {"$type": "string"}}).sort("_id").to_list()
    plain = [only_new.decrypt(d["national_id_enc"], context="patient.national_id") for d in docs]
    assert sorted(plain) == sorted([*ids, "x"])
    third = await reencrypt_fields(db, only_new, FIELDS)
    assert (third.fields[0].reencrypted, third.fields[0].unreadable) == (0, 0)

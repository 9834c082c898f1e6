"""Re-encrypting personal data under the active key after a PII key rotation.

Rotation: add the new key first in ``pii_encryption_keys`` (``new:KEY,old:KEY``; the
first is active), restart, then have an operator call ``POST /v1/<service>/ops/pii/rotate``
until ``remaining`` is 0; then the old key may be dropped. Each rewrite is a
compare-and-set on the old token, so a concurrent update of the same field wins.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from pydantic import BaseModel

from shared.audit import AuditLog
from shared.crypto import DecryptionError, FieldCipher
from shared.mongo import Database
from shared.principal import Principal

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class EncryptedField:
    collection: str
    field: str
    context: str  # the AAD context the field is encrypted under


class FieldRotation(BaseModel):
    collection: str
    field: str
    scanned: int
    reencrypted: int
    unreadable: int


class RotationReport(BaseModel):
    active_key: str
    fields: list[FieldRotation]
    remaining: int  # still under an old key after this run (0: the old key may go)


async def reencrypt_fields(
    db: Database, cipher: FieldCipher, fields: list[EncryptedField], *, limit: int = 1000
) -> RotationReport:
    """Rewrite up to ``limit`` values per field that are not under the active key."""
    results: list[FieldRotation] = []
    remaining = 0
    for spec in fields:
        collection = db[spec.collection]
        scanned = rewritten = unreadable = 0
        cursor = collection.find({spec.field: {"$type": "string"}}, {spec.field: 1})
        async for doc in cursor:
            scanned += 1
            token = doc[spec.field]
            try:
                if not cipher.needs_rotation(token):
                    continue
                if rewritten >= limit:
                    remaining += 1
                    continue
                fresh = cipher.reencrypt(token, context=spec.context)
            except DecryptionError:
                unreadable += 1  # a key that is no longer configured: needs an operator
                continue
            result = await collection.update_one(
                {"_id": doc["_id"], spec.field: token}, {"$set": {spec.field: fresh}}
            )
            rewritten += result.modified_count
        results.append(
            FieldRotation(
                collection=spec.collection,
                field=spec.field,
                scanned=scanned,
                reencrypted=rewritten,
                unreadable=unreadable,
            )
        )
        log.info(
            "pii.rotated",
            collection=spec.collection,
            field=spec.field,
            scanned=scanned,
            reencrypted=rewritten,
            unreadable=unreadable,
        )
    return RotationReport(active_key=cipher.active_kid, fields=results, remaining=remaining)


async def rotate_audited(
    db: Database,
    cipher: FieldCipher,
    fields: list[EncryptedField],
    *,
    audit: AuditLog,
    admin: Principal,
    limit: int,
) -> RotationReport:
    """One batch of :func:`reencrypt_fields` as an operator's action, with its audit record."""
    report = await reencrypt_fields(db, cipher, fields, limit=limit)
    await audit.record(
        admin,
        "pii.rotate",
        patient_id=None,
        resource="pii",
        details={"remaining": report.remaining, "active_key": report.active_key},
    )
    return report

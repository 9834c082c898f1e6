"""Re-encrypting personal data under the active key after a PII key rotation, and
upgrading what older versions stored.

Rotation: add the new key first in ``pii_encryption_keys`` (``new:KEY,old:KEY``; the
first is active), restart, then have an operator call ``POST /v1/<service>/ops/pii/rotate``
until ``remaining`` is 0; then the old key may be dropped. Each rewrite is a
compare-and-set on the old token (and hash), so a concurrent update of the field wins.

The same call upgrades data from before the record binding (``shared/crypto.py``): ``v1``
tokens are re-encrypted as ``v2`` bound to their record's id, and lookup hashes made with
the single hash key are recomputed with their kind's key (decrypt, re-hash). Until
``remaining`` is 0 the services find such records through the legacy hash too.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from pydantic import BaseModel
from pymongo.errors import DuplicateKeyError

from shared.audit import AuditLog
from shared.crypto import DecryptionError, FieldCipher
from shared.mongo import Database, Document
from shared.principal import Principal

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class EncryptedField:
    collection: str
    field: str
    context: str  # the AAD context the field is encrypted under
    # the field holding the record id the token is bound to (None: bound to none)
    record_id_field: str | None = "_id"
    # the lookup hash of the same value, and its kind (shared.crypto.LOOKUP_KINDS)
    hash_field: str | None = None
    hash_kind: str | None = None


class FieldRotation(BaseModel):
    collection: str
    field: str
    scanned: int
    reencrypted: int
    unreadable: int
    rehashed: int = 0  # lookup hashes recomputed with their kind's key
    conflicts: int = 0  # re-hash refused by a unique index: two records of one value


class RotationReport(BaseModel):
    active_key: str
    fields: list[FieldRotation]
    remaining: int  # still under an old key after this run (0: the old key may go)


async def reencrypt_fields(
    db: Database, cipher: FieldCipher, fields: list[EncryptedField], *, limit: int = 1000
) -> RotationReport:
    """Rewrite up to ``limit`` records per field whose token is not ``v2`` under the active
    key or whose lookup hash is not the current one."""
    results: list[FieldRotation] = []
    remaining = 0
    for spec in fields:
        counts = {"scanned": 0, "reencrypted": 0, "unreadable": 0, "rehashed": 0, "conflicts": 0}
        rewritten = 0  # records
        projection = {
            name: 1 for name in (spec.field, spec.record_id_field, spec.hash_field) if name
        }
        cursor = db[spec.collection].find({spec.field: {"$type": "string"}}, projection)
        async for doc in cursor:
            counts["scanned"] += 1
            try:
                update = _upgrade(cipher, spec, doc)
            except DecryptionError:
                counts["unreadable"] += 1  # a key that is no longer configured: an operator's
                continue
            if not update:
                continue
            if rewritten >= limit:
                remaining += 1
                continue
            match = {"_id": doc["_id"], spec.field: doc[spec.field]}
            if spec.hash_field:
                match[spec.hash_field] = doc.get(spec.hash_field)
            try:
                result = await db[spec.collection].update_one(match, {"$set": update})
            except DuplicateKeyError:
                counts["conflicts"] += 1
                continue
            if result.modified_count:
                rewritten += 1
                counts["reencrypted"] += spec.field in update
                counts["rehashed"] += bool(spec.hash_field and spec.hash_field in update)
        results.append(FieldRotation(collection=spec.collection, field=spec.field, **counts))
        log.info("pii.rotated", collection=spec.collection, field=spec.field, **counts)
    return RotationReport(active_key=cipher.active_kid, fields=results, remaining=remaining)


def _upgrade(cipher: FieldCipher, spec: EncryptedField, doc: Document) -> dict[str, str]:
    """The new token and hash of one record, where they change (empty: up to date)."""
    token = doc[spec.field]
    record_id = str(doc.get(spec.record_id_field, "")) if spec.record_id_field else ""
    update: dict[str, str] = {}
    stale = cipher.needs_rotation(token)
    if not stale and not (spec.hash_field and spec.hash_kind):
        return update
    plaintext = cipher.decrypt(token, context=spec.context, record_id=record_id)
    if stale:
        update[spec.field] = cipher.encrypt(plaintext, context=spec.context, record_id=record_id)
    if spec.hash_field and spec.hash_kind:
        fresh = cipher.lookup_hash(plaintext, kind=spec.hash_kind)
        if doc.get(spec.hash_field) != fresh:
            update[spec.hash_field] = fresh
    return update


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

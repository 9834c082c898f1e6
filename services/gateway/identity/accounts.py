"""Accounts in the gateway's own database: patients (by phone or WeChat) and staff.

Patient accounts hold no name or national ID (those belong to the 就诊人 in appointments):
only the phone number, encrypted, found through a keyed hash, and shown masked.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from services.gateway.store import PATIENT_ACCOUNTS, STAFF_ACCOUNTS
from shared.crypto import FieldCipher
from shared.ids import new_id
from shared.mongo import Database, Document
from shared.pii_rotation import EncryptedField
from shared.principal import Role
from shared.privacy import mask_phone

PHONE_CONTEXT = "account.phone"
# re-encrypted after a PII key rotation (routes/ops.py)
ENCRYPTED_FIELDS = [
    EncryptedField(
        PATIENT_ACCOUNTS, "phone_enc", PHONE_CONTEXT, hash_field="phone_hash", hash_kind="phone"
    )
]


class PatientAccounts:
    def __init__(self, db: Database, cipher: FieldCipher) -> None:
        self.collection = db[PATIENT_ACCOUNTS]
        self.cipher = cipher

    async def for_phone(self, phone: str) -> Document:
        """The account of ``phone``, opened on first login."""
        now = datetime.now(UTC)
        phone_hash, legacy_hash = self.cipher.lookup_hashes(phone, kind="phone")
        for _ in range(2):  # a concurrent first login may win the insert
            found = await self.collection.find_one_and_update(
                {"phone_hash": {"$in": [phone_hash, legacy_hash]}},  # legacy: until rotated
                {"$set": {"last_login_at": now}},
                return_document=ReturnDocument.AFTER,
            )
            if found is not None:
                return found
            account_id = "pa-" + new_id()
            doc = {
                "_id": account_id,
                "phone_hash": phone_hash,
                "phone_enc": self.cipher.encrypt(
                    phone, context=PHONE_CONTEXT, record_id=account_id
                ),
                "phone_masked": mask_phone(phone),
                "created_at": now,
                "last_login_at": now,
                "disabled": False,
            }
            try:
                await self.collection.insert_one(doc)
                return doc
            except DuplicateKeyError:
                continue
        raise RuntimeError("patient account could not be opened")

    async def for_openid(self, openid: str, unionid: str | None) -> tuple[Document, bool]:
        """The account bound to a WeChat openid, opened on first login; (account, new)."""
        now = datetime.now(UTC)
        found = await self.collection.find_one_and_update(
            {"wechat_openid": openid},
            {"$set": {"last_login_at": now}},
            return_document=ReturnDocument.AFTER,
        )
        if found is not None:
            return found, False
        doc = {
            "_id": "pa-" + new_id(),
            "wechat_openid": openid,
            "wechat_unionid": unionid,
            "created_at": now,
            "last_login_at": now,
            "disabled": False,
        }
        try:
            await self.collection.insert_one(doc)
        except DuplicateKeyError:
            again = await self.collection.find_one({"wechat_openid": openid})
            if again is None:
                raise
            return again, False
        return doc, True

    async def get(self, account_id: str) -> Document | None:
        return await self.collection.find_one({"_id": account_id})


class StaffAccounts:
    def __init__(self, db: Database) -> None:
        self.collection = db[STAFF_ACCOUNTS]

    async def by_username(self, username: str) -> Document | None:
        return await self.collection.find_one({"username": username.strip().lower()})

    async def get(self, staff_id: str) -> Document | None:
        return await self.collection.find_one({"_id": staff_id})

    async def count(self) -> int:
        return await self.collection.count_documents({})

    async def create(
        self,
        *,
        username: str,
        password_hash: str,
        roles: list[Role],
        org_id: str | None,
        display_name: str,
        created_by: str,
    ) -> Document | None:
        """The new account, or ``None`` when the username is taken."""
        now = datetime.now(UTC)
        doc: Document = {
            "_id": "st-" + new_id(),
            "username": username.strip().lower(),
            "password_hash": password_hash,
            "roles": sorted(r.value for r in roles),
            "org_id": org_id,
            "display_name": display_name,
            "disabled": False,
            "failed_logins": 0,
            "locked_until": None,
            "password_changed_at": now,
            "created_at": now,
            "created_by": created_by,
            "updated_at": now,
            "version": 1,
        }
        try:
            await self.collection.insert_one(doc)
        except DuplicateKeyError:
            return None
        return doc

    async def update(self, staff_id: str, version: int | None, changes: dict[str, Any]) -> Document:
        """Apply ``changes`` if the account is still at ``version`` (None: any version).

        Raises ``LookupError`` when the account is missing, ``ValueError`` on a version clash.
        """
        query: dict[str, Any] = {"_id": staff_id}
        if version is not None:
            query["version"] = version
        updated = await self.collection.find_one_and_update(
            query,
            {"$set": {**changes, "updated_at": datetime.now(UTC)}, "$inc": {"version": 1}},
            return_document=ReturnDocument.AFTER,
        )
        if updated is not None:
            return updated
        if await self.get(staff_id) is None:
            raise LookupError(staff_id)
        raise ValueError("version")

    async def record_failure(self, staff_id: str, *, limit: int, lockout: timedelta) -> Document:
        """Count a failed login; the ``limit``-th in a row locks the account for ``lockout``."""
        doc = await self.collection.find_one_and_update(
            {"_id": staff_id},
            {"$inc": {"failed_logins": 1}},
            return_document=ReturnDocument.AFTER,
        )
        if doc is not None and doc["failed_logins"] >= limit:
            until = datetime.now(UTC) + lockout
            doc = await self.collection.find_one_and_update(
                {"_id": staff_id},
                {"$set": {"locked_until": until, "failed_logins": 0}},
                return_document=ReturnDocument.AFTER,
            )
        assert doc is not None
        return doc

    async def record_success(self, staff_id: str, new_hash: str | None) -> None:
        changes: dict[str, Any] = {"failed_logins": 0, "last_login_at": datetime.now(UTC)}
        if new_hash:
            changes["password_hash"] = new_hash
        await self.collection.update_one({"_id": staff_id}, {"$set": changes})

    async def list(
        self, *, limit: int, after: str | None, role: Role | None, org_id: str | None = None
    ) -> list[Document]:
        """A page of accounts by id; ``org_id`` confines it to one organization's staff."""
        query: dict[str, Any] = {}
        if org_id is not None:
            query["org_id"] = org_id
        if after:
            query["_id"] = {"$gt": after}
        if role:
            query["roles"] = role.value
        cursor = self.collection.find(query).sort("_id", 1).limit(limit)
        return [doc async for doc in cursor]

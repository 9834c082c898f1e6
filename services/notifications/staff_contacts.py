"""Staff contacts: how to reach a staff member (a doctor) with an alert.

One record per staff id (the staff account id, the token's subject), kept by the HIS or
an organization's admin: the organization, the phone number (encrypted, bound to the
record, like patients' phones; only its masked form is ever shown), an optional WeChat
openid and the language of the alerts. Every change and read is audited with the change,
in its transaction; an organization's admin reaches its own organization's staff only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field

from services.notifications.store import STAFF_CONTACTS
from shared.audit import AuditLog
from shared.crypto import FieldCipher
from shared.mongo import Database, Document, Session
from shared.outbox import Outbox, Tx
from shared.principal import Principal
from shared.privacy import mask_phone
from shared.problems import NotFound
from shared.scoping import ensure_org

STAFF_PHONE_CONTEXT = "staff_contact.phone"  # AES-GCM context, bound to the staff id
PHONE_PATTERN = r"^1[3-9]\d{9}$"  # a mainland mobile number: SMS and voice calls


class StaffContactIn(BaseModel):
    """A staff member's contact, replaced whole."""

    org_id: str = Field(min_length=1, max_length=64)
    phone: str = Field(pattern=PHONE_PATTERN, description="mainland mobile number")
    wechat_openid: str | None = Field(None, min_length=1, max_length=128)
    language: Literal["zh-CN", "en"] = "zh-CN"


class StaffContactOut(BaseModel):
    """A staff contact as it is shown: the phone masked, the openid only as bound or not."""

    staff_id: str
    org_id: str
    phone_masked: str
    wechat_bound: bool
    language: str
    updated_at: datetime


def to_view(doc: Document) -> StaffContactOut:
    return StaffContactOut(
        staff_id=doc["_id"],
        org_id=doc["org_id"],
        phone_masked=doc["phone_masked"],
        wechat_bound=bool(doc.get("wechat_openid")),
        language=doc.get("language") or "zh-CN",
        updated_at=doc["updated_at"],
    )


def not_found() -> NotFound:
    return NotFound("staff_contact_not_found", "no contact on file for this staff member")


class StaffContacts:
    def __init__(self, db: Database, cipher: FieldCipher, outbox: Outbox, audit: AuditLog) -> None:
        self.collection = db[STAFF_CONTACTS]
        self.cipher = cipher
        self.outbox = outbox
        self.audit = audit

    async def get(self, staff_id: str, session: Session | None = None) -> Document | None:
        return await self.collection.find_one({"_id": staff_id}, session=session)

    def phone_of(self, contact: Document) -> str | None:
        if not contact.get("phone_enc"):
            return None
        return self.cipher.decrypt(
            contact["phone_enc"], context=STAFF_PHONE_CONTEXT, record_id=contact["_id"]
        )

    async def put(self, caller: Principal, staff_id: str, body: StaffContactIn) -> StaffContactOut:
        """Create or replace; an organization's admin may neither write a contact for
        another organization nor take over one that another organization holds."""
        ensure_org(caller, body.org_id)

        async def work(tx: Tx) -> Document:
            existing = await self.get(staff_id, tx.session)
            if existing is not None:
                ensure_org(caller, existing.get("org_id"))
            doc: Document = {
                "_id": staff_id,
                "org_id": body.org_id,
                "phone_enc": self.cipher.encrypt(
                    body.phone, context=STAFF_PHONE_CONTEXT, record_id=staff_id
                ),
                "phone_masked": mask_phone(body.phone),
                "wechat_openid": body.wechat_openid,
                "language": body.language,
                "updated_at": datetime.now(UTC),
            }
            await self.collection.replace_one(
                {"_id": staff_id}, doc, upsert=True, session=tx.session
            )
            moved = existing is not None and existing.get("org_id") != body.org_id
            await self.audit.record(
                caller,
                "notification.staff_contact.put",
                patient_id=None,
                resource=f"staff_contact:{staff_id}",
                reason="maintain a staff contact",
                details={
                    "created": existing is None,
                    "moved_from": existing.get("org_id") if moved and existing else None,
                    "wechat": body.wechat_openid is not None,
                    "language": body.language,
                },
                session=tx.session,
                org_id=body.org_id,
            )
            return doc

        return to_view(await self.outbox.transaction(work))

    async def read(self, caller: Principal, staff_id: str) -> StaffContactOut:
        doc = await self.get(staff_id)
        if doc is None:
            raise not_found()
        ensure_org(caller, doc.get("org_id"))
        await self.audit.record(
            caller,
            "notification.staff_contact.read",
            patient_id=None,
            resource=f"staff_contact:{staff_id}",
            reason="read a staff contact",
            org_id=doc.get("org_id"),
        )
        return to_view(doc)

    async def delete(self, caller: Principal, staff_id: str) -> None:
        async def work(tx: Tx) -> None:
            doc = await self.get(staff_id, tx.session)
            if doc is None:
                raise not_found()
            ensure_org(caller, doc.get("org_id"))
            await self.collection.delete_one({"_id": staff_id}, session=tx.session)
            await self.audit.record(
                caller,
                "notification.staff_contact.delete",
                patient_id=None,
                resource=f"staff_contact:{staff_id}",
                reason="remove a staff contact",
                session=tx.session,
                org_id=doc.get("org_id"),
            )

        await self.outbox.transaction(work)

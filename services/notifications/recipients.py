"""Who a message reaches: the accounts that manage a patient, their phone and WeChat openid.

The appointments service owns real-name patients; it tells us about each one with
``patient.registered`` / ``patient.unlinked``, carrying the phone number encrypted (never in
clear on Kafka). The mini-program binds an account's WeChat openid here.
"""

from __future__ import annotations

from datetime import UTC, datetime

from services.notifications.store import ACCOUNTS, MESSAGES, RECIPIENTS
from shared.crypto import FieldCipher
from shared.mongo import Database, Document, Session
from shared.outbox import Tx
from shared.patient_projection import registration_update
from shared.principal import Principal, Role
from shared.problems import Forbidden
from shared.scoping import other_org, sees_every_org

PHONE_CONTEXT = "patient.phone"  # the AES-GCM context the appointments service encrypts with


def forbidden() -> Forbidden:
    return Forbidden(
        "forbidden_patient", "you may not act for this patient", detail_zh="无权查看该就诊人"
    )


class Recipients:
    def __init__(self, db: Database, cipher: FieldCipher) -> None:
        self.patients = db[RECIPIENTS]
        self.accounts = db[ACCOUNTS]
        self.messages = db[MESSAGES]
        self.cipher = cipher

    async def patient_registered(
        self,
        session: Session,
        *,
        patient_id: str,
        account_id: str | None,
        phone_enc: str,
        phone_masked: str,
    ) -> None:
        fields = {"phone_enc": phone_enc, "phone_masked": phone_masked}
        await self.patients.update_one(
            {"_id": patient_id},
            registration_update(account_id, {**fields, "updated_at": datetime.now(UTC)}),
            upsert=True,
            session=session,
        )

    async def patient_unlinked(self, session: Session, *, patient_id: str, account_id: str) -> None:
        await self.patients.update_one(
            {"_id": patient_id}, {"$pull": {"account_ids": account_id}}, session=session
        )

    async def get(self, patient_id: str, session: Session | None = None) -> Document | None:
        return await self.patients.find_one({"_id": patient_id}, session=session)

    async def first_account(self, patient_id: str | None, tx: Tx) -> str | None:
        """The account that first added the patient: it gets the inbox item and WeChat
        message of an event that names no account (a referral's: the referrals service acts
        for no account). ``None`` for a patient not known here."""
        if not patient_id:
            return None
        doc = await self.patients.find_one({"_id": patient_id}, session=tx.session)
        accounts: list[str] = (doc or {}).get("account_ids") or []
        return accounts[0] if accounts else None

    def phone_of(self, recipient: Document | None) -> str | None:
        if not recipient or not recipient.get("phone_enc"):
            return None
        return self.cipher.decrypt(
            recipient["phone_enc"], context=PHONE_CONTEXT, record_id=recipient["_id"]
        )

    async def bind_wechat(self, account_id: str, openid: str) -> None:
        await self.accounts.update_one(
            {"_id": account_id},
            {"$set": {"wechat_openid": openid, "updated_at": datetime.now(UTC)}},
            upsert=True,
        )

    async def wechat_openid(
        self, account_id: str | None, session: Session | None = None
    ) -> str | None:
        if not account_id:
            return None
        doc = await self.accounts.find_one({"_id": account_id}, session=session)
        return doc.get("wechat_openid") if doc else None

    async def check_access(self, principal: Principal, patient_id: str) -> None:
        """An account reaches the patients it manages. Staff reach a patient their own
        organization has sent messages to (``shared.scoping``: where the patient is
        treated); alliance admins and services every patient. 403 otherwise."""
        if principal.is_staff or Role.SERVICE in principal.roles:
            if sees_every_org(principal) or await self._messaged_by(principal.org_id, patient_id):
                return
            raise other_org()
        doc = await self.patients.find_one({"_id": patient_id, "account_ids": principal.subject})
        if doc is None:
            raise forbidden()

    async def _messaged_by(self, org_id: str | None, patient_id: str) -> bool:
        if org_id is None:
            return False
        query = {"patient_id": patient_id, "org_id": org_id}
        return await self.messages.count_documents(query, limit=1) > 0

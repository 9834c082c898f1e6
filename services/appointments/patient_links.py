"""Proof before linking: an account adds a real-name patient only once it shows control.

A patient is registered once for the whole alliance. Knowing someone's name and national ID
is not proof of anything, so adding a patient to an account takes one of:

* a code texted to the phone on record (the phone given, for a patient the hospital does
  not know yet): ``request`` then ``confirm``;
* a link that a counter or the hotline verified in person or on the phone (``Patients.register``
  with the organization, called by the staff route; audited there), which also covers
  children and elders without a phone of their own, linked through a verified guardian.

``request`` answers the same whatever the hospital knows: a national ID that is not on
record, one whose name does not match (no code is sent, none can succeed) and one that is
all look alike to the caller. Until the code is confirmed the account sees nothing of the
patient. Codes are kept only as keyed hashes; five wrong tries end a verification.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field
from pymongo import ReturnDocument

from services.appointments.events import PatientVerificationRequested
from services.appointments.patients import PatientIn, Patients, checked_national_id
from services.appointments.store import PATIENT_VERIFICATIONS
from shared.crypto import FieldCipher
from shared.events import make_event
from shared.ids import new_id
from shared.mongo import Database, Document
from shared.outbox import Outbox, Tx
from shared.privacy import mask_phone, normalize_national_id
from shared.problems import Conflict, NotFound, TooManyRequests, Unprocessable

CODE_MINUTES = 10
MAX_TRIES = 5
MAX_REQUESTS_PER_HOUR = 5  # per account: each may text someone
PHONE_CONTEXT = "patient_verification.phone"  # AES-GCM context of the event's phone
CODE_CONTEXT = "patient_verification.code"


class LinkRequested(BaseModel):
    """The same answer whether or not the hospital knows the national ID."""

    verification_id: str
    expires_at: datetime
    detail: str = Field(
        "If the name and national ID are right, a code was texted to the phone number on "
        "record for this patient (the number given, for a patient new to the hospital). "
        "Confirm it to add the patient."
    )


class CodeIn(BaseModel):
    code: str = Field(pattern=r"^\d{6}$")


def verification_not_found() -> NotFound:
    return NotFound(
        "verification_not_found", "no such verification", detail_zh="验证请求不存在或已失效"
    )


class PatientLinks:
    def __init__(self, db: Database, cipher: FieldCipher, outbox: Outbox, patients: Patients):
        self.collection = db[PATIENT_VERIFICATIONS]
        self.cipher = cipher
        self.outbox = outbox
        self.patients = patients

    def _code_hash(self, verification_id: str, code: str) -> str:
        material = f"patient-verification:{verification_id}:{code}"
        return self.cipher.lookup_hash(material, kind="verification_code")

    async def request(
        self, account_id: str, data: PatientIn, *, max_per_account: int, now: datetime
    ) -> LinkRequested:
        """Start a verification; text its code when the record (if any) matches the name."""
        await self.patients.check_room(account_id, max_per_account)
        national_id = normalize_national_id(checked_national_id(data.national_id))
        since = now - timedelta(hours=1)
        recent = {"account_id": account_id, "created_at": {"$gte": since}}
        if await self.collection.count_documents(recent) >= MAX_REQUESTS_PER_HOUR:
            raise TooManyRequests(
                "verification_rate_limited",
                f"at most {MAX_REQUESTS_PER_HOUR} patient verifications an hour per account",
                retry_after=600,
                detail_zh="验证请求过于频繁，请稍后再试",
            )
        existing = await self.patients.find_by_national_id(national_id)
        relation = await self.patients.relation_for(account_id, data.relation, existing)
        phone = data.phone if existing is None else self.patients.reveal_phone(existing)
        deliverable = existing is None or existing["name"] == data.name
        vid, code = new_id(), f"{secrets.randbelow(10**6):06d}"
        expires_at = now + timedelta(minutes=CODE_MINUTES)
        doc: dict[str, Any] = {
            "_id": vid,
            "account_id": account_id,
            "patient_id": existing["_id"] if existing else None,
            "name": data.name,
            "national_id_enc": self.cipher.encrypt(
                national_id, context="patient.national_id", record_id=vid
            ),
            "phone_enc": self.cipher.encrypt(data.phone, context="patient.phone", record_id=vid),
            "relation": relation,
            "code_hash": self._code_hash(vid, code) if deliverable else None,
            "tries": 0,
            "used": False,
            "created_at": now,
            "expires_at": expires_at,
        }
        event = PatientVerificationRequested(
            verification_id=vid,
            account_id=account_id,
            phone_enc=self.cipher.encrypt(phone, context=PHONE_CONTEXT, record_id=vid),
            phone_masked=mask_phone(phone),
            code_enc=self.cipher.encrypt(code, context=CODE_CONTEXT, record_id=vid),
            minutes=CODE_MINUTES,
        )

        async def work(tx: Tx) -> None:
            await self.collection.insert_one(doc, session=tx.session)
            if deliverable:  # a mismatched name gets the same answer and no text
                envelope = make_event(event, source="appointments", subject=vid)
                tx.emit(envelope.model_copy(update={"id": vid}))  # one event a verification

        await self.outbox.transaction(work)
        return LinkRequested(verification_id=vid, expires_at=expires_at)

    async def confirm(
        self, account_id: str, verification_id: str, code: str, *, max_per_account: int
    ) -> Document:
        """The code texted for the verification: the patient is added to the account."""
        now = datetime.now(UTC)
        doc = await self.collection.find_one_and_update(  # the try is spent before checking
            {"_id": verification_id, "account_id": account_id, "used": False},
            {"$inc": {"tries": 1}},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            raise verification_not_found()
        expires_at = doc["expires_at"].replace(tzinfo=UTC)
        if doc["tries"] > MAX_TRIES or expires_at <= now:
            raise Conflict(
                "verification_expired",
                "this verification has expired or had too many wrong codes: start again",
                detail_zh="验证码已失效，请重新获取",
            )
        wanted = doc.get("code_hash")
        if wanted is None or not hmac.compare_digest(wanted, self._code_hash(doc["_id"], code)):
            raise Unprocessable(
                "verification_code_invalid",
                "the code is not right",
                detail_zh="验证码不正确",
                extra={"tries_left": max(0, MAX_TRIES - doc["tries"])},
            )
        # linked first, spent after: a crash between the two leaves a code that links the
        # same patient again (idempotent), never a spent code with no patient
        patient = await self._add(doc, max_per_account)
        await self.collection.update_one(
            {"_id": doc["_id"]}, {"$set": {"used": True, "used_at": now}}
        )
        return patient

    async def _add(self, doc: Document, max_per_account: int) -> Document:
        data = PatientIn(
            name=doc["name"],
            national_id=self.cipher.decrypt(
                doc["national_id_enc"], context="patient.national_id", record_id=doc["_id"]
            ),
            phone=self.cipher.decrypt(
                doc["phone_enc"], context="patient.phone", record_id=doc["_id"]
            ),
            relation=doc["relation"],
        )
        patient = await self.patients.find_by_national_id(data.national_id)
        if patient is not None and doc["account_id"] in patient.get("account_ids", []):
            return patient  # linked by this verification before a crash, or otherwise
        if (patient["_id"] if patient else None) != doc["patient_id"]:
            # registered by someone else since: the code went to a phone that proves nothing
            raise Conflict(
                "verification_stale",
                "the patient's record changed meanwhile: start again",
                detail_zh="就诊人信息已变化，请重新验证",
            )
        return await self.patients.register(
            doc["account_id"], data, max_per_account=max_per_account
        )

"""Real-name patients (就诊人): validated national ID, encrypted at rest, found by keyed hash.

One account manages several patients (family members) up to the policy's cap. A patient
known to the hospital (same national ID) is linked to a further account only when the
name matches too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field, field_validator
from pymongo.errors import DuplicateKeyError

from services.appointments.events import PatientRegistered, PatientUnlinked
from services.appointments.store import PATIENTS
from shared.crypto import FieldCipher
from shared.events import make_event
from shared.ids import new_id
from shared.mongo import Database, Document
from shared.outbox import Outbox, Tx
from shared.principal import Principal
from shared.privacy import (
    InvalidNationalId,
    birth_date_of,
    mask_name,
    mask_national_id,
    mask_phone,
    normalize_national_id,
    parse_national_id,
    sex_of,
)
from shared.problems import Conflict, Forbidden, NotFound, Unprocessable

PHONE_PATTERN = r"^1[3-9]\d{9}$"


class PatientIn(BaseModel):
    name: str = Field(min_length=1, max_length=40)
    national_id: str = Field(min_length=18, max_length=18)
    phone: str = Field(pattern=PHONE_PATTERN)
    relation: str = Field("self", pattern=r"^(self|spouse|child|parent|other)$")

    @field_validator("national_id")
    @classmethod
    def _checksum(cls, value: str) -> str:
        try:
            return parse_national_id(value)
        except InvalidNationalId as exc:
            raise ValueError("not a valid national ID (GB 11643 checksum or birth date)") from exc


class PatientOut(BaseModel):
    id: str
    name: str
    national_id_masked: str
    phone_masked: str
    sex: str
    birth_date: str
    relation: str


def to_out(doc: Document, account_id: str | None) -> PatientOut:
    relations = doc.get("relations", {})
    return PatientOut(
        id=doc["_id"],
        name=doc["name"],
        national_id_masked=doc["national_id_masked"],
        phone_masked=doc["phone_masked"],
        sex=doc["sex"],
        birth_date=doc["birth_date"],
        relation=relations.get(account_id or "", "self"),
    )


class Patients:
    def __init__(self, db: Database, cipher: FieldCipher, outbox: Outbox) -> None:
        self.collection = db[PATIENTS]
        self.cipher = cipher
        self.outbox = outbox

    async def register(self, account_id: str, data: PatientIn, *, max_per_account: int) -> Document:
        if await self.collection.count_documents({"account_ids": account_id}) >= max_per_account:
            raise Conflict(
                "patient_limit",
                f"an account manages at most {max_per_account} patients",
                detail_zh=f"每个账号最多添加 {max_per_account} 位就诊人",
            )
        national_id = normalize_national_id(data.national_id)
        lookup = self.cipher.lookup_hash_national_id(national_id)
        existing = await self.collection.find_one({"national_id_hash": lookup})
        if existing is not None:
            return await self._link(existing, account_id, data)
        now = datetime.now(UTC)
        doc: dict[str, Any] = {
            "_id": new_id(),
            "name": data.name,
            "national_id_enc": self.cipher.encrypt(national_id, context="patient.national_id"),
            "national_id_hash": lookup,
            "national_id_masked": mask_national_id(national_id),
            "phone_enc": self.cipher.encrypt(data.phone, context="patient.phone"),
            "phone_masked": mask_phone(data.phone),
            "sex": sex_of(national_id),
            "birth_date": birth_date_of(national_id).isoformat(),
            "account_ids": [account_id],
            "relations": {account_id: data.relation},
            "created_at": now,
        }

        async def work(tx: Tx) -> None:
            await self.collection.insert_one(doc, session=tx.session)
            self._registered(tx, doc, account_id, data.relation)

        try:
            await self.outbox.transaction(work)
        except DuplicateKeyError:  # registered by another account at the same moment
            existing = await self.collection.find_one({"national_id_hash": lookup})
            assert existing is not None
            return await self._link(existing, account_id, data)
        return doc

    async def _link(self, existing: Document, account_id: str, data: PatientIn) -> Document:
        if existing["name"] != data.name:
            raise Unprocessable(
                "patient_identity_mismatch",
                "the name does not match the national ID on record",
                detail_zh="姓名与证件号码不一致",
            )

        async def work(tx: Tx) -> None:
            await self.collection.update_one(
                {"_id": existing["_id"]},
                {
                    "$addToSet": {"account_ids": account_id},
                    "$set": {f"relations.{account_id}": data.relation},
                },
                session=tx.session,
            )
            self._registered(tx, existing, account_id, data.relation)

        await self.outbox.transaction(work)
        existing.setdefault("relations", {})[account_id] = data.relation
        return existing

    @staticmethod
    def _registered(tx: Tx, doc: Document, account_id: str, relation: str) -> None:
        event = PatientRegistered(
            patient_id=doc["_id"],
            account_id=account_id,
            relation=relation,
            phone_enc=doc["phone_enc"],
            phone_masked=doc["phone_masked"],
        )
        tx.emit(make_event(event, source="appointments", subject=doc["_id"]))

    async def for_account(self, account_id: str) -> list[Document]:
        return await self.collection.find({"account_ids": account_id}).sort("_id", 1).to_list()

    async def get(self, patient_id: str) -> Document:
        doc = await self.collection.find_one({"_id": patient_id})
        if doc is None:
            raise NotFound("patient_not_found", "no such patient", detail_zh="就诊人不存在")
        return doc

    async def get_for(self, principal: Principal, patient_id: str) -> Document:
        """The patient, if the caller may act for them (own family or staff); else 404/403."""
        doc = await self.get(patient_id)
        if principal.is_staff or principal.subject in doc.get("account_ids", []):
            return doc
        raise Forbidden(
            "forbidden_patient", "you may not act for this patient", detail_zh="无权操作该就诊人"
        )

    async def unlink(self, account_id: str, patient_id: str) -> None:
        async def work(tx: Tx) -> None:
            result = await self.collection.update_one(
                {"_id": patient_id, "account_ids": account_id},
                {"$pull": {"account_ids": account_id}, "$unset": {f"relations.{account_id}": ""}},
                session=tx.session,
            )
            if result.matched_count == 0:
                raise NotFound("patient_not_found", "no such patient on this account")
            unlinked = PatientUnlinked(patient_id=patient_id, account_id=account_id)
            tx.emit(make_event(unlinked, source="appointments", subject=patient_id))

        await self.outbox.transaction(work)

    async def find_by_national_id(self, national_id: str) -> Document | None:
        return await self.collection.find_one(
            {"national_id_hash": self.cipher.lookup_hash_national_id(national_id)}
        )

    def reveal_national_id(self, doc: Document) -> str:
        return self.cipher.decrypt(doc["national_id_enc"], context="patient.national_id")

    def reveal_phone(self, doc: Document) -> str:
        return self.cipher.decrypt(doc["phone_enc"], context="patient.phone")

    def masked_name(self, doc: Document) -> str:
        return mask_name(doc["name"])

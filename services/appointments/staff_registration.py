"""Staff register a caller or visitor who has no record yet: a real-name patient at the
staff member's organization, with no account.

The record is the one the alliance keeps for the national ID: when the patient later adds
themselves in the app (``patient_links``), the texted code goes to the phone on this
record and the account is linked to it. A national ID already on record with the same
name is that record, now treated at the organization too; with another name it is a 409
``identity_mismatch`` and nothing changes.

``patient.registered`` is published as by the other registration paths (consumers learn
the patient, its encrypted phone and national-ID hash), naming no account
(``account_id`` null).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field
from pymongo.errors import DuplicateKeyError

from services.appointments.events import PatientRegistered
from services.appointments.patients import NationalIdInput, Patients, checked_national_id
from shared.events import make_event
from shared.ids import new_id
from shared.mongo import Document
from shared.outbox import Tx
from shared.privacy import (
    birth_date_of,
    mask_national_id,
    mask_phone,
    normalize_national_id,
    sex_of,
)
from shared.problems import Conflict, Unprocessable

RELATION = "none"  # no account: the patient is nobody's family member yet


class StaffRegistrationIn(BaseModel):
    """Exactly one of ``phone`` and ``call_id`` (the hotline call the caller is on: the
    number is taken from the stored call and never goes to the browser)."""

    name: str = Field(min_length=1, max_length=40)
    national_id: NationalIdInput
    phone: str | None = Field(None, max_length=32)
    call_id: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[\w.:-]+$")


def identity_mismatch() -> Conflict:
    return Conflict(
        "identity_mismatch",
        "a patient with this national ID is on record under another name",
        detail_zh="该身份证号已登记，但姓名不一致",
    )


class StaffRegistration:
    def __init__(self, patients: Patients) -> None:
        self.patients = patients

    async def register(
        self, name: str, national_id: str, phone: str, org_id: str
    ) -> tuple[Document, bool]:
        """``(record, created)``: a new record, or the existing one of the same name."""
        name = name.strip()
        if not name:
            raise Unprocessable(
                "name_invalid", "a name is 1 to 40 characters", detail_zh="请填写姓名"
            )
        normalized = normalize_national_id(checked_national_id(national_id))
        existing = await self.patients.find_by_national_id(normalized)
        if existing is not None:
            return await self._treat_at(existing, name, org_id), False
        doc = self._new(name, normalized, phone, org_id)
        try:
            await self.patients.outbox.transaction(lambda tx: self._insert(tx, doc))
        except DuplicateKeyError:  # registered elsewhere at the same moment
            existing = await self.patients.find_by_national_id(normalized)
            assert existing is not None
            return await self._treat_at(existing, name, org_id), False
        if self.patients.on_register is not None:
            await self.patients.on_register(doc)
        return doc, True

    def _new(self, name: str, national_id: str, phone: str, org_id: str) -> dict[str, Any]:
        cipher, patient_id = self.patients.cipher, new_id()
        return {
            "_id": patient_id,
            "name": name,
            "national_id_enc": cipher.encrypt(
                national_id, context="patient.national_id", record_id=patient_id
            ),
            "national_id_hash": cipher.lookup_hash(national_id, kind="national_id"),
            "national_id_masked": mask_national_id(national_id),
            "phone_enc": cipher.encrypt(phone, context="patient.phone", record_id=patient_id),
            "phone_hash": self.patients.phone_hash(phone),
            "phone_masked": mask_phone(phone),
            "sex": sex_of(national_id),
            "birth_date": birth_date_of(national_id).isoformat(),
            "account_ids": [],
            "relations": {},
            "org_ids": [org_id],
            "registered_by_org": org_id,
            "created_at": datetime.now(UTC),
        }

    async def _insert(self, tx: Tx, doc: dict[str, Any]) -> None:
        await self.patients.collection.insert_one(doc, session=tx.session)
        registered = PatientRegistered(
            patient_id=doc["_id"],
            account_id=None,
            relation=RELATION,
            phone_enc=doc["phone_enc"],
            phone_masked=doc["phone_masked"],
            national_id_hash=doc["national_id_hash"],
        )
        tx.emit(make_event(registered, source="appointments", subject=doc["_id"]))

    async def _treat_at(self, existing: Document, name: str, org_id: str) -> Document:
        if existing["name"] != name:
            raise identity_mismatch()
        if org_id in existing.get("org_ids", []):
            return existing
        await self.patients.collection.update_one(
            {"_id": existing["_id"]}, {"$addToSet": {"org_ids": org_id}}
        )
        if self.patients.on_change is not None:
            await self.patients.on_change(existing["_id"])
        return {**existing, "org_ids": [*existing.get("org_ids", []), org_id]}

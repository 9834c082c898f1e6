"""Real-name patients (就诊人): validated national ID, encrypted at rest, found by keyed hash.

One account manages several patients (family members) up to the policy's cap. An account
adds a patient only with proof that it controls the record (``patient_links``): a code
texted to the phone on record, or a link a counter or the hotline verified. ``register``
is called once that proof is given.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field
from pymongo.errors import DuplicateKeyError

from services.appointments.events import PatientRegistered, PatientUnlinked
from services.appointments.patient_orgs import PatientOrgs
from services.appointments.store import APPOINTMENTS, PATIENTS
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
from shared.scoping import may_see_org, other_org

PHONE_PATTERN = r"^1[3-9]\d{9}$"
SELF = "self"
# a national ID is checked by the domain (422 national_id_invalid), never by the model's
# validation (validation_error): the same mistake gets the same code everywhere
NationalIdInput = Annotated[
    str, Field(max_length=64, description="18-character resident identity number")
]


def checked_national_id(value: str) -> str:
    """The normalized ID, or 422 ``national_id_invalid`` (the value is never echoed)."""
    try:
        return parse_national_id(value)
    except InvalidNationalId as exc:
        raise Unprocessable(
            "national_id_invalid",
            "not a valid national ID (GB 11643 checksum or birth date)",
            detail_zh="身份证号码无效",
        ) from exc


class PatientIn(BaseModel):
    name: str = Field(min_length=1, max_length=40)
    national_id: NationalIdInput
    phone: str = Field(pattern=PHONE_PATTERN)
    # omitted: "self" for the account's first such patient, "other" once one is "self"
    relation: str | None = Field(None, pattern=r"^(self|spouse|child|parent|other)$")


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
    """``on_change`` hears (after the commit) of a patient whose accounts changed."""

    def __init__(
        self,
        db: Database,
        cipher: FieldCipher,
        outbox: Outbox,
        on_change: Callable[[str], Awaitable[None]] | None = None,
        on_register: Callable[[Document], Awaitable[None]] | None = None,
    ) -> None:
        self.collection = db[PATIENTS]
        self.orgs = PatientOrgs(db)
        self.cipher = cipher
        self.outbox = outbox
        self.on_change = on_change
        self.on_register = on_register

    def _changed(self, tx: Tx, patient_id: str) -> None:
        if self.on_change is not None:
            on_change = self.on_change
            tx.after_commit.append(lambda: on_change(patient_id))

    async def check_room(self, account_id: str, max_per_account: int) -> None:
        """409 ``patient_limit`` when the account manages as many patients as it may."""
        if await self.collection.count_documents({"account_ids": account_id}) >= max_per_account:
            raise Conflict(
                "patient_limit",
                f"an account manages at most {max_per_account} patients",
                detail_zh=f"每个账号最多添加 {max_per_account} 位就诊人",
            )

    async def register(
        self,
        account_id: str,
        data: PatientIn,
        *,
        max_per_account: int,
        org_id: str | None = None,
    ) -> Document:
        """Add the patient to the account once control is proven: a new record, or a link
        to the existing one (its name must match). ``org_id``: the organization whose
        counter or hotline verified the link (its staff then see the patient)."""
        await self.check_room(account_id, max_per_account)
        national_id = normalize_national_id(checked_national_id(data.national_id))
        hashes = self.cipher.lookup_hashes(national_id, kind="national_id")  # new, legacy
        lookup = hashes[0]
        existing = await self.collection.find_one({"national_id_hash": {"$in": hashes}})
        relation = await self.relation_for(account_id, data.relation, existing)
        data = data.model_copy(update={"relation": relation})
        if existing is not None:
            return await self._link(existing, account_id, data, org_id)
        now, patient_id = datetime.now(UTC), new_id()
        doc: dict[str, Any] = {
            "_id": patient_id,
            "name": data.name,
            "national_id_enc": self.cipher.encrypt(
                national_id, context="patient.national_id", record_id=patient_id
            ),
            "national_id_hash": lookup,
            "national_id_masked": mask_national_id(national_id),
            "phone_enc": self.cipher.encrypt(
                data.phone, context="patient.phone", record_id=patient_id
            ),
            "phone_hash": self.phone_hash(data.phone),
            "phone_masked": mask_phone(data.phone),
            "sex": sex_of(national_id),
            "birth_date": birth_date_of(national_id).isoformat(),
            "account_ids": [account_id],
            "relations": {account_id: relation},
            "org_ids": [org_id] if org_id else [],
            "created_at": now,
        }

        async def work(tx: Tx) -> None:
            await self.collection.insert_one(doc, session=tx.session)
            self._registered(tx, doc, account_id, relation)
            if self.on_register is not None:
                on_register = self.on_register
                tx.after_commit.append(lambda: on_register(doc))

        try:
            await self.outbox.transaction(work)
        except DuplicateKeyError:  # registered by another account at the same moment
            existing = await self.collection.find_one({"national_id_hash": {"$in": hashes}})
            assert existing is not None
            return await self._link(existing, account_id, data, org_id)
        return doc

    async def relation_for(
        self, account_id: str, wanted: str | None, existing: Document | None
    ) -> str:
        """One ``self`` per account: a second one is a 409 ``self_already_registered``."""
        query: dict[str, Any] = {"account_ids": account_id, f"relations.{account_id}": SELF}
        if existing is not None:  # registering the same person again is not a second self
            query["_id"] = {"$ne": existing["_id"]}
        has_self = await self.collection.count_documents(query, limit=1) > 0
        if wanted is None:
            return "other" if has_self else SELF
        if wanted == SELF and has_self:
            raise Conflict(
                "self_already_registered",
                "this account already has a patient who is the account holder (relation self)",
                detail_zh="该账号已添加本人，其他就诊人请选择与本人的关系",
            )
        return wanted

    async def _link(
        self, existing: Document, account_id: str, data: PatientIn, org_id: str | None
    ) -> Document:
        if existing["name"] != data.name:
            raise Unprocessable(
                "patient_identity_mismatch",
                "the name does not match the national ID on record",
                detail_zh="姓名与证件号码不一致",
            )
        added: dict[str, Any] = {"account_ids": account_id}
        if org_id:
            added["org_ids"] = org_id

        async def work(tx: Tx) -> None:
            await self.collection.update_one(
                {"_id": existing["_id"]},
                {"$addToSet": added, "$set": {f"relations.{account_id}": data.relation}},
                session=tx.session,
            )
            self._registered(tx, existing, account_id, str(data.relation))
            self._changed(tx, existing["_id"])

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
            national_id_hash=doc.get("national_id_hash"),
        )
        tx.emit(make_event(event, source="appointments", subject=doc["_id"]))

    async def for_account(self, account_id: str) -> list[Document]:
        return await self.collection.find({"account_ids": account_id}).sort("_id", 1).to_list()

    async def get(self, patient_id: str) -> Document:
        doc = await self.collection.find_one({"_id": patient_id})
        if doc is None:
            raise NotFound("patient_not_found", "no such patient", detail_zh="就诊人不存在")
        return doc

    async def get_for(
        self, principal: Principal, patient_id: str, *, at_org: str | None = None
    ) -> Document:
        """The patient, if the caller may act for them; else 404/403.

        Accounts act for the patients they manage. Staff see a patient treated at their
        organization (``PatientOrgs``); ``at_org``: the organization where the
        action happens (a booking, a waitlist entry): staff of that organization may act
        for any patient there, which is how a patient comes to be treated at it.
        """
        doc = await self.get(patient_id)
        if principal.is_staff:
            if at_org is not None and may_see_org(principal, at_org):
                return doc
            if await self.orgs.visible_to(principal, doc):
                return doc
            raise other_org()
        if principal.subject in doc.get("account_ids", []):
            return doc
        raise Forbidden(
            "forbidden_patient", "you may not act for this patient", detail_zh="无权操作该就诊人"
        )

    async def unlink(self, account_id: str, patient_id: str) -> None:
        """Remove a patient from an account; refused (409) while the account's bookings for
        them are active: cancel those first."""

        async def work(tx: Tx) -> None:
            active = await self.collection.database[APPOINTMENTS].count_documents(
                {"patient_id": patient_id, "account_id": account_id, "active": True},
                session=tx.session,
            )
            if active:
                raise Conflict(
                    "patient_has_active_bookings",
                    f"the patient has {active} active booking(s) on this account: cancel first",
                    detail_zh=f"该就诊人还有 {active} 个未完成的预约，请先取消后再删除",
                    extra={"active_bookings": active},
                )
            result = await self.collection.update_one(
                {"_id": patient_id, "account_ids": account_id},
                {"$pull": {"account_ids": account_id}, "$unset": {f"relations.{account_id}": ""}},
                session=tx.session,
            )
            if result.matched_count == 0:
                raise NotFound("patient_not_found", "no such patient on this account")
            self._changed(tx, patient_id)
            unlinked = PatientUnlinked(patient_id=patient_id, account_id=account_id)
            tx.emit(make_event(unlinked, source="appointments", subject=patient_id))

        await self.outbox.transaction(work)

    async def find_by_national_id(self, national_id: str) -> Document | None:
        hashes = self.cipher.lookup_hashes(national_id, kind="national_id")  # new, legacy
        return await self.collection.find_one({"national_id_hash": {"$in": hashes}})

    def reveal_national_id(self, doc: Document) -> str:
        return self.cipher.decrypt(
            doc["national_id_enc"], context="patient.national_id", record_id=doc["_id"]
        )

    def reveal_phone(self, doc: Document) -> str:
        return self.cipher.decrypt(doc["phone_enc"], context="patient.phone", record_id=doc["_id"])

    def phone_hash(self, phone: str) -> str:
        """The keyed lookup hash of a phone number (staff search, the hotline's caller)."""
        return self.cipher.lookup_hash(phone, kind="phone")

    def masked_name(self, doc: Document) -> str:
        return mask_name(doc["name"])

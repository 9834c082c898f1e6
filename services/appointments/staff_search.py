"""Staff find a patient (the hotline's caller, the desk's visitor): by phone, national ID or
exact name, among the patients treated at their organization (``PatientOrgs``).

Answers carry masked values only (``PatientMatch``); the term itself is never stored or
logged, the audit record names its kind and how many were found. A phone is found by its
keyed lookup hash (``phone_hash``, kind ``phone``), written with every patient record;
:func:`backfill_phone_hashes` adds it to records written before.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, Literal

import structlog
from pydantic import BaseModel, ConfigDict, Field

from services.appointments.patients import PHONE_PATTERN, Patients, checked_national_id
from shared.crypto import DecryptionError
from shared.mongo import Document
from shared.principal import Principal
from shared.privacy import mask_name_ends, normalize_national_id
from shared.problems import Unprocessable

log = structlog.get_logger(__name__)

MAX_MATCHES = 20
CANDIDATES = 200  # records looked at per search before the organization filter
BACKFILL_BATCH = 500
SearchKind = Literal["phone", "national_id", "name"]


class PatientSearchIn(BaseModel):
    """Exactly one term (in the body: it stays out of URLs and logs)."""

    model_config = ConfigDict(extra="forbid")

    phone: str | None = Field(None, max_length=32, description="11-digit mobile number")
    national_id: str | None = Field(None, max_length=64)
    name: str | None = Field(None, max_length=64, description="the exact real name")


class PatientMatch(BaseModel):
    id: str
    name_masked: str
    national_id_masked: str
    phone_masked: str
    sex: str
    birth_year: int | None


class PatientMatches(BaseModel):
    items: list[PatientMatch]


class StaffPatient(BaseModel):
    """One patient as staff of an organization that treats them see it."""

    id: str
    name: str
    national_id_masked: str
    phone_masked: str
    sex: str
    birth_date: str
    org_ids: list[str]
    account_count: int


def to_match(doc: Document) -> PatientMatch:
    birth = str(doc.get("birth_date") or "")
    return PatientMatch(
        id=doc["_id"],
        name_masked=mask_name_ends(doc["name"]),
        national_id_masked=doc["national_id_masked"],
        phone_masked=doc["phone_masked"],
        sex=doc["sex"],
        birth_year=int(birth[:4]) if birth[:4].isdigit() else None,
    )


def to_staff_patient(doc: Document) -> StaffPatient:
    return StaffPatient(
        id=doc["_id"],
        name=doc["name"],
        national_id_masked=doc["national_id_masked"],
        phone_masked=doc["phone_masked"],
        sex=doc["sex"],
        birth_date=doc["birth_date"],
        org_ids=list(doc.get("org_ids", [])),
        account_count=len(doc.get("account_ids", [])),
    )


def checked_phone(value: str) -> str:
    """The mobile number without spaces or dashes, or 422 ``phone_invalid`` (not echoed)."""
    phone = re.sub(r"[\s-]", "", value)
    if re.fullmatch(PHONE_PATTERN, phone) is None:
        raise Unprocessable(
            "phone_invalid", "not an 11-digit mainland mobile number", detail_zh="手机号码无效"
        )
    return phone


def search_term(body: PatientSearchIn) -> tuple[SearchKind, str]:
    """The one term given, checked: 422 ``search_term_required`` (none),
    ``search_term_ambiguous`` (several), ``phone_invalid``, ``national_id_invalid`` or
    ``name_invalid``."""
    terms: list[tuple[SearchKind, str | None]] = [
        ("phone", body.phone),
        ("national_id", body.national_id),
        ("name", body.name),
    ]
    given = [(kind, value) for kind, value in terms if value is not None]
    if not given:
        raise Unprocessable(
            "search_term_required",
            "give one of phone, national_id or name",
            detail_zh="请输入手机号、身份证号或姓名之一",
        )
    if len(given) > 1:
        raise Unprocessable(
            "search_term_ambiguous",
            "give only one of phone, national_id or name",
            detail_zh="手机号、身份证号、姓名只能填写一项",
        )
    kind, value = given[0]
    if kind == "phone":
        return kind, checked_phone(value)
    if kind == "national_id":
        return kind, normalize_national_id(checked_national_id(value))
    name = value.strip()
    if not 1 <= len(name) <= 40:
        raise Unprocessable(
            "name_invalid", "a name is 1 to 40 characters", detail_zh="姓名应为 1 至 40 个字"
        )
    return kind, name


class StaffSearch:
    def __init__(self, patients: Patients) -> None:
        self.patients = patients

    async def search(self, principal: Principal, kind: SearchKind, term: str) -> list[Document]:
        """The patients the caller's organization treats that match (at most 20)."""
        query: dict[str, Any]
        if kind == "phone":
            query = {"phone_hash": self.patients.phone_hash(term)}
        elif kind == "national_id":
            hashes = self.patients.cipher.lookup_hashes(term, kind="national_id")
            query = {"national_id_hash": {"$in": hashes}}
        else:
            query = {"name": term}
        return await self._visible(principal, query)

    async def _visible(self, principal: Principal, query: dict[str, Any]) -> list[Document]:
        cursor = self.patients.collection.find(query).sort("_id", 1).limit(CANDIDATES)
        found: list[Document] = []
        async for doc in cursor:
            if await self.patients.orgs.visible_to(principal, doc):  # alliance admin: all
                found.append(doc)
                if len(found) >= MAX_MATCHES:
                    break
        return found

    async def in_org(self, org_id: str, phone_hash: str) -> list[Document]:
        """Patients treated at ``org_id`` with this phone (the hotline's caller)."""
        cursor = self.patients.collection.find({"phone_hash": phone_hash}).sort("_id", 1)
        found: list[Document] = []
        async for doc in cursor.limit(CANDIDATES):
            if await self.patients.orgs.treats(doc, org_id):
                found.append(doc)
                if len(found) >= MAX_MATCHES:
                    break
        return found


async def backfill_phone_hashes(patients: Patients, *, batch: int = BACKFILL_BATCH) -> int:
    """Add ``phone_hash`` to patient records written before it existed, in batches; safe
    to run on every replica at every start (a compare-and-set per record). A phone that
    no configured key decrypts gets ``phone_hash: null`` (the PII rotation, which also
    keeps the hash, re-hashes it once the key is back). Returns how many were hashed."""
    collection = patients.collection
    hashed = 0
    while True:
        missing = {"phone_enc": {"$type": "string"}, "phone_hash": {"$exists": False}}
        docs = await collection.find(missing, {"phone_enc": 1}).limit(batch).to_list()
        for doc in docs:
            try:
                value: str | None = patients.phone_hash(patients.reveal_phone(doc))
            except DecryptionError:
                value = None
            match = {**missing, "_id": doc["_id"], "phone_enc": doc["phone_enc"]}
            result = await collection.update_one(match, {"$set": {"phone_hash": value}})
            hashed += result.modified_count if value is not None else 0
        if len(docs) < batch:
            break
        await asyncio.sleep(0)  # let requests through between batches
    if hashed:
        log.info("patients.phone_hash_backfilled", count=hashed)
    return hashed

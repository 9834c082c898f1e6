"""Wards and beds (住院床位): master data from the HIS in bulk, and each bed's status with its
history (free, occupied, cleaning, reserved, blocked).

A ward's id is ``<org>.<code>``; a bed is found by its ward and code, and gets an opaque id
the first time it is sent (a valid FHIR id, ``GET /fhir/Location/{bed_id}``). A bulk PUT
is checked whole before anything is written (an unknown department or ward is 422 and
nothing changes), then written in one transaction. The HIS sends ``blocked`` for a bed it
takes out of use: a free bed becomes blocked, a blocked one free again; a bed in use keeps
its status (the HIS's admission and discharge events move it).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import structlog
from pydantic import BaseModel, Field
from pymongo import ReturnDocument

from services.appointments.catalog import CODE, department_id
from services.appointments.domain.bed_rules import (
    BedFacts,
    BedKind,
    BedPolicy,
    BedStatus,
    GenderPolicy,
)
from services.appointments.domain.models import ORG_ID
from services.appointments.events import BedStatusChanged
from services.appointments.store import BED_HISTORY, BED_POLICIES, BEDS, DEPARTMENTS, WARDS
from shared.events import make_event
from shared.ids import new_id
from shared.mongo import Database, Document
from shared.outbox import Outbox, Tx
from shared.principal import Principal
from shared.problems import Conflict, NotFound, Unprocessable
from shared.scoping import ensure_org

log = structlog.get_logger(__name__)
BED_CODE = r"^[A-Za-z0-9_-]{1,20}$"


class WardIn(BaseModel):
    org_id: str = Field(pattern=ORG_ID)
    code: str = Field(pattern=CODE)
    department_code: str = Field(pattern=CODE)
    name: str = Field(min_length=1, max_length=60)
    floor: int = Field(ge=-5, le=200)
    gender_policy: GenderPolicy = GenderPolicy.MIXED
    isolation: bool = False  # the ward can isolate patients


class BedIn(BaseModel):
    org_id: str = Field(pattern=ORG_ID)
    ward_code: str = Field(pattern=CODE)
    code: str = Field(pattern=BED_CODE)
    room: str = Field(min_length=1, max_length=20)
    kind: BedKind = BedKind.STANDARD
    blocked: bool = False  # taken out of use by the HIS


def ward_id(org_id: str, code: str) -> str:
    return f"{org_id}.{code}"


def department_code(dep_id: str) -> str:
    return dep_id.split(".", 1)[1]


def bed_not_found() -> NotFound:
    return NotFound("bed_not_found", "no such bed", detail_zh="床位不存在")


def bed_view(bed: Document) -> dict[str, Any]:
    keys = ("org_id", "ward_id", "ward_name", "department_id", "code", "room", "kind", "status")
    return {
        "id": bed["_id"],
        **{k: bed[k] for k in keys},
        "label": bed_label(bed),
        "updated_at": bed["updated_at"].isoformat(),
    }


def bed_label(bed: Document) -> str:
    return f"{bed['room']}-{bed['code']}"


def bed_facts(bed: Document, ward: Document) -> BedFacts:
    return BedFacts(
        id=bed["_id"],
        status=BedStatus(bed["status"]),
        kind=BedKind(bed["kind"]),
        department_code=department_code(ward["department_id"]),
        gender_policy=GenderPolicy(ward["gender_policy"]),
        isolation=bool(ward["isolation"]),
    )


class Beds:
    def __init__(self, db: Database, outbox: Outbox) -> None:
        self.db = db
        self.outbox = outbox

    # --- master data --------------------------------------------------------------------

    async def upsert_wards(self, items: list[WardIn]) -> list[str]:
        deps = {department_id(i.org_id, i.department_code) for i in items}
        known = await self._ids(DEPARTMENTS, deps)
        for item in items:
            if department_id(item.org_id, item.department_code) not in known:
                raise Unprocessable(
                    "unknown_department",
                    f"department {item.department_code} is not known",
                    extra={"department_code": item.department_code, "ward": item.code},
                )
        now = datetime.now(UTC)

        async def work(tx: Tx) -> list[str]:
            ids = []
            for item in items:
                doc_id = ward_id(item.org_id, item.code)
                body = {
                    **item.model_dump(mode="json", exclude={"department_code"}),
                    "department_id": department_id(item.org_id, item.department_code),
                    "updated_at": now,
                }
                await self.db[WARDS].update_one(
                    {"_id": doc_id}, {"$set": body}, upsert=True, session=tx.session
                )
                ids.append(doc_id)
            return ids

        return await self.outbox.transaction(work)

    async def upsert_beds(self, items: list[BedIn], principal: Principal) -> list[str]:
        ward_ids = {ward_id(i.org_id, i.ward_code) for i in items}
        wards = {
            w["_id"]: w
            for w in await self.db[WARDS].find({"_id": {"$in": list(ward_ids)}}).to_list(None)
        }
        for item in items:
            if ward_id(item.org_id, item.ward_code) not in wards:
                raise Unprocessable(
                    "unknown_ward",
                    f"ward {item.ward_code} is not known",
                    extra={"ward_code": item.ward_code, "bed": item.code},
                )
        now = datetime.now(UTC)

        async def work(tx: Tx) -> list[str]:
            ids = []
            for item in items:
                ward = wards[ward_id(item.org_id, item.ward_code)]
                doc = await self.db[BEDS].find_one_and_update(
                    {"ward_id": ward["_id"], "code": item.code},
                    {
                        "$set": {
                            "org_id": item.org_id,
                            "ward_name": ward["name"],
                            "department_id": ward["department_id"],
                            "room": item.room,
                            "kind": item.kind.value,
                            "updated_at": now,
                        },
                        "$setOnInsert": {
                            "_id": new_id(),
                            "status": BedStatus.FREE.value,
                            "version": 1,
                        },
                    },
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                    session=tx.session,
                )
                assert doc is not None  # upserted
                ids.append(doc["_id"])
                if item.blocked and doc["status"] == BedStatus.FREE:
                    await self.change(tx, doc["_id"], [BedStatus.FREE], BedStatus.BLOCKED, "his")
                elif not item.blocked and doc["status"] == BedStatus.BLOCKED:
                    await self.change(tx, doc["_id"], [BedStatus.BLOCKED], BedStatus.FREE, "his")
            return ids

        ids = await self.outbox.transaction(work)
        log.info("beds.upserted", count=len(ids), by=principal.subject)
        return ids

    async def _ids(self, collection: str, ids: Iterable[str]) -> set[str]:
        found = await self.db[collection].find({"_id": {"$in": list(ids)}}, {"_id": 1}).to_list()
        return {d["_id"] for d in found}

    async def save_policy(self, org_id: str, policy: BedPolicy, by: str) -> None:
        body = {**policy.model_dump(mode="json"), "updated_at": datetime.now(UTC), "by": by}
        await self.db[BED_POLICIES].replace_one({"_id": org_id}, body, upsert=True)

    async def policy(self, org_id: str) -> BedPolicy:
        doc = await self.db[BED_POLICIES].find_one({"_id": org_id})
        if doc is None:
            return BedPolicy()
        return BedPolicy.model_validate({k: doc[k] for k in BedPolicy.model_fields if k in doc})

    # --- reads --------------------------------------------------------------------------

    async def get(self, bed_id: str, session: Any = None) -> Document:
        bed = await self.db[BEDS].find_one({"_id": bed_id}, session=session)
        if bed is None:
            raise bed_not_found()
        return bed

    async def get_for(self, principal: Principal, bed_id: str) -> Document:
        """The bed, if the caller's organization holds it (403 ``forbidden_org`` if not)."""
        bed = await self.get(bed_id)
        ensure_org(principal, bed["org_id"])
        return bed

    async def ward(self, wid: str, session: Any = None) -> Document:
        ward = await self.db[WARDS].find_one({"_id": wid}, session=session)
        if ward is None:
            raise NotFound("ward_not_found", "no such ward", detail_zh="病区不存在")
        return ward

    async def facts(self, bed: Document, session: Any = None) -> BedFacts:
        return bed_facts(bed, await self.ward(bed["ward_id"], session))

    async def free_beds(self, org_id: str) -> list[tuple[Document, BedFacts]]:
        beds = await self.db[BEDS].find({"org_id": org_id, "status": "free"}).to_list(5000)
        wids = list({b["ward_id"] for b in beds})
        wards = {w["_id"]: w for w in await self.db[WARDS].find({"_id": {"$in": wids}}).to_list()}
        return [(b, bed_facts(b, wards[b["ward_id"]])) for b in beds]

    async def listing(
        self, principal: Principal, org_id: str, ward: str | None, status: str | None, limit: int
    ) -> list[dict[str, Any]]:
        ensure_org(principal, org_id)
        query: dict[str, Any] = {"org_id": org_id}
        if ward:
            query["ward_id"] = ward
        if status:
            query["status"] = status
        docs = await self.db[BEDS].find(query).sort([("ward_id", 1), ("code", 1)]).to_list(limit)
        return [bed_view(d) for d in docs]

    # --- status -------------------------------------------------------------------------

    async def change(
        self,
        tx: Tx,
        bed_id: str,
        expect: list[BedStatus],
        to: BedStatus,
        cause: str,
        *,
        patient_id: str | None = None,
        offer_id: str | None = None,
        by: str | None = None,
        where: dict[str, Any] | None = None,
    ) -> Document | None:
        """Move the bed from one of ``expect`` to ``to`` (with a history entry and an
        event); the bed as it was, or ``None`` when it was in no status of ``expect``."""
        now = datetime.now(UTC)
        held = to in (BedStatus.RESERVED, BedStatus.OCCUPIED)
        update: dict[str, Any] = {
            "$set": {"status": to.value, "updated_at": now},
            "$inc": {"version": 1},
        }
        if held:
            update["$set"] |= {"patient_id": patient_id, "offer_id": offer_id}
        else:
            update["$unset"] = {"patient_id": "", "offer_id": ""}
        before = await self.db[BEDS].find_one_and_update(
            {"_id": bed_id, "status": {"$in": [s.value for s in expect]}, **(where or {})},
            update,
            session=tx.session,
        )
        if before is None:
            return None
        who = patient_id or before.get("patient_id")
        await self.db[BED_HISTORY].insert_one(
            {
                "_id": new_id(),
                "bed_id": bed_id,
                "org_id": before["org_id"],
                "from": before["status"],
                "to": to.value,
                "cause": cause,
                "patient_id": who,
                "by": by,
                "at": now,
            },
            session=tx.session,
        )
        changed = BedStatusChanged(
            bed_id=bed_id,
            ward_id=before["ward_id"],
            org_id=before["org_id"],
            department_id=before["department_id"],
            previous_status=before["status"],
            status=to.value,
            cause=cause,
            patient_id=who,
        )
        tx.emit(make_event(changed, source="appointments", subject=who or bed_id))
        log.info("bed.status_changed", bed_id=bed_id, status=to.value, cause=cause)
        return before

    async def cleaned(self, principal: Principal, bed_id: str) -> dict[str, Any]:
        """Housekeeping confirms a bed is clean: ``cleaning`` → ``free``."""
        await self.get_for(principal, bed_id)

        async def work(tx: Tx) -> dict[str, Any]:
            before = await self.change(
                tx, bed_id, [BedStatus.CLEANING], BedStatus.FREE, "cleaned", by=principal.subject
            )
            if before is None:
                bed = await self.get(bed_id, tx.session)
                raise Conflict(
                    "bed_not_cleaning",
                    f"the bed is {bed['status']}, not being cleaned",
                    detail_zh="该床位不在清洁状态",
                    extra={"bed_status": bed["status"]},
                )
            return bed_view(await self.get(bed_id, tx.session))

        return await self.outbox.transaction(work)

"""The roster of porters (陪检员) and ambulance crews: who works for which organization, in
which zones, with which skills, on or off duty, and how many live jobs each carries.

A porter is a staff account (the token's subject is the ``porter_id``) that the HIS or
the organization's admin put on the roster (``PUT /v1/referrals/admin/porters``). There is
no porter role (``shared/principal.py``): the handheld app signs in with the ``nurse`` role
(porters and escorts belong to the nursing department's support staff) and the porters'
API admits a nurse only when the roster holds them for the token's organization
(403 ``not_a_porter`` otherwise). An ambulance crew is one roster entry of kind
``ambulance_crew`` with the ``ambulance`` skill, signed in on the crew's handheld.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pymongo import ReturnDocument

from services.referrals.domain.transport import WORKING, Porter
from services.referrals.store import PORTERS, TRANSPORTS
from shared.audit import AuditLog
from shared.domain_errors import Forbidden
from shared.mongo import Database, Document, Session
from shared.principal import Principal
from shared.scoping import ensure_org

NAME = r"^[A-Za-z0-9._:-]{1,64}$"
LIST_LIMIT = 1000
Label = Annotated[str, Field(min_length=1, max_length=40)]


class PorterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    porter_id: str = Field(pattern=NAME, description="the staff account id (token subject)")
    org_id: str = Field(pattern=NAME)
    name: str = Field(min_length=1, max_length=60)
    kind: str = Field("porter", pattern=r"^(porter|ambulance_crew)$")
    zones: list[Label] = Field(default_factory=list, max_length=20)
    skills: list[Label] = Field(
        default_factory=list,
        max_length=20,
        description="stretcher (stretcher and bed moves), ambulance, oxygen, monitor, isolation",
    )
    active: bool = True


def not_a_porter() -> Forbidden:
    return Forbidden(
        "not_a_porter",
        "this account is not on the porters' roster of its organization",
        detail_zh="该账号不在本机构陪检员名册中",
    )


def roster_view(doc: Document) -> dict[str, Any]:
    return {
        "porter_id": doc["_id"],
        "org_id": doc["org_id"],
        "name": doc["name"],
        "kind": doc["kind"],
        "zones": doc["zones"],
        "skills": doc["skills"],
        "active": doc["active"],
        "on_duty": doc.get("on_duty", False),
        "duty_zone": doc.get("duty_zone"),
    }


def _zones(doc: Document) -> list[str]:
    """Where a porter works now: the duty zone when on duty in one, else the roster's."""
    if doc.get("on_duty") and doc.get("duty_zone"):
        return [doc["duty_zone"]]
    return list(doc["zones"])


class Roster:
    def __init__(self, db: Database, audit: AuditLog) -> None:
        self.db = db
        self.audit = audit

    async def save(self, principal: Principal, porters: list[PorterIn]) -> list[Document]:
        """Add or change roster entries (the duty state stays as the porters set it)."""
        ids = [p.porter_id for p in porters]
        existing = {d["_id"]: d async for d in self.db[PORTERS].find({"_id": {"$in": ids}})}
        for p in porters:  # every organization named, before anything is written
            ensure_org(principal, p.org_id)
            if p.porter_id in existing:
                ensure_org(principal, existing[p.porter_id]["org_id"])
        now = datetime.now(UTC)
        saved = []
        for p in porters:
            entry = p.model_dump()
            porter_id = entry.pop("porter_id")
            doc = await self.db[PORTERS].find_one_and_update(
                {"_id": porter_id},
                {
                    "$set": {**entry, "updated_at": now},
                    "$setOnInsert": {"on_duty": False, "duty_zone": None, "created_at": now},
                },
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
            assert doc is not None  # an upsert returning the document after
            saved.append(roster_view(doc))
        await self.audit.record(
            principal,
            "porters.save",
            patient_id=None,
            resource="porters",
            details={"porter_ids": ids},
        )
        return saved

    async def listing(
        self, principal: Principal, org_id: str, zone: str | None, on_duty: bool | None
    ) -> list[dict[str, Any]]:
        """The dispatcher's view of the roster: the organization's active porters and crews
        (in ``zone``: on duty there, or off duty and covering it), on duty first, each with
        its live job count (``load``)."""
        ensure_org(principal, org_id)
        query: dict[str, Any] = {"org_id": org_id, "active": True}
        if on_duty is not None:
            query["on_duty"] = True if on_duty else {"$ne": True}
        docs = await self.db[PORTERS].find(query).sort("_id", 1).to_list(LIST_LIMIT)
        if zone is not None:
            docs = [d for d in docs if zone in _zones(d)]
        loads = await self.loads([d["_id"] for d in docs], None)
        items = [{**roster_view(d), "load": loads.get(d["_id"], 0)} for d in docs]
        return sorted(items, key=lambda i: (not i["on_duty"], i["name"], i["porter_id"]))

    async def me(self, principal: Principal, session: Session | None = None) -> Document:
        """The caller's roster entry in their organization: 403 ``not_a_porter`` if none."""
        doc = await self.db[PORTERS].find_one(
            {"_id": principal.subject, "org_id": principal.org_id, "active": True},
            session=session,
        )
        if doc is None or principal.org_id is None:
            raise not_a_porter()
        return doc

    async def on_duty(self, org_id: str, session: Session | None) -> list[Porter]:
        """The organization's porters on duty, with their current loads."""
        docs = (
            await self.db[PORTERS]
            .find({"org_id": org_id, "on_duty": True, "active": True}, session=session)
            .to_list()
        )
        loads = await self.loads([d["_id"] for d in docs], session)
        return [
            Porter(
                porter_id=d["_id"],
                zones=frozenset([d["duty_zone"]] if d.get("duty_zone") else d["zones"]),
                skills=frozenset(d["skills"]),
                on_duty=True,
                load=loads.get(d["_id"], 0),
            )
            for d in docs
        ]

    async def loads(self, porter_ids: list[str], session: Session | None) -> dict[str, int]:
        pipeline: list[dict[str, Any]] = [
            {"$match": {"porter_id": {"$in": porter_ids}, "state": {"$in": sorted(WORKING)}}},
            {"$group": {"_id": "$porter_id", "n": {"$sum": 1}}},
        ]
        cursor = await self.db[TRANSPORTS].aggregate(pipeline, session=session)
        return {d["_id"]: d["n"] async for d in cursor}

    async def get(self, porter_id: str, session: Session | None) -> Document | None:
        doc: Document | None = await self.db[PORTERS].find_one(
            {"_id": porter_id, "active": True}, session=session
        )
        return doc

    async def set_duty(
        self, session: Session, porter: Document, *, on_duty: bool, zone: str | None
    ) -> Document:
        doc = await self.db[PORTERS].find_one_and_update(
            {"_id": porter["_id"]},
            {"$set": {"on_duty": on_duty, "duty_zone": zone, "updated_at": datetime.now(UTC)}},
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        assert doc is not None
        return doc

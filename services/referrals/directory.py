"""The alliance's directory: organizations and referral relationships, kept in Mongo.

Written in bulk by the HIS or an alliance admin (every item is checked before anything is
written, so a bad item changes nothing); an organization's admin keeps its own master data
and its coordinators its intake settings. Every change counts the organization's
``version`` up and is audited. Read by every staff role and by the referral router.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import structlog
from pymongo import ReturnDocument, UpdateOne

from services.referrals.domain.directory import (
    Direction,
    IntakeSettings,
    Organization,
    OrganizationIn,
    OrgKind,
    Relationship,
    apply,
    check_relationships,
    first_broken,
    index_organizations,
    index_relationships,
    moves,
    relationship_id,
    structural_changes,
)
from services.referrals.store import ORGANIZATIONS, RELATIONSHIPS
from shared.audit import AuditLog
from shared.domain_errors import Conflict, NotFound
from shared.mongo import Database, Document
from shared.principal import Principal, Role
from shared.problems import Forbidden
from shared.scoping import ensure_org, sees_every_org

log = structlog.get_logger("careloop.referrals.directory")

MAX_LIST = 2000
# who keeps an organization's intake settings: its admin and its coordinators (and the HIS)
INTAKE_ROLES = (Role.ADMIN, Role.COORDINATOR, Role.SERVICE)


def _forbidden(code: str, detail: str, detail_zh: str, **extra: Any) -> Forbidden:
    return Forbidden(code, detail, detail_zh=detail_zh, extra=extra or None)


def _alliance_only() -> Forbidden:
    return _forbidden(
        "forbidden_role",
        "Only the alliance's admin or the HIS changes the alliance's structure.",
        "仅医联体管理员或 HIS 可修改医联体机构结构及转诊关系。",
    )


def _org(doc: Document) -> Organization:
    return Organization.model_validate({**doc, "org_id": doc["_id"]})


def _rel(doc: Document) -> Relationship:
    return Relationship.model_validate(doc)


def unknown_organization(org_id: str) -> NotFound:
    return NotFound(
        "unknown_organization",
        f"no organization {org_id} in the alliance's directory",
        detail_zh="医联体目录中没有该机构",
        extra={"org_id": org_id},
    )


class Directory:
    def __init__(self, db: Database, audit: AuditLog) -> None:
        self.db = db
        self.audit = audit
        self._orgs = db[ORGANIZATIONS]
        self._rels = db[RELATIONSHIPS]

    # --- reads ---------------------------------------------------------------------------

    async def get(self, org_id: str) -> Organization | None:
        doc = await self._orgs.find_one({"_id": org_id})
        return None if doc is None else _org(doc)

    async def require(self, org_id: str) -> Organization:
        org = await self.get(org_id)
        if org is None:
            raise unknown_organization(org_id)
        return org

    async def many(self, org_ids: Iterable[str]) -> dict[str, Organization]:
        """The named organizations that exist, by id (one query)."""
        wanted = sorted(set(org_ids))
        docs = await self._orgs.find({"_id": {"$in": wanted}}).to_list(len(wanted) or 1)
        return {doc["_id"]: _org(doc) for doc in docs}

    async def targets(self, from_org_id: str, direction: Direction) -> list[Organization]:
        """The organizations ``from_org_id`` may refer to in ``direction`` (active
        relationships only), in the order of their ids."""
        query = {"from_org_id": from_org_id, "direction": Direction(direction).value}
        rels = await self._rels.find({**query, "active": True}).to_list(MAX_LIST)
        found = await self.many(r["to_org_id"] for r in rels)
        return [found[k] for k in sorted(found)]

    async def relationship(
        self, from_org_id: str, to_org_id: str, direction: Direction
    ) -> Relationship | None:
        doc = await self._rels.find_one({"_id": relationship_id(from_org_id, to_org_id, direction)})
        return None if doc is None else _rel(doc)

    async def list_organizations(
        self,
        *,
        region: str | None = None,
        level: int | None = None,
        kind: OrgKind | None = None,
        alliance_id: str | None = None,
        specialty: str | None = None,
        accepting: bool | None = None,
    ) -> list[Organization]:
        query: dict[str, Any] = {}
        if region is not None:
            query["region"] = region
        if level is not None:
            query["level"] = level
        if kind is not None:
            query["kind"] = OrgKind(kind).value
        if alliance_id is not None:
            query["alliance_ids"] = alliance_id
        if specialty is not None:
            query["departments.specialties"] = specialty
        if accepting is not None:
            query["intake.accepting"] = accepting
        docs = await self._orgs.find(query).sort("_id", 1).to_list(MAX_LIST)
        return [_org(d) for d in docs]

    async def list_relationships(self, org_id: str | None = None) -> list[Relationship]:
        """Every relationship, or those from or to ``org_id``."""
        query = {} if org_id is None else {"$or": [{"from_org_id": org_id}, {"to_org_id": org_id}]}
        docs = await self._rels.find(query).sort("_id", 1).to_list(MAX_LIST)
        return [_rel(d) for d in docs]

    # --- organizations -------------------------------------------------------------------

    async def upsert_organizations(
        self, principal: Principal, items: list[OrganizationIn]
    ) -> list[str]:
        """Create or update organizations; all are checked before any is written."""
        seen = index_organizations(items)
        existing = await self.many(seen)
        for index, item in enumerate(items):
            _authorize_org_write(principal, index, item, existing.get(item.org_id))
        after = {i.org_id: apply(existing.get(i.org_id), i) for i in items}
        await self._check_relationships_hold(items, existing, after, seen)
        if not items:
            return []
        now = datetime.now(UTC)
        writes = []
        for item in items:
            body = after[item.org_id].model_dump(mode="json", exclude={"org_id", "version"})
            update: dict[str, Any] = {"$set": {**body, "updated_at": now}, "$inc": {"version": 1}}
            if item.intake is None:  # keep the coordinators' settings
                update["$set"].pop("intake")
                update["$setOnInsert"] = {"intake": body["intake"]}
            writes.append(UpdateOne({"_id": item.org_id}, update, upsert=True))
        await self._orgs.bulk_write(writes, ordered=True)
        ids = list(seen)
        created = [i for i in ids if i not in existing]
        await self.audit.record(
            principal,
            "directory.organizations.upsert",
            patient_id=None,
            resource=f"organization:{ids[0]}" if len(ids) == 1 else "organizations",
            org_id=ids[0] if len(ids) == 1 else None,
            details={"org_ids": ids, "created": created},
        )
        log.info("directory_organizations_saved", count=len(ids), created=len(created))
        return ids

    async def _check_relationships_hold(
        self,
        items: list[OrganizationIn],
        existing: dict[str, Organization],
        after: dict[str, Organization],
        index_of: dict[str, int],
    ) -> None:
        """A new level or alliance must not break an active relationship (409)."""
        moved = [i.org_id for i in items if i.org_id in existing and moves(existing[i.org_id], i)]
        if not moved:
            return
        either = [{"from_org_id": {"$in": moved}}, {"to_org_id": {"$in": moved}}]
        docs = await self._rels.find({"active": True, "$or": either}).to_list(None)
        rels = [_rel(d) for d in docs]
        others = await self.many({r.from_org_id for r in rels} | {r.to_org_id for r in rels})
        found = first_broken(rels, {**others, **after})
        if found is None:
            return
        rel, broken = found
        org_id = rel.from_org_id if rel.from_org_id in index_of else rel.to_org_id
        raise Conflict(
            "relationship_would_break",
            f"the change of {org_id} breaks the relationship {rel.key} ({broken.code}); "
            "remove or change it first",
            detail_zh="该修改与现有转诊关系冲突，请先调整转诊关系",
            extra={"index": index_of[org_id], "relationship": rel.key, "reason": broken.code},
        )

    async def set_intake(
        self,
        principal: Principal,
        org_id: str,
        intake: IntakeSettings,
        *,
        expected_version: int | None = None,
    ) -> Organization:
        """Replace an organization's intake settings (``expected_version``: If-Match)."""
        if not principal.has_any(*INTAKE_ROLES):
            raise _forbidden(
                "forbidden_role",
                "Only an organization's admin or coordinators change its intake settings.",
                "仅机构管理员或转诊协调员可修改接诊设置。",
            )
        ensure_org(principal, org_id)
        query: dict[str, Any] = {"_id": org_id}
        if expected_version is not None:
            query["version"] = expected_version
        update = {
            "$set": {"intake": intake.model_dump(mode="json"), "updated_at": datetime.now(UTC)},
            "$inc": {"version": 1},
        }
        doc = await self._orgs.find_one_and_update(
            query, update, return_document=ReturnDocument.AFTER
        )
        if doc is None:
            current = await self.require(org_id)
            raise Conflict(
                "version_conflict",
                f"the organization changed since you read it (it is now version {current.version})",
                detail_zh="机构信息已被他人修改，请刷新后重试",
                extra={"current_version": current.version},
            )
        org = _org(doc)
        await self.audit.record(
            principal,
            "directory.intake.update",
            patient_id=None,
            resource=f"organization:{org_id}",
            org_id=org_id,
            details={"intake": intake.model_dump(mode="json"), "version": org.version},
        )
        log.info("directory_intake_saved", org_id=org_id, accepting=intake.accepting)
        return org

    # --- relationships -------------------------------------------------------------------

    async def upsert_relationships(self, principal: Principal, items: list[Relationship]) -> int:
        """Create or update relationships; all are checked before any is written."""
        if not sees_every_org(principal):
            raise _alliance_only()
        seen = index_relationships(items)
        orgs = await self.many({r.from_org_id for r in items} | {r.to_org_id for r in items})
        check_relationships(items, orgs)
        if not items:
            return 0
        now = datetime.now(UTC)
        writes = [
            UpdateOne(
                {"_id": rel.key},
                {
                    "$set": {**rel.model_dump(mode="json"), "updated_at": now},
                    "$setOnInsert": {"created_at": now},
                },
                upsert=True,
            )
            for rel in items
        ]
        await self._rels.bulk_write(writes, ordered=True)
        await self.audit.record(
            principal,
            "directory.relationships.upsert",
            patient_id=None,
            resource="relationships",
            details={"relationships": list(seen)},
        )
        return len(items)

    async def remove_relationship(
        self, principal: Principal, from_org_id: str, to_org_id: str, direction: Direction
    ) -> None:
        if not sees_every_org(principal):
            raise _alliance_only()
        key = relationship_id(from_org_id, to_org_id, direction)
        result = await self._rels.delete_one({"_id": key})
        if result.deleted_count == 0:
            raise NotFound(
                "unknown_relationship",
                f"no relationship {key}",
                detail_zh="转诊关系不存在",
                extra={"relationship": key},
            )
        await self.audit.record(
            principal,
            "directory.relationship.remove",
            patient_id=None,
            resource=f"relationship:{key}",
        )


def _authorize_org_write(
    principal: Principal, index: int, item: OrganizationIn, existing: Organization | None
) -> None:
    """Alliance admins and the HIS write every organization; an organization's admin keeps
    its own existing organization's name, departments, contacts and intake (403 otherwise)."""
    if sees_every_org(principal):
        return
    if not principal.has_any(Role.ADMIN):
        raise _alliance_only()
    ensure_org(principal, item.org_id)
    if existing is None:
        raise _forbidden(
            "forbidden_org_create",
            "Only the alliance's admin or the HIS adds an organization to the directory.",
            "仅医联体管理员或 HIS 可新增机构。",
            index=index,
            org_id=item.org_id,
        )
    changed = structural_changes(existing, item)
    if changed:
        raise _forbidden(
            "forbidden_org_fields",
            f"an organization's admin may not change {', '.join(changed)}; "
            "the alliance's admin does",
            "机构级别、类型、地区及所属医联体仅可由医联体管理员修改。",
            index=index,
            org_id=item.org_id,
            fields=changed,
        )

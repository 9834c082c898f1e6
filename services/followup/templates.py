"""Plan templates, versioned: admins write a template, each change is a new version, and a
plan keeps the version it was made from (``domain/plan_template.py`` chooses one).

An organization's admin keeps its own organization's templates; alliance admins and the
HIS (service) also the alliance-wide ones (``org_id`` None). Every change is audited.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from services.followup.domain.plan_template import Template, TemplateBody
from services.followup.store import TEMPLATES
from shared.audit import AuditLog
from shared.domain_errors import Conflict, Forbidden, NotFound
from shared.ids import new_id
from shared.mongo import Database, Document, Session
from shared.principal import Principal
from shared.scoping import ensure_org, sees_every_org


def template_not_found(template_id: str) -> NotFound:
    return NotFound(
        "plan_template_not_found",
        f"no plan template {template_id!r}",
        detail_zh="随访计划模板不存在",
    )


def _from_doc(doc: Document) -> Template:
    return Template(
        template_id=doc["template_id"],
        version=doc["version"],
        body=TemplateBody.model_validate(doc["body"]),
    )


def view(doc: Document) -> dict[str, Any]:
    keys = ("template_id", "version", "status", "created_by", "created_at")
    return {**{k: doc.get(k) for k in keys}, **doc["body"]}


class PlanTemplates:
    def __init__(self, db: Database, audit: AuditLog) -> None:
        self.db = db
        self.audit = audit

    def _may_write(self, principal: Principal, org_id: str | None) -> None:
        if org_id is None:
            if not sees_every_org(principal):
                raise Forbidden(
                    "forbidden_org",
                    "alliance-wide templates are kept by the alliance admin",
                    detail_zh="医联体通用模板仅由医联体管理员维护",
                )
            return
        ensure_org(principal, org_id)

    async def create(self, principal: Principal, body: TemplateBody) -> Document:
        self._may_write(principal, body.org_id)
        return await self._insert(principal, new_id(), 1, body, action="plan_template.create")

    async def revise(
        self, principal: Principal, template_id: str, body: TemplateBody, if_version: int
    ) -> Document:
        """A new version; ``if_version`` must be the latest (else 409 ``version_conflict``)."""
        latest = await self.latest(template_id)
        self._may_write(principal, latest["body"].get("org_id"))
        self._may_write(principal, body.org_id)
        if latest["version"] != if_version:
            raise Conflict(
                "version_conflict",
                f"the template is at version {latest['version']}, not {if_version}",
                detail_zh="模板已被他人修改，请刷新后重试",
            )
        return await self._insert(
            principal, template_id, if_version + 1, body, action="plan_template.revise"
        )

    async def retire(self, principal: Principal, template_id: str) -> Document:
        latest = await self.latest(template_id)
        self._may_write(principal, latest["body"].get("org_id"))
        await self.db[TEMPLATES].update_many(
            {"template_id": template_id}, {"$set": {"status": "retired"}}
        )
        await self.audit.record(
            principal,
            "plan_template.retire",
            patient_id=None,
            resource=f"plan_template:{template_id}",
            org_id=latest["body"].get("org_id"),
        )
        latest["status"] = "retired"
        return latest

    async def _insert(
        self, principal: Principal, template_id: str, version: int, body: TemplateBody, action: str
    ) -> Document:
        doc = {
            "_id": f"{template_id}:v{version}",
            "template_id": template_id,
            "version": version,
            "status": "active",
            "org_id": body.org_id,
            "body": body.model_dump(mode="json"),
            "created_by": principal.subject,
            "created_at": datetime.now(UTC),
        }
        try:
            await self.db[TEMPLATES].insert_one(doc)
        except DuplicateKeyError as exc:  # another admin saved this version first
            raise Conflict(
                "version_conflict", "the template changed meanwhile", detail_zh="模板已被修改"
            ) from exc
        await self.audit.record(
            principal,
            action,
            patient_id=None,
            resource=f"plan_template:{template_id}:v{version}",
            org_id=body.org_id,
        )
        return doc

    async def latest(self, template_id: str) -> Document:
        doc = await self.db[TEMPLATES].find_one(
            {"template_id": template_id}, sort=[("version", -1)]
        )
        if doc is None:
            raise template_not_found(template_id)
        return doc

    async def get_for(
        self, principal: Principal, template_id: str, version: int | None = None
    ) -> Document:
        query: dict[str, Any] = {"template_id": template_id}
        if version is not None:
            query["version"] = version
        doc = await self.db[TEMPLATES].find_one(query, sort=[("version", -1)])
        if doc is None:
            raise template_not_found(template_id)
        if doc["body"].get("org_id") is not None:
            ensure_org(principal, doc["body"]["org_id"])
        return doc

    async def list_for(self, principal: Principal, org_id: str | None) -> list[Document]:
        """The latest version of each template the caller's organization uses (its own and
        the alliance's)."""
        if not sees_every_org(principal):
            org_id = principal.org_id
        query: dict[str, Any] = {}
        if org_id is not None or not sees_every_org(principal):
            query = {"org_id": {"$in": [None, org_id]}}
        latest: dict[str, Document] = {}
        async for doc in self.db[TEMPLATES].find(query, sort=[("version", -1)]):
            latest.setdefault(doc["template_id"], doc)
        return sorted(latest.values(), key=lambda d: d["created_at"])

    async def active_for(self, org_id: str | None, session: Session | None) -> list[Template]:
        """The latest active version of every template that may apply at ``org_id``."""
        cursor = self.db[TEMPLATES].find(
            {"org_id": {"$in": [None, org_id]}}, sort=[("version", -1)], session=session
        )
        latest: dict[str, Document] = {}
        async for doc in cursor:
            latest.setdefault(doc["template_id"], doc)
        return [_from_doc(d) for d in latest.values() if d["status"] == "active"]

    async def by_version(self, template_id: str, version: int) -> Template:
        doc = await self.db[TEMPLATES].find_one({"template_id": template_id, "version": version})
        if doc is None:
            raise template_not_found(template_id)
        return _from_doc(doc)

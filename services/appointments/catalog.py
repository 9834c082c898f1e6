"""Master data from HIS or an admin: departments, doctors and exam resources.

Ids are derived from the organization and the HIS code (``<org>.<code>``), so a bulk
upsert from HIS is idempotent. Patient-facing lists are served from a Redis cache that a
version bump invalidates on every change.
"""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field
from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.appointments.domain.models import ORG_ID, ClinicType, ResourceKind
from services.appointments.store import DEPARTMENTS, RESOURCES
from shared.mongo import Database, Document
from shared.problems import NotFound, Unprocessable

CODE = r"^[A-Za-z0-9_-]{1,40}$"
CACHE_TTL_SECONDS = 300


class DepartmentIn(BaseModel):
    org_id: str = Field(pattern=ORG_ID)
    code: str = Field(pattern=CODE)
    name: str = Field(min_length=1, max_length=60)
    kind: str = Field("outpatient", pattern=r"^(outpatient|exam)$")


class ResourceIn(BaseModel):
    """A doctor, or an exam resource (CT, MRI, ultrasound, endoscopy) with preparation."""

    org_id: str = Field(pattern=ORG_ID)
    code: str = Field(pattern=CODE)
    department_code: str = Field(pattern=CODE)
    kind: ResourceKind = ResourceKind.DOCTOR
    name: str = Field(min_length=1, max_length=60)
    title: str | None = Field(None, max_length=40)
    clinic_type: ClinicType = ClinicType.GENERAL
    fee_category: str = Field("standard", max_length=40)
    fee_cents: int = Field(0, ge=0, le=1_000_000)
    exam_type: str | None = Field(None, pattern=r"^(CT|MRI|ultrasound|endoscopy|xray|other)$")
    preparation: str | None = Field(None, max_length=1000)


def department_id(org_id: str, code: str) -> str:
    return f"{org_id}.{code}"


def public_view(doc: Document) -> dict[str, Any]:
    out = {k: v for k, v in doc.items() if k not in ("_id", "updated_at")}
    out["id"] = doc["_id"]
    return out


class Catalog:
    def __init__(self, db: Database, redis: Redis, prefix: str = "") -> None:
        self.db = db
        self.redis = redis
        self.prefix = prefix

    async def upsert_departments(self, items: list[DepartmentIn]) -> list[str]:
        now = datetime.now(UTC)
        ids = []
        for item in items:
            doc_id = department_id(item.org_id, item.code)
            await self.db[DEPARTMENTS].update_one(
                {"_id": doc_id}, {"$set": {**item.model_dump(), "updated_at": now}}, upsert=True
            )
            ids.append(doc_id)
        await self._invalidate({i.org_id for i in items})
        return ids

    async def upsert_resources(self, items: list[ResourceIn]) -> list[str]:
        now = datetime.now(UTC)
        ids = []
        for item in items:
            dep_id = department_id(item.org_id, item.department_code)
            if await self.db[DEPARTMENTS].count_documents({"_id": dep_id}, limit=1) == 0:
                raise Unprocessable(
                    "unknown_department",
                    f"department {item.department_code} is not known",
                    extra={"department_code": item.department_code},
                )
            doc_id = f"{item.org_id}.{item.code}"
            body = {**item.model_dump(mode="json"), "department_id": dep_id, "updated_at": now}
            await self.db[RESOURCES].update_one({"_id": doc_id}, {"$set": body}, upsert=True)
            ids.append(doc_id)
        await self._invalidate({i.org_id for i in items})
        return ids

    async def department(self, dep_id: str) -> Document:
        doc = await self.db[DEPARTMENTS].find_one({"_id": dep_id})
        if doc is None:
            raise NotFound("department_not_found", "no such department", detail_zh="科室不存在")
        return doc

    async def resource(self, resource_id: str) -> Document:
        doc = await self.db[RESOURCES].find_one({"_id": resource_id})
        if doc is None:
            raise NotFound(
                "doctor_not_found",
                "no such doctor or exam resource",
                detail_zh="医生或检查项目不存在",
            )
        return doc

    async def departments(self, org_id: str) -> list[dict[str, Any]]:
        return await self._cached(
            org_id, "departments", lambda: self._list(DEPARTMENTS, {"org_id": org_id})
        )

    async def resources(
        self, org_id: str, dep_id: str | None, kind: ResourceKind | None
    ) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"org_id": org_id}
        if dep_id:
            query["department_id"] = dep_id
        if kind:
            query["kind"] = kind.value
        name = f"resources:{dep_id or '*'}:{kind or '*'}"
        return await self._cached(org_id, name, lambda: self._list(RESOURCES, query))

    async def _list(self, collection: str, query: dict[str, Any]) -> list[dict[str, Any]]:
        docs = await self.db[collection].find(query).sort("_id", 1).to_list(2000)
        return [public_view(d) for d in docs]

    async def _cached(self, org_id: str, name: str, load: Any) -> list[dict[str, Any]]:
        try:
            version = str(await self.redis.get(f"{self.prefix}catalog:{org_id}:version") or "0")
            key = f"{self.prefix}catalog:{org_id}:v{version}:{name}"
            hit = await self.redis.get(key)
            if hit is not None:
                return list(json.loads(hit))
        except RedisError:
            return list(await load())  # the cache is an optimisation, never a dependency
        value = await load()
        with contextlib.suppress(RedisError):
            await self.redis.set(key, json.dumps(value, default=str), ex=CACHE_TTL_SECONDS)
        return list(value)

    async def _invalidate(self, org_ids: set[str]) -> None:
        for org_id in org_ids:
            with contextlib.suppress(RedisError):
                await self.redis.incr(f"{self.prefix}catalog:{org_id}:version")

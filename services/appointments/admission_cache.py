"""What a booking attempt needs before it may touch Mongo, cached in Redis (docs/adr/0004).

A release-time refusal (sold out, not yet released, banned, not the caller's patient) is
answered from Redis alone; Mongo sees only admitted requests. Cached here:

* the patient: its id, the accounts that manage it, its national-ID lookup hash and its
  booking record (offences and clearances, from which bans are computed);
* the schedule (session): its document and its slots' pools and start times;
* the policy version: one counter every policy change moves on (policies are cached
  per replica under that version, :mod:`services.appointments.policies`).

Each entry has a version counter beside it. A change moves the counter and deletes the
entry; a fill writes only if the counter is still the one it read before reading Mongo, so
a fill that raced a change never stores what the change replaced. Entries also expire
(``cache_ttl_seconds``). The cache only ever decides refusals early: an admitted booking
re-reads the truth inside its Mongo transaction.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import structlog
from bson import json_util
from bson.json_util import JSONMode, JSONOptions
from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.appointments.store import PATIENT_RECORDS, PATIENTS, SCHEDULES, SLOTS
from shared.mongo import Database, Document
from shared.problems import NotFound

log = structlog.get_logger(__name__)
_JSON = JSONOptions(tz_aware=True, tzinfo=UTC, json_mode=JSONMode.RELAXED)
PATIENT_FIELDS = {"_id": 1, "account_ids": 1, "national_id_hash": 1}
RECORD_FIELDS = {"no_shows": 1, "late_cancels": 1, "cleared": 1, "cleared_at": 1}

# KEYS: the entry, its version counter; ARGV: the version read before the fill, value, ttl
FILL = """
local now = redis.call('GET', KEYS[2]) or '0'
if now ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', tonumber(ARGV[3]))
return 1
"""


def dumps(value: Any) -> str:
    return json_util.dumps(value, json_options=_JSON)


def loads(text: str) -> Any:
    return json_util.loads(text, json_options=_JSON)


@dataclass(frozen=True)
class CachedPatient:
    """A patient as admission sees it: who manages it, its national-ID hash, its record."""

    doc: Document  # _id, account_ids, national_id_hash
    record: Document  # no_shows, late_cancels, cleared, cleared_at

    def managed_by(self, account_id: str) -> bool:
        return account_id in self.doc.get("account_ids", [])


@dataclass(frozen=True)
class CachedSchedule:
    doc: Document
    slots: dict[str, Document]  # slot id -> {pool, starts_at, number}


class AdmissionCache:
    def __init__(
        self, redis: Redis, db: Database, prefix: str = "", ttl_seconds: int = 300
    ) -> None:
        self.redis = redis
        self.db = db
        self.prefix = f"{prefix}adm:cache:"
        self.ttl = ttl_seconds
        self.policy_version_key = f"{prefix}adm:policy_version"
        self._fill = redis.register_script(FILL)
        # a session read from Mongo once per replica however many ask at once (a surge's
        # first second would otherwise read it for every request)
        self._loading: dict[str, asyncio.Task[CachedSchedule]] = {}

    def _patient_key(self, patient_id: str) -> str:
        return f"{self.prefix}patient:{patient_id}"

    def _schedule_key(self, schedule_id: str) -> str:
        return f"{self.prefix}schedule:{schedule_id}"

    async def lookup(
        self, patient_id: str, schedule_id: str
    ) -> tuple[CachedPatient, CachedSchedule, int]:
        """The patient, the schedule and the policy version: one Redis round trip when cached."""
        pk, sk = self._patient_key(patient_id), self._schedule_key(schedule_id)
        raw = await self.redis.mget([pk, f"{pk}:v", sk, f"{sk}:v", self.policy_version_key])
        patient_raw, patient_version, schedule_raw, schedule_version, policy_version = raw
        if patient_raw is None:
            patient = await self._load_patient(patient_id, str(patient_version or "0"))
        else:
            body = loads(str(patient_raw))
            patient = CachedPatient(body["doc"], body["record"])
        if schedule_raw is None:
            schedule = await self._single_load(schedule_id, str(schedule_version or "0"))
        else:
            body = loads(str(schedule_raw))
            schedule = CachedSchedule(body["doc"], body["slots"])
        return patient, schedule, int(policy_version or 0)

    async def _load_patient(self, patient_id: str, version: str) -> CachedPatient:
        doc = await self.db[PATIENTS].find_one({"_id": patient_id}, PATIENT_FIELDS)
        if doc is None:
            raise NotFound("patient_not_found", "no such patient", detail_zh="就诊人不存在")
        record = await self.db[PATIENT_RECORDS].find_one({"_id": patient_id}, RECORD_FIELDS)
        patient = CachedPatient(doc, record or {"_id": patient_id})
        body = dumps({"doc": patient.doc, "record": patient.record})
        key = self._patient_key(patient_id)
        await self._fill(keys=[key, f"{key}:v"], args=[version, body, self.ttl])
        return patient

    async def _single_load(self, schedule_id: str, version: str) -> CachedSchedule:
        loading = self._loading.get(schedule_id)
        if loading is None:
            loading = asyncio.create_task(self._load_schedule(schedule_id, version))
            self._loading[schedule_id] = loading
            loading.add_done_callback(lambda _: self._loading.pop(schedule_id, None))
        return await asyncio.shield(loading)

    async def _load_schedule(self, schedule_id: str, version: str) -> CachedSchedule:
        doc = await self.db[SCHEDULES].find_one({"_id": schedule_id})
        if doc is None:
            raise NotFound("schedule_not_found", "no such schedule", detail_zh="排班不存在")
        slots = {
            str(s["_id"]): {"pool": s["pool"], "starts_at": s["starts_at"], "number": s["number"]}
            async for s in self.db[SLOTS].find(
                {"schedule_id": schedule_id}, {"pool": 1, "starts_at": 1, "number": 1}
            )
        }
        schedule = CachedSchedule(doc, slots)
        key = self._schedule_key(schedule_id)
        body = dumps({"doc": doc, "slots": slots})
        await self._fill(keys=[key, f"{key}:v"], args=[version, body, self.ttl])
        return schedule

    async def patient_registered(self, doc: Document) -> None:
        """A new patient is cached at once (no record yet): its first booking attempt,
        often at a release, reads nothing from Mongo. Never raises."""
        key = self._patient_key(str(doc["_id"]))
        projected = {name: doc[name] for name in PATIENT_FIELDS if name in doc}
        body = dumps({"doc": projected, "record": {"_id": doc["_id"]}})
        try:
            version = await self.redis.get(f"{key}:v")
            await self._fill(keys=[key, f"{key}:v"], args=[str(version or "0"), body, self.ttl])
        except (RedisError, OSError) as exc:  # read from Mongo when first needed
            log.warning("admission.cache_fill_failed", error=str(exc))

    async def _invalidate(self, key: str) -> None:
        """Never raises: a change that could not be told expires from the cache by itself."""
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.incr(f"{key}:v")
                pipe.expire(f"{key}:v", self.ttl * 2)
                pipe.delete(key)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("admission.cache_invalidation_failed", error=str(exc))

    async def patient_changed(self, patient_id: str) -> None:
        """Its accounts or its booking record changed: the next attempt reads Mongo."""
        await self._invalidate(self._patient_key(patient_id))

    async def schedule_changed(self, schedule_id: str) -> None:
        """The session or its slots' pools changed: the next attempt reads Mongo."""
        await self._invalidate(self._schedule_key(schedule_id))

    async def policies_changed(self) -> None:
        try:
            await self.redis.incr(self.policy_version_key)
        except (RedisError, OSError) as exc:  # replicas reload policies within 10 s anyway
            log.warning("admission.policy_version_failed", error=str(exc))

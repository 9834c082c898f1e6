"""Incoming hotline calls (CTI pop): the telephony tells of a call, the agent's screen pops
the patients of the organization whose phone is the caller's.

A call is stored once per telephony call id (a repeat answers the same, with no second
pop), the caller's number only encrypted and masked, for :data:`store.CALL_DAYS` days.
The pop goes to a Redis stream per organization and extension (the id of the call only;
the masked pop is read from Mongo when delivered), kept an hour, read by the agents'
server-sent event streams; each delivered pop is audited (``call.popped``).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, cast

import structlog
from pydantic import BaseModel, Field
from pymongo.errors import DuplicateKeyError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.appointments.patients import Patients
from services.appointments.staff_search import PatientMatch, StaffSearch, to_match
from services.appointments.store import HOTLINE_CALLS
from shared.audit import AuditLog
from shared.mongo import Database, Document
from shared.principal import Principal
from shared.privacy import mask_phone
from shared.problems import Conflict, NotFound

log = structlog.get_logger(__name__)

CALLER_CONTEXT = "hotline_call.caller"  # AES-GCM context of the caller's number
STREAM_MAXLEN = 100
STREAM_TTL_SECONDS = 3600
HEARTBEAT_SECONDS = 15.0
BLOCK_MS = 1000  # below the Redis client's socket timeout (2 s)
STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")


class CallIn(BaseModel):
    call_id: str = Field(min_length=1, max_length=64, pattern=r"^[\w.:-]+$")
    caller_number: str = Field(pattern=r"^\d{3,20}$")
    extension: str = Field(pattern=r"^\d{2,8}$")
    org_id: str | None = Field(None, min_length=1, max_length=64)


class CallReceived(BaseModel):
    call_id: str
    matches: int


class CallPop(BaseModel):
    call_id: str
    caller_masked: str
    extension: str
    received_at: datetime
    matches: list[PatientMatch]


class HotlineCalls:
    def __init__(
        self,
        db: Database,
        redis: Redis,
        prefix: str,
        patients: Patients,
        search: StaffSearch,
        audit: AuditLog,
    ) -> None:
        self.collection = db[HOTLINE_CALLS]
        self.redis = redis
        self.prefix = prefix
        self.patients = patients
        self.search = search
        self.audit = audit

    def stream_key(self, org_id: str, extension: str) -> str:
        return f"{self.prefix}careloop:calls:{org_id}:{extension}"

    async def receive(self, body: CallIn, org_id: str) -> tuple[CallReceived, bool]:
        """Store the call and pop it; ``(answer, created)``: a repeat of the call id answers
        the same with ``created`` False and pops nothing."""
        existing = await self.collection.find_one({"_id": body.call_id})
        if existing is not None:
            return self._repeat(existing, org_id), False
        phone_hash = self.patients.phone_hash(body.caller_number)
        matched = await self.search.in_org(org_id, phone_hash)
        doc: dict[str, Any] = {
            "_id": body.call_id,
            "org_id": org_id,
            "extension": body.extension,
            "caller_enc": self.patients.cipher.encrypt(
                body.caller_number, context=CALLER_CONTEXT, record_id=body.call_id
            ),
            "caller_masked": mask_phone(body.caller_number),
            "patient_ids": [d["_id"] for d in matched],
            "received_at": datetime.now(UTC),
        }
        try:
            await self.collection.insert_one(doc)
        except DuplicateKeyError:  # the same call told twice at the same moment
            existing = await self.collection.find_one({"_id": body.call_id})
            assert existing is not None
            return self._repeat(existing, org_id), False
        key = self.stream_key(org_id, body.extension)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(key, {"call_id": body.call_id}, maxlen=STREAM_MAXLEN, approximate=True)
            pipe.expire(key, STREAM_TTL_SECONDS)
            await pipe.execute()
        log.info("hotline.call_received", call_id=body.call_id, org_id=org_id, matches=len(matched))
        return CallReceived(call_id=body.call_id, matches=len(matched)), True

    @staticmethod
    def _repeat(existing: Document, org_id: str) -> CallReceived:
        if existing["org_id"] != org_id:
            raise Conflict(
                "call_id_conflict",
                "this call id was told for another organization",
                detail_zh="该来电编号已用于其他机构",
            )
        return CallReceived(call_id=existing["_id"], matches=len(existing["patient_ids"]))

    async def get(self, call_id: str) -> Document:
        doc = await self.collection.find_one({"_id": call_id})
        if doc is None:
            raise NotFound("call_not_found", "no such call", detail_zh="来电记录不存在或已过期")
        return doc

    def caller_number(self, call: Document) -> str:
        return self.patients.cipher.decrypt(
            call["caller_enc"], context=CALLER_CONTEXT, record_id=call["_id"]
        )

    async def pop(self, call: Document) -> CallPop:
        """The call as the agent's screen shows it (masked), its patients as they are now."""
        ids = call.get("patient_ids", [])
        docs = await self.patients.collection.find({"_id": {"$in": ids}}).to_list()
        by_id = {d["_id"]: d for d in docs}
        received = call["received_at"]
        return CallPop(
            call_id=call["_id"],
            caller_masked=call["caller_masked"],
            extension=call["extension"],
            received_at=received if received.tzinfo else received.replace(tzinfo=UTC),
            matches=[to_match(by_id[i]) for i in ids if i in by_id],
        )

    async def _start(self, key: str, last_event_id: str | None) -> str:
        """Where to read from: after the client's last event, else after the newest."""
        if last_event_id is not None and STREAM_ID.fullmatch(last_event_id):
            millis, sequence = (int(part) for part in last_event_id.split("-"))
            if millis < 2**64 and sequence < 2**64:  # else not an id Redis takes: from now
                return last_event_id
        newest = await self.redis.xrevrange(key, count=1)
        return str(newest[0][0]) if newest else "0-0"

    async def stream(
        self,
        principal: Principal,
        org_id: str,
        extension: str,
        last_event_id: str | None,
        *,
        heartbeat: float = HEARTBEAT_SECONDS,
    ) -> AsyncIterator[str]:
        """Server-sent events: ``event: ready`` at once, then an ``event: call`` per pop at
        the extension from now (or after ``Last-Event-ID``), comment heartbeats while idle;
        ends when the client goes."""
        key = self.stream_key(org_id, extension)
        cursor = await self._start(key, last_event_id)
        yield "retry: 3000\n\n"
        yield f"event: ready\ndata: {json.dumps({'last_id': cursor})}\n\n"
        loop = asyncio.get_running_loop()
        idle_since = loop.time()
        while True:
            try:
                answer = await self.redis.xread({key: cursor}, count=10, block=BLOCK_MS)
            except (RedisError, TimeoutError) as exc:
                log.warning("hotline.stream_read_failed", error=str(exc))
                await asyncio.sleep(1.0)
                answer = []
            for _key, entries in cast(list[tuple[str, list[tuple[str, dict[str, str]]]]], answer):
                for entry_id, fields in entries:
                    cursor = str(entry_id)
                    event = await self._event(principal, org_id, cursor, fields.get("call_id"))
                    if event:
                        yield event
                        idle_since = loop.time()
            if loop.time() - idle_since >= heartbeat:
                yield ": heartbeat\n\n"
                idle_since = loop.time()

    async def _event(
        self, principal: Principal, org_id: str, entry_id: str, call_id: str | None
    ) -> str | None:
        call = await self.collection.find_one({"_id": call_id, "org_id": org_id})
        if call is None:  # expired meanwhile
            return None
        pop = await self.pop(call)
        await self.audit_pop(principal, pop, "call.popped")
        data = json.dumps(pop.model_dump(mode="json"), ensure_ascii=False)
        return f"event: call\nid: {entry_id}\ndata: {data}\n\n"

    async def audit_pop(
        self, principal: Principal, pop: CallPop, action: str, reason: str | None = None
    ) -> None:
        ids = [m.id for m in pop.matches]
        await self.audit.record(
            principal,
            action,
            patient_id=ids[0] if len(ids) == 1 else None,
            resource=f"call:{pop.call_id}",
            reason=reason,
            details={"patient_ids": ids, "extension": pop.extension},
        )

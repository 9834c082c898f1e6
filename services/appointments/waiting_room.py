"""The waiting room (排队) of a release window: tickets admitted in arrival order.

When a session has ``waiting_room_capacity`` admissions in flight (or tickets already
waiting), a booking request does not pile onto Mongo: it gets ``202`` and a ticket (its
position, an estimated wait, a URL to poll and an event stream). Every replica runs
:meth:`WaitingRoom.run`, which serves the oldest tickets as admissions settle: each is
booked exactly as a direct request would be (every check again), and its answer (the
booking, or the problem) is kept on the ticket for ``ticket_ttl_seconds``.

* One ticket per patient per session: asking again returns the same ticket.
* Slow-lane clients (flagged by the gateway during release windows) queue behind people.
* A ticket whose holder stops polling for ``ticket_idle_seconds`` expires unserved.
* "Sold out" reaches every waiting ticket as soon as it is certain: every pool empty and
  no admission in flight (one that fails gives its slot back, so until then tickets wait).

Keys live beside the session's admission state (its hash tag), tickets under ``wr:t:``.
docs/adr/0004 gives the reasons.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

import structlog
from pydantic_core import to_jsonable_python
from redis.asyncio import Redis

from services.appointments.admission import AdmissionGate
from services.appointments.booking_common import sold_out
from services.appointments.settings import AdmissionSettings
from shared.ids import new_id
from shared.outbox import is_contention
from shared.principal import Principal
from shared.problems import NotFound, Problem

log = structlog.get_logger(__name__)

SLOW_LANE = "slow"
_SLOW_OFFSET = 10**12  # behind every ticket of people, still in arrival order

# KEYS: queue, by-patient hash, sequence, active sessions set, the new ticket's hash
# ARGV: patient id, ticket id, score offset, ttl seconds, schedule id, then field/value pairs
ENQUEUE = """
local existing = redis.call('HGET', KEYS[2], ARGV[1])
if existing then
  local rank = redis.call('ZRANK', KEYS[1], existing)
  if rank then return {existing, rank + 1} end
  redis.call('HDEL', KEYS[2], ARGV[1])
end
local seq = redis.call('INCR', KEYS[3])
redis.call('ZADD', KEYS[1], seq + tonumber(ARGV[3]), ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
local fields = {}
for i = 6, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[5], unpack(fields))
redis.call('EXPIRE', KEYS[5], tonumber(ARGV[4]))
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[4]))
redis.call('SADD', KEYS[4], ARGV[5])
return {ARGV[2], redis.call('ZRANK', KEYS[1], ARGV[2]) + 1}
"""

# The oldest tickets, up to the room's free capacity; unpolled ones expire on the way.
# KEYS: queue, leases hash, by-patient hash, active sessions set
# ARGV: capacity, at most, now ms, idle ms, ticket key prefix, schedule id
# -> {ticket id, score, ...}
POP = """
local out = {}
local free = tonumber(ARGV[1]) - redis.call('HLEN', KEYS[2])
while free > 0 and #out < tonumber(ARGV[2]) * 2 do
  local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if #head == 0 then
    redis.call('SREM', KEYS[4], ARGV[6])
    break
  end
  redis.call('ZREM', KEYS[1], head[1])
  local ticket = ARGV[5] .. head[1]
  local seen = tonumber(redis.call('HGET', ticket, 'seen') or '0')
  if seen + tonumber(ARGV[4]) < tonumber(ARGV[3]) then
    redis.call('HSET', ticket, 'status', 'expired')
    local patient = redis.call('HGET', ticket, 'patient')
    if patient then redis.call('HDEL', KEYS[3], patient) end
  else
    redis.call('HSET', ticket, 'status', 'serving')
    out[#out + 1] = head[1]
    out[#out + 1] = head[2]
    free = free - 1
  end
end
return out
"""

# Sold out is certain for a ticket when every pool it may book from is empty and no
# admission is in flight: answer those. KEYS: queue, leases hash, by-patient hash
# ARGV: ticket key prefix, at most, the problem (JSON), the pool key prefix
# -> {answered, looked at}
SOLD_OUT = """
if redis.call('HLEN', KEYS[2]) > 0 then return {0, 0} end
local empty = {}
local done = 0
local ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1)
for _, id in ipairs(ids) do
  local ticket = ARGV[1] .. id
  local pools = redis.call('HGET', ticket, 'pools') or ''
  if empty[pools] == nil then
    empty[pools] = true
    for pool in string.gmatch(pools, '[^,]+') do
      if redis.call('LLEN', ARGV[4] .. pool) > 0 then empty[pools] = false end
    end
  end
  if empty[pools] and redis.call('HGET', ticket, 'slot') == '' then
    redis.call('HSET', ticket, 'status', 'sold_out', 'problem', ARGV[3])
    local patient = redis.call('HGET', ticket, 'patient')
    if patient then redis.call('HDEL', KEYS[3], patient) end
    redis.call('ZREM', KEYS[1], id)
    done = done + 1
  end
end
return {done, #ids}
"""

# A look at a ticket by its holder: marks it seen. KEYS: the ticket; ARGV: now ms, queue
# key prefix and suffix -> {status, subject, schedule, result, problem, rank (-1: none)}
PEEK = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
redis.call('HSET', KEYS[1], 'seen', ARGV[1])
local f = redis.call('HMGET', KEYS[1], 'status', 'subject', 'schedule', 'result', 'problem')
local rank = -1
if f[1] == 'queued' then
  local r = redis.call('ZRANK', ARGV[2] .. f[3] .. ARGV[3], string.match(KEYS[1], '([^:]*)$'))
  if r then rank = r end
end
return {f[1], f[2], f[3], f[4] or '', f[5] or '', rank}
"""

# serve(principal, request JSON, its Idempotency-Key ref) -> the booking's view; None: not
# yet (wait on); a raised Problem is the ticket's answer
Serve = Callable[[Principal, str, str], Awaitable[dict[str, Any] | None]]


@dataclass(frozen=True)
class Ticket:
    """A place in the waiting room, as answered with 202."""

    id: str
    schedule_id: str
    position: int
    estimated_wait_seconds: int


@dataclass(frozen=True)
class TicketState:
    id: str
    schedule_id: str
    status: str  # queued | serving | booked | sold_out | expired | failed
    position: int | None
    estimated_wait_seconds: int | None
    appointment: dict[str, Any] | None
    problem: dict[str, Any] | None


WAITING = ("queued", "serving")


def ticket_urls(ticket_id: str) -> dict[str, str]:
    poll = f"/v1/appointments/tickets/{ticket_id}"
    return {"poll_url": poll, "events_url": f"{poll}/events"}


def ticket_body(state: TicketState) -> dict[str, Any]:
    """A ticket's state as the API answers it (``routes.models.TicketView``)."""
    return {
        "id": state.id,
        "schedule_id": state.schedule_id,
        "status": state.status,
        "position": state.position,
        "estimated_wait_seconds": state.estimated_wait_seconds,
        **ticket_urls(state.id),
        "appointment": state.appointment,
        "problem": state.problem,
    }


def problem_body(problem: Problem) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": problem.type,
        "title": problem.title,
        "status": problem.status,
        "code": problem.code,
        "detail": problem.detail,
    }
    if problem.detail_zh:
        body["detail_zh"] = problem.detail_zh
    return {**body, **problem.extra}


class WaitingRoom:
    def __init__(
        self,
        redis: Redis,
        gate: AdmissionGate,
        settings: AdmissionSettings,
        prefix: str = "",
    ) -> None:
        self.redis = redis
        self.gate = gate
        self.settings = settings
        self.ticket_prefix = f"{prefix}wr:t:"
        self.active_key = f"{prefix}wr:active"
        self.serve: Serve | None = None  # set by the composition root
        self.pace_seconds = 0.25  # moving average of one booking's time in the room
        self._enqueue = redis.register_script(ENQUEUE)
        self._pop = redis.register_script(POP)
        self._sold_out = redis.register_script(SOLD_OUT)
        self._peek = redis.register_script(PEEK)
        self._stopped = asyncio.Event()

    def _keys(self, schedule_id: str) -> tuple[str, str, str]:
        tag = self.gate.tag(schedule_id)
        return self.gate.queue_key(schedule_id), f"{tag}:by_patient", f"{tag}:sequence"

    def estimate(self, position: int) -> int:
        capacity = max(1, self.settings.waiting_room_capacity)
        return max(1, math.ceil(position / capacity * self.pace_seconds))

    async def enqueue(
        self,
        *,
        principal: Principal,
        request: str,
        schedule_id: str,
        patient_id: str,
        pools: list[str],
        slot_id: str | None = None,
        lane: str = "",
        request_ref: str = "",
    ) -> Ticket:
        """A ticket for the patient in the session (the one it has, if it has one)."""
        queue, by_patient, sequence = self._keys(schedule_id)
        ticket_id = new_id()
        fields = {
            "status": "queued",
            "schedule": schedule_id,
            "patient": patient_id,
            "subject": principal.subject,
            "principal": principal.model_dump_json(),
            "request": request,
            "pools": ",".join(pools),
            "slot": slot_id or "",
            "ref": request_ref,
            "seen": str(int(time.time() * 1000)),
        }
        args = [
            patient_id,
            ticket_id,
            str(_SLOW_OFFSET if lane == SLOW_LANE else 0),
            str(self.settings.ticket_ttl_seconds),
            schedule_id,
            *(part for pair in fields.items() for part in pair),
        ]
        keys = [queue, by_patient, sequence, self.active_key, self.ticket_prefix + ticket_id]
        found, position = await self._enqueue(keys=keys, args=args)
        log.info("waiting_room.queued", ticket=found, schedule_id=schedule_id, position=position)
        return Ticket(str(found), schedule_id, int(position), self.estimate(int(position)))

    async def state(self, ticket_id: str, principal: Principal) -> TicketState:
        """The ticket as its holder sees it (404 for anyone else); counts as a poll."""
        tag_prefix = f"{self.gate.prefix}adm:{{"
        found = await self._peek(
            keys=[self.ticket_prefix + ticket_id],
            args=[str(int(time.time() * 1000)), tag_prefix, "}:queue"],
        )
        if not found or found[1] != principal.subject:
            raise NotFound("ticket_not_found", "no such ticket", detail_zh="排队号不存在或已过期")
        status, _subject, schedule_id, result, problem, rank = (str(x) for x in found)
        position = int(rank) + 1 if int(rank) >= 0 else None
        return TicketState(
            id=ticket_id,
            schedule_id=schedule_id,
            status=status,
            position=position,
            estimated_wait_seconds=self.estimate(position) if position else None,
            appointment=json.loads(result) if result else None,
            problem=json.loads(problem) if problem else None,
        )

    async def stream(
        self, ticket_id: str, principal: Principal, *, poll: float = 0.5, heartbeat: float = 15.0
    ) -> AsyncIterator[str]:
        """Server-sent events: an ``event: ticket`` whenever the ticket changes (its place
        included), comment heartbeats in between, and the stream ends with its answer."""
        state = await self.state(ticket_id, principal)  # 404 before the stream starts
        last = ""
        quiet = 0.0
        while True:
            body = json.dumps(ticket_body(state), ensure_ascii=False)
            if body != last:
                yield f"event: ticket\ndata: {body}\n\n"
                last, quiet = body, 0.0
            elif quiet >= heartbeat:
                yield ": heartbeat\n\n"
                quiet = 0.0
            if state.status not in WAITING:
                return
            await asyncio.sleep(poll)
            quiet += poll
            state = await self.state(ticket_id, principal)

    def stop(self) -> None:
        self._stopped.set()

    async def run(self, idle_sleep: float = 0.05) -> None:
        """Serve tickets until stopped (every replica runs one)."""
        while not self._stopped.is_set():
            try:
                served = await self.drain_once()
            except Exception as exc:  # Redis away: try again shortly
                log.warning("waiting_room.drain_failed", error=str(exc))
                served = 0
                idle_sleep_now = 1.0
            else:
                idle_sleep_now = 0.0 if served else idle_sleep
            if idle_sleep_now:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopped.wait(), idle_sleep_now)

    async def drain_once(self) -> int:
        """One round over the sessions with tickets: sold-out answers, then a batch served."""
        done = 0
        for schedule_id in sorted(await self.redis.smembers(self.active_key)):
            done += await self.answer_sold_out(str(schedule_id))
            done += await self._serve_batch(str(schedule_id))
        return done

    async def answer_sold_out(self, schedule_id: str) -> int:
        queue, by_patient, _ = self._keys(schedule_id)
        pool_prefix = f"{self.gate.tag(schedule_id)}:pool:"
        keys = [queue, self.gate.leases_key(schedule_id), by_patient]
        sold = problem_body(sold_out({"_id": schedule_id}))
        problem = json.dumps(sold, ensure_ascii=False)
        total = 0
        while True:
            args: list[str | int] = [self.ticket_prefix, 1000, problem, pool_prefix]
            done, looked_at = await self._sold_out(keys=keys, args=args)
            total += int(done)
            if int(done) == 0 or int(looked_at) < 1000:
                break
        if total:
            log.info("waiting_room.sold_out", schedule_id=schedule_id, tickets=total)
        return total

    async def _serve_batch(self, schedule_id: str) -> int:
        queue, by_patient, _ = self._keys(schedule_id)
        capacity = self.settings.waiting_room_capacity
        keys = [queue, self.gate.leases_key(schedule_id), by_patient, self.active_key]
        args: list[str | int] = [
            capacity,
            capacity,
            int(time.time() * 1000),
            int(self.settings.ticket_idle_seconds * 1000),
            self.ticket_prefix,
            schedule_id,
        ]
        popped = await self._pop(keys=keys, args=args)
        pairs = [(str(popped[i]), float(popped[i + 1])) for i in range(0, len(popped), 2)]
        if not pairs:
            return 0
        started = time.monotonic()
        await asyncio.gather(*(self._serve_one(schedule_id, t, score) for t, score in pairs))
        per_ticket = (time.monotonic() - started) / len(pairs) * max(1, capacity)
        self.pace_seconds = 0.8 * self.pace_seconds + 0.2 * per_ticket / max(1, capacity)
        return len(pairs)

    async def _requeue(self, schedule_id: str, ticket_id: str, key: str, score: float) -> None:
        queue = self.gate.queue_key(schedule_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, "status", "queued")
            pipe.zadd(queue, {ticket_id: score})
            pipe.sadd(self.active_key, schedule_id)
            await pipe.execute()

    async def _serve_one(self, schedule_id: str, ticket_id: str, score: float) -> None:
        key = self.ticket_prefix + ticket_id
        principal_json, request, ref = await self.redis.hmget(key, ["principal", "request", "ref"])
        if principal_json is None or request is None or self.serve is None:
            return
        principal = Principal.model_validate_json(principal_json)
        fields: dict[str, str]
        try:
            view = await self.serve(principal, str(request), str(ref or ""))
        except Problem as problem:
            status = "sold_out" if problem.code == "slot_sold_out" else "failed"
            body = json.dumps(problem_body(problem), ensure_ascii=False, default=str)
            fields = {"status": status, "problem": body}
            log.info("waiting_room.refused", ticket=ticket_id, code=problem.code)
        except Exception as exc:
            if is_contention(exc):
                # the patient's records are held by another transaction (one a killed
                # process left open holds them until the database reaps it): not an
                # answer, the ticket keeps its place and is served again
                log.warning("waiting_room.contended", ticket=ticket_id, error=str(exc))
                await self._requeue(schedule_id, ticket_id, key, score)
                return
            log.exception("waiting_room.serve_failed", ticket=ticket_id, error=str(exc))
            failed = Problem(503, "booking_failed", "the booking could not be made; try again")
            fields = {"status": "failed", "problem": json.dumps(problem_body(failed))}
        else:
            if view is None:  # no slot free yet, some still in flight: back to its place
                await self._requeue(schedule_id, ticket_id, key, score)
                return
            fields = {"status": "booked", "result": json.dumps(to_jsonable_python(view))}
        _, by_patient, _ = self._keys(schedule_id)
        patient = await self.redis.hget(key, "patient")
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=cast("dict[Any, Any]", fields))
            if patient:
                pipe.hdel(by_patient, patient)
            await pipe.execute()
        log.info("waiting_room.served", ticket=ticket_id, status=fields["status"])

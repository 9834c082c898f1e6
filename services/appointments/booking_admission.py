"""Before a booking touches Mongo: the checks Redis can answer, then admission.

:meth:`BookingAdmission.check` refuses from the Redis caches alone (not the caller's
patient, a cancelled or unreleased session, a slot of another pool or in the past, a
ban; :mod:`services.appointments.admission_cache`), and :meth:`BookingAdmission.admit`
asks the gate for a slot, counting the attempt against its limits in the same script
(:mod:`services.appointments.admission`). It takes over its own request's lease after a
crash, and checks a patient the gate holds as booked against Mongo. docs/adr/0004.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from services.appointments.admission import Admission, AdmissionGate, LeaseTerms, Outcome
from services.appointments.admission_cache import AdmissionCache, CachedPatient, CachedSchedule
from services.appointments.admission_leases import AdmissionLeases
from services.appointments.attempt_limits import AttemptPlan, BookingAttempts, refuse_if_exceeded
from services.appointments.booking_common import schedule_cancelled, slot_taken, sold_out
from services.appointments.domain import booking_rules, penalty_rules
from services.appointments.domain.errors import DomainError
from services.appointments.domain.models import Channel
from services.appointments.domain.policy import BookingPolicy
from services.appointments.policies import Policies
from services.appointments.records import PatientRecords
from services.appointments.schedules import Schedules
from services.appointments.settings import AdmissionSettings
from services.appointments.store import APPOINTMENTS, SLOTS
from shared.mongo import Database, Document
from shared.principal import Principal, Role
from shared.problems import Conflict, Forbidden, Problem, Unprocessable
from shared.scoping import ensure_org


class EscortRequest(BaseModel):
    """An inpatient who cannot walk to the exam: the referrals service asks for a porter's
    escort from the ward and bed, tied to the appointment (the transports' vocabulary)."""

    model_config = ConfigDict(extra="forbid")
    mode: Literal["wheelchair", "stretcher", "bed", "walk_with_escort"]
    needs: list[Literal["oxygen", "monitor", "isolation", "nurse_escort"]] = Field(
        default_factory=list, max_length=4
    )
    from_ward: str = Field(min_length=1, max_length=60)
    from_bed: str | None = Field(None, min_length=1, max_length=20)


class BookRequest(BaseModel):
    patient_id: str = Field(min_length=1, max_length=64)
    schedule_id: str = Field(min_length=1, max_length=200)
    slot_id: str | None = Field(None, max_length=200)
    channel: Channel | None = None
    referral_id: str | None = Field(None, max_length=64)
    escort: EscortRequest | None = Field(
        None, description="staff booking an inpatient's exam: the escort there (陪检)"
    )
    # the staff access reason: set by the route from shared.access_reason (query `reason` or
    # X-Access-Reason), never read from the body, so not in the request schema
    reason: SkipJsonSchema[str | None] = Field(None, max_length=200)


def check_referral_claim(principal: Principal, request: BookRequest) -> None:
    """A referral id closes a referral's loop when the visit is booked, so only those who
    can vouch for it name one: the referral coordinators and the referrals service. A
    patient's account cannot prove a referral is theirs (422 ``referral_not_verified``)."""
    if request.referral_id is None:
        return
    if principal.has_any(Role.COORDINATOR, Role.SERVICE):
        return
    raise Unprocessable(
        "referral_not_verified",
        "a referral booking is made by the referral coordinator or the referrals service",
        detail_zh="转诊预约需由转诊协调员办理",
    )


def check_escort_claim(principal: Principal, request: BookRequest) -> None:
    """An escort is asked for by the ward (staff) or a system acting for patients; a
    patient's account cannot ask for one (403 ``escort_staff_only``)."""
    if request.escort is None or principal.is_staff or principal.has_any(Role.SERVICE):
        return
    raise Forbidden(
        "escort_staff_only",
        "an escort to the exam is asked for by the ward's staff",
        detail_zh="陪检需由病区医护人员预约",
    )


def channel_for(principal: Principal, requested: Channel | None) -> Channel:
    """Patients book through the app; hotline agents and on-site nurses through their pools."""
    if not principal.is_staff and Role.SERVICE not in principal.roles:
        if requested not in (None, Channel.APP):
            raise Forbidden("channel_not_allowed", "patients book through the app channel")
        return Channel.APP
    if requested is not None:
        return requested
    return Channel.ONSITE if principal.has_any(Role.NURSE) else Channel.HOTLINE


@dataclass(frozen=True)
class Attempt:
    """A booking attempt that passed every check Redis can answer: ready to be admitted."""

    principal: Principal
    request: BookRequest
    patient: Document  # the cached projection: _id, account_ids, national_id_hash
    schedule: Document
    policy: BookingPolicy
    channel: Channel
    pools: list[str]
    wanted: str | None
    attempts: AttemptPlan | None  # counted by the admission script
    ref: str = ""  # the request's Idempotency-Key (scope:key), kept on its lease and booking


class BookingAdmission:
    """``capacity``: admissions in flight per session before requests wait in the waiting
    room (0: no waiting room)."""

    def __init__(
        self,
        db: Database,
        gate: AdmissionGate,
        cache: AdmissionCache,
        leases: AdmissionLeases,
        schedules: Schedules,
        policies: Policies,
        records: PatientRecords,
        attempts: BookingAttempts,
        settings: AdmissionSettings,
    ) -> None:
        self.db = db
        self.gate = gate
        self.cache = cache
        self.leases = leases
        self.schedules = schedules
        self.policies = policies
        self.records = records
        self.attempts = attempts
        self.settings = settings
        self.capacity = 0  # set by the composition root when the waiting room is on

    async def check(
        self,
        principal: Principal,
        request: BookRequest,
        now: datetime,
        ref: str = "",
    ) -> Attempt:
        """Every refusal Redis can answer: not the caller's patient, too many attempts, a
        cancelled or unreleased session, a slot of another pool or in the past, a ban.
        ``ref``: the request's Idempotency-Key (scope:key), if it has one."""
        patient, cached, version = await self.cache.lookup(request.patient_id, request.schedule_id)
        acts_for_patients = principal.is_staff or principal.has_any(Role.SERVICE)  # e.g. referrals
        if not (acts_for_patients or patient.managed_by(principal.subject)):
            raise Forbidden(
                "forbidden_patient",
                "you may not act for this patient",
                detail_zh="无权操作该就诊人",
            )
        try:
            return await self._checked(principal, request, now, patient, cached, version, ref)
        except (Problem, DomainError):  # refused before admission: the attempt counts too
            await self.attempts.check(principal, patient.doc, ref)  # (a 429 comes first)
            raise

    async def _checked(
        self,
        principal: Principal,
        request: BookRequest,
        now: datetime,
        patient: CachedPatient,
        cached: CachedSchedule,
        version: int,
        ref: str,
    ) -> Attempt:
        schedule = cached.doc
        check_referral_claim(principal, request)
        check_escort_claim(principal, request)
        if principal.is_staff:  # staff book in their own organization's sessions only
            ensure_org(principal, schedule["org_id"])
        if schedule["status"] != "published":
            raise schedule_cancelled()
        policy = await self.policies.for_org(schedule["org_id"], version=version)
        channel = channel_for(principal, request.channel)
        pools = booking_rules.open_pool_names(policy, schedule, channel, now)
        starts_at = schedule["ends_at"]
        if request.slot_id is not None:
            slot = cached.slots.get(request.slot_id) or await self.slot_of(
                schedule, request.slot_id
            )
            if slot["pool"] not in pools:
                raise Conflict(
                    "slot_not_in_pool",
                    "this numbered slot is reserved for others",
                    detail_zh="该号源为预留号源，当前渠道不可预约",
                )
            pools, starts_at = [slot["pool"]], slot["starts_at"]
        booking_rules.check_not_started(now=now, starts_at=starts_at)
        banned_until = self.records.banned_until(patient.record, policy, now, schedule["org_id"])
        penalty_rules.check_not_banned(banned_until, now, policy.timezone)
        plan = self.attempts.plan(principal, patient.doc, ref)  # per national ID and account
        return Attempt(
            principal,
            request,
            patient.doc,
            schedule,
            policy,
            channel,
            pools,
            request.slot_id,
            plan,
            ref,
        )

    async def admit(self, attempt: Attempt, *, serving_ticket: bool) -> Admission:
        """Admission for the attempt, taking over its own earlier lease after a crash.

        A patient the gate holds as booked is checked against Mongo: a booking made by this
        same request (its answer was lost) comes back as ``existing``; a guard left by a
        booking that failed after all is dropped, and admission asked again."""
        sid, pid = attempt.schedule["_id"], attempt.patient["_id"]
        terms = LeaseTerms(int(self.settings.lease_seconds * 1000), self.leases.owner, attempt.ref)
        capacity = self.capacity

        async def once(count: bool) -> Admission:
            args = (sid, pid, attempt.pools, attempt.wanted)
            plan = attempt.attempts if count and not serving_ticket else None
            admission = await self.gate.admit(
                *args, lease=terms, capacity=capacity, serving_ticket=serving_ticket, attempts=plan
            )
            if admission.outcome is Outcome.UNINITIALIZED:  # nothing counted yet
                await self.schedules.sync_admission(sid)
                admission = await self.gate.admit(
                    *args,
                    lease=terms,
                    capacity=capacity,
                    serving_ticket=serving_ticket,
                    attempts=plan,
                )
            if admission.outcome is Outcome.LIMITED and plan and admission.limited:
                refuse_if_exceeded(plan, admission.limited)
            return admission

        admission = await once(count=True)
        for _ in range(3):  # a lease may end while we look at it: then ask again
            if admission.outcome is not Outcome.LEASED or admission.lease is None:
                break
            held = admission.lease
            if terms.idempotency and held.idempotency == terms.idempotency:
                taken = await self.leases.take_over(sid, pid, held, terms)
                if taken is not None:  # a retry of this very request: go on with its slot
                    return Admission(Outcome.ADMITTED, taken.pool, taken.slot_id, lease=taken)
            elif not await self.leases.reconcile_if_dead(sid, pid, held):
                break  # a live request holds it
            admission = await once(count=False)
        if admission.outcome is Outcome.DUPLICATE:
            active = {"schedule_id": sid, "patient_id": pid, "active": True}
            existing = await self.db[APPOINTMENTS].find_one(active)
            if existing is None:  # a stale guard: the booking it stood for did not happen
                await self.gate.release(sid, pid, None, None)
                admission = await once(count=False)
            elif attempt.ref and existing.get("request_ref") == attempt.ref:
                return Admission(Outcome.DUPLICATE, existing=existing)
        if admission.outcome is Outcome.LEASED:
            raise Conflict(
                "booking_in_progress",
                "a booking for this patient in this session is still being made",
                detail_zh="该就诊人的预约正在处理中，请稍后查看",
                headers={"Retry-After": "2"},
            )
        if admission.outcome is Outcome.DUPLICATE:
            raise Conflict(
                "duplicate_booking",
                "already booked in this session",
                detail_zh="您已预约该医生同一时段的号源",
            )
        if admission.outcome is Outcome.SOLD_OUT:
            if attempt.wanted is not None:
                raise slot_taken()
            raise sold_out(attempt.schedule)
        return admission

    async def slot_of(self, schedule: Document, slot_id: str) -> Document:
        slot = await self.db[SLOTS].find_one({"_id": slot_id, "schedule_id": schedule["_id"]})
        if slot is None:
            raise Conflict("slot_not_found", "no such slot in this session")
        if slot["status"] != "open":
            raise Conflict("slot_taken", "this numbered slot is taken", detail_zh="该号源已被预约")
        return slot

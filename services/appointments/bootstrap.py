"""The composition root: every object the appointments routes and handlers use, built once
in the lifespan, in dependency order, each given its collaborators."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import structlog
from fastapi import Request

from services.appointments import store
from services.appointments.admission import AdmissionGate
from services.appointments.admission_cache import AdmissionCache
from services.appointments.admission_leases import AdmissionLeases
from services.appointments.admission_notices import AdmissionNotices
from services.appointments.appeal_queue import AppealQueue
from services.appointments.attempt_limits import BookingAttempts
from services.appointments.bed_offers import BedOffers
from services.appointments.bed_queries import BedQueries
from services.appointments.bed_stays import BedStays
from services.appointments.beds import Beds
from services.appointments.booking import Booking
from services.appointments.booking_admission import BookingAdmission
from services.appointments.cancellation import Cancellation
from services.appointments.catalog import Catalog
from services.appointments.changes import AppointmentChanges
from services.appointments.checkin import CheckIn
from services.appointments.clinic import ClinicCancellation
from services.appointments.domain.errors import DomainError
from services.appointments.extra_numbers import ExtraNumbers
from services.appointments.hotline_calls import HotlineCalls
from services.appointments.patient_links import PatientLinks
from services.appointments.patients import Patients
from services.appointments.penalties import Penalties
from services.appointments.policies import Policies
from services.appointments.queries import AppointmentQueries
from services.appointments.records import PatientRecords
from services.appointments.referral_bookings import ReferralBookings
from services.appointments.reschedule import Reschedule
from services.appointments.reserved_bookings import ReservedBookings
from services.appointments.revisit_bookings import RevisitBookings
from services.appointments.routes.errors import to_problem
from services.appointments.schedules import Schedules
from services.appointments.settings import AdmissionSettings
from services.appointments.staff_registration import StaffRegistration
from services.appointments.staff_search import StaffSearch, backfill_phone_hashes
from services.appointments.waiting_room import WaitingRoom
from services.appointments.waitlist import Waitlist
from services.appointments.waitlist_offers import WaitlistOffers
from shared.audit import AuditLog
from shared.crypto import FieldCipher
from shared.idempotency import IdempotencyKeys
from shared.mongo import Database
from shared.principal import Principal
from shared.replica_liveness import ReplicaLiveness
from shared.service import Runtime

log = structlog.get_logger(__name__)

EXTRA = "appointments"  # the key of the built objects in ``Runtime.extras``
BACKGROUND = "appointments.background"  # its background loops


@dataclass(frozen=True)
class Appointments:
    db: Database
    audit: AuditLog
    idempotency: IdempotencyKeys
    liveness: ReplicaLiveness  # this replica's heartbeat: held work names it
    leases: AdmissionLeases  # admissions in flight, reconciled when their request died
    waiting_room: WaitingRoom
    patients: Patients
    links: PatientLinks  # proof before an account adds a patient
    catalog: Catalog
    policies: Policies
    schedules: Schedules
    records: PatientRecords
    booking: Booking
    queries: AppointmentQueries
    cancellation: Cancellation
    waitlist: Waitlist
    changes: AppointmentChanges  # reschedule, check-in, extra numbers
    clinic: ClinicCancellation  # a cancelled session (停诊)
    penalties: Penalties  # appeals and staff overrides
    appeals: AppealQueue
    referrals: ReferralBookings  # the referral saga: book and cancel for referrals
    revisits: RevisitBookings  # follow-up revisits, booked from the reserved pool
    beds: Beds  # wards and beds (住院床位), their status and history
    admission_notices: AdmissionNotices  # 住院证 and the bed waiting list
    bed_offers: BedOffers  # assign, confirm, decline, expire, next candidate
    bed_stays: BedStays  # the HIS's admissions and discharges
    bed_queries: BedQueries  # candidates and figures
    staff_search: StaffSearch  # staff find a patient (phone, national ID, name)
    staff_registration: StaffRegistration  # a caller with no record, registered by staff
    calls: HotlineCalls  # incoming hotline calls and their pops (CTI)


def build(runtime: Runtime) -> Appointments:
    settings = runtime.settings
    db, outbox, audit, redis = runtime.db, runtime.outbox, runtime.audit, runtime.redis
    prefix = settings.redis_key_prefix
    cipher = FieldCipher.from_settings(settings.pii_encryption_keys, settings.pii_hash_key)
    admission = getattr(settings, "admission", AdmissionSettings())
    cache = AdmissionCache(redis, db, prefix, admission.cache_ttl_seconds)
    patients = Patients(
        db, cipher, outbox, on_change=cache.patient_changed, on_register=cache.patient_registered
    )
    catalog = Catalog(db, redis, prefix)
    policies = Policies(db, on_change=cache.policies_changed)
    gate = AdmissionGate(redis, prefix)
    schedules = Schedules(db, outbox, catalog, policies, gate, cache)
    records = PatientRecords(db, on_change=cache.patient_changed)
    liveness = ReplicaLiveness(redis, runtime.replica_id, prefix)
    leases = AdmissionLeases(
        db,
        gate,
        liveness,
        lease_seconds=admission.lease_seconds,
        interval_seconds=admission.reconcile_interval_seconds,
    )
    admitting = BookingAdmission(
        db,
        gate,
        cache,
        leases,
        schedules,
        policies,
        records,
        BookingAttempts.from_settings(redis, settings),
        admission,
    )
    booking = Booking(db, outbox, admitting, schedules, records, audit)
    room = WaitingRoom(redis, gate, admission, prefix)
    if admission.waiting_room_capacity > 0:
        admitting.capacity = admission.waiting_room_capacity
        booking.waiting_room = room

        async def serve(principal: Principal, request: str, ref: str) -> dict[str, Any] | None:
            try:
                return await booking.serve_ticket(principal, request, ref)
            except DomainError as error:  # the ticket's answer is the problem a client gets
                raise to_problem(error) from error

        room.serve = serve
    queries = AppointmentQueries(db, policies)
    waitlist = Waitlist(
        db,
        outbox,
        catalog,
        patients,
        schedules,
        policies,
        records,
        audit,
        WaitlistOffers(db, gate, policies),
    )
    # the waitlist takes a slot freed by a cancellation or a move first
    on_slot_freed = waitlist.offer_freed_slot
    cancellation = Cancellation(db, outbox, gate, policies, records, queries, audit, on_slot_freed)
    changes = AppointmentChanges(
        Reschedule(
            db,
            outbox,
            gate,
            catalog,
            patients,
            schedules,
            policies,
            records,
            queries,
            booking,
            audit,
            on_slot_freed,
        ),
        CheckIn(db, outbox, policies, queries, audit),
        ExtraNumbers(db, outbox, catalog, patients, schedules, policies, records, audit),
    )
    clinic = ClinicCancellation(
        db, outbox, gate, patients, schedules, policies, booking, waitlist, audit
    )
    penalties = Penalties(db, outbox, patients, policies, records, audit)
    reserved = ReservedBookings(db, admitting, booking, records)  # referrals and revisits
    beds = Beds(db, outbox)
    notices = AdmissionNotices(db, outbox, catalog, patients, audit)
    staff_search = StaffSearch(patients)
    return Appointments(
        db=db,
        audit=audit,
        idempotency=IdempotencyKeys(
            db, owner=runtime.replica_id, owner_alive=liveness.is_alive, wait_seconds=2.0
        ),
        liveness=liveness,
        leases=leases,
        waiting_room=room,
        patients=patients,
        links=PatientLinks(db, cipher, outbox, patients),
        catalog=catalog,
        policies=policies,
        schedules=schedules,
        records=records,
        booking=booking,
        queries=queries,
        cancellation=cancellation,
        waitlist=waitlist,
        changes=changes,
        clinic=clinic,
        penalties=penalties,
        appeals=AppealQueue(db, audit),
        referrals=ReferralBookings(db, reserved, cancellation, policies),
        revisits=RevisitBookings(reserved, policies),
        beds=beds,
        admission_notices=notices,
        bed_offers=BedOffers(db, outbox, beds, notices, patients, audit),
        bed_stays=BedStays(db, beds, patients),
        bed_queries=BedQueries(db, beds, notices),
        staff_search=staff_search,
        staff_registration=StaffRegistration(patients),
        calls=HotlineCalls(db, redis, prefix, patients, staff_search, audit),
    )


async def on_start(runtime: Runtime) -> None:
    await store.drop_retired_indexes(runtime.db)
    app = runtime.extras[EXTRA] = build(runtime)
    await app.liveness.beat()
    runtime.extras[BACKGROUND] = [
        asyncio.create_task(app.liveness.run(), name="replica-liveness"),
        asyncio.create_task(app.leases.run(), name="admission-leases"),
        asyncio.create_task(app.waiting_room.run(), name="waiting-room"),
        asyncio.create_task(backfill(app), name="phone-hash-backfill"),
    ]


async def backfill(app: Appointments) -> None:
    """Patients written before ``phone_hash`` get it (in batches; every start, idempotent)."""
    try:
        await backfill_phone_hashes(app.patients)
    except Exception as exc:  # Mongo away: the next start (or the PII rotation) does it
        log.warning("patients.phone_hash_backfill_failed", error=str(exc))


async def on_stop(runtime: Runtime) -> None:
    """The background loops end (a booking in flight keeps its lease for the others)."""
    app = built(runtime)
    app.waiting_room.stop()
    app.leases.stop()
    app.liveness.stop()
    tasks: list[asyncio.Task[None]] = runtime.extras.get(BACKGROUND, [])
    _done, pending = await asyncio.wait(tasks, timeout=2) if tasks else (set(), set())
    for task in pending:
        task.cancel()


def built(runtime: Runtime) -> Appointments:
    appointments: Appointments = runtime.extras[EXTRA]
    return appointments


def get_appointments(request: Request) -> Appointments:
    return built(request.app.state.runtime)

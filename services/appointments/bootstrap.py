"""The composition root: every object the appointments routes and handlers use, built once
in the lifespan, in dependency order, each given its collaborators."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from services.appointments import store
from services.appointments.admission import AdmissionGate
from services.appointments.appeal_queue import AppealQueue
from services.appointments.attempt_limits import BookingAttempts
from services.appointments.booking import Booking
from services.appointments.cancellation import Cancellation
from services.appointments.catalog import Catalog
from services.appointments.changes import AppointmentChanges
from services.appointments.checkin import CheckIn
from services.appointments.clinic import ClinicCancellation
from services.appointments.extra_numbers import ExtraNumbers
from services.appointments.patients import Patients
from services.appointments.penalties import Penalties
from services.appointments.policies import Policies
from services.appointments.queries import AppointmentQueries
from services.appointments.records import PatientRecords
from services.appointments.reschedule import Reschedule
from services.appointments.schedules import Schedules
from services.appointments.waitlist import Waitlist
from services.appointments.waitlist_offers import WaitlistOffers
from shared.audit import AuditLog
from shared.crypto import FieldCipher
from shared.idempotency import IdempotencyKeys
from shared.mongo import Database
from shared.service import Runtime

EXTRA = "appointments"  # the key of the built objects in ``Runtime.extras``


@dataclass(frozen=True)
class Appointments:
    db: Database
    audit: AuditLog
    idempotency: IdempotencyKeys
    patients: Patients
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


def build(runtime: Runtime) -> Appointments:
    settings = runtime.settings
    db, outbox, audit, redis = runtime.db, runtime.outbox, runtime.audit, runtime.redis
    prefix = settings.redis_key_prefix
    cipher = FieldCipher.from_settings(settings.pii_encryption_keys, settings.pii_hash_key)
    patients = Patients(db, cipher, outbox)
    catalog = Catalog(db, redis, prefix)
    policies = Policies(db)
    gate = AdmissionGate(redis, prefix)
    schedules = Schedules(db, outbox, catalog, policies, gate)
    records = PatientRecords(db)
    booking = Booking(
        db,
        outbox,
        gate,
        patients,
        schedules,
        policies,
        records,
        audit,
        BookingAttempts.from_settings(redis, settings),
    )
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
    return Appointments(
        db=db,
        audit=audit,
        idempotency=IdempotencyKeys(db),
        patients=patients,
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
    )


async def on_start(runtime: Runtime) -> None:
    await store.drop_retired_indexes(runtime.db)
    runtime.extras[EXTRA] = build(runtime)


def built(runtime: Runtime) -> Appointments:
    appointments: Appointments = runtime.extras[EXTRA]
    return appointments


def get_appointments(request: Request) -> Appointments:
    return built(request.app.state.runtime)

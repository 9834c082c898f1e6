"""Everything the appointments routes and handlers use, built once in the lifespan."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from services.appointments.admission import AdmissionGate
from services.appointments.attempt_limits import BookingAttempts
from services.appointments.booking import Booking
from services.appointments.cancellation import Cancellation
from services.appointments.catalog import Catalog
from services.appointments.changes import AppointmentChanges
from services.appointments.clinic import ClinicCancellation
from services.appointments.patients import Patients
from services.appointments.penalties import Penalties
from services.appointments.policies import Policies
from services.appointments.queries import AppointmentQueries
from services.appointments.records import PatientRecords
from services.appointments.schedules import Schedules
from services.appointments.waitlist import Waitlist
from shared.crypto import FieldCipher
from shared.idempotency import IdempotencyKeys
from shared.service import Runtime


@dataclass
class Appointments:
    runtime: Runtime
    patients: Patients
    catalog: Catalog
    policies: Policies
    schedules: Schedules
    records: PatientRecords
    gate: AdmissionGate
    booking: Booking
    idempotency: IdempotencyKeys
    queries: AppointmentQueries
    cancellation: Cancellation
    # features built on the core above; each takes this context
    waitlist: Waitlist = field(init=False)
    changes: AppointmentChanges = field(init=False)  # reschedule, check-in, extra numbers
    clinic: ClinicCancellation = field(init=False)  # a cancelled session (停诊)
    penalties: Penalties = field(init=False)  # appeals and staff overrides


def build(runtime: Runtime) -> Appointments:
    settings = runtime.settings
    db = runtime.db
    prefix = settings.redis_key_prefix
    cipher = FieldCipher.from_settings(settings.pii_encryption_keys, settings.pii_hash_key)
    patients = Patients(db, cipher, runtime.outbox)
    catalog = Catalog(db, runtime.redis, prefix)
    policies = Policies(db)
    gate = AdmissionGate(runtime.redis, prefix)
    schedules = Schedules(db, runtime.outbox, catalog, policies, gate)
    records = PatientRecords(db)
    booking = Booking(
        db,
        runtime.outbox,
        gate,
        patients,
        schedules,
        policies,
        records,
        runtime.audit,
        BookingAttempts.from_settings(runtime.redis, settings),
    )
    queries = AppointmentQueries(db, policies)
    cancellation = Cancellation(db, runtime.outbox, gate, policies, records, queries, runtime.audit)
    ctx = Appointments(
        runtime,
        patients,
        catalog,
        policies,
        schedules,
        records,
        gate,
        booking,
        IdempotencyKeys(db),
        queries,
        cancellation,
    )
    ctx.waitlist = Waitlist(ctx)
    ctx.changes = AppointmentChanges(ctx)
    ctx.clinic = ClinicCancellation(ctx)
    ctx.penalties = Penalties(ctx)
    cancellation.on_slot_freed = ctx.waitlist.offer_freed_slot
    return ctx


async def on_start(runtime: Runtime) -> None:
    runtime.extras["appointments"] = build(runtime)


def get_appointments(request: Request) -> Appointments:
    context: Appointments = request.app.state.runtime.extras["appointments"]
    return context

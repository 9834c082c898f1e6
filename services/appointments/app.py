"""The appointments app factory."""

from __future__ import annotations

from fastapi import FastAPI

from services.appointments import bootstrap, handlers, store
from services.appointments.domain.errors import DomainError
from services.appointments.routes import (
    admin,
    admissions,
    appeals,
    beds,
    bookings,
    catalog,
    changes,
    clinic,
    figures,
    hotline,
    patients,
    penalties,
    waitlist,
)
from services.appointments.routes.errors import handle_domain_error
from services.appointments.settings import AppointmentsSettings
from shared.idempotency import INDEXES as IDEMPOTENCY_INDEXES
from shared.kafka import topic_name
from shared.pii_rotation import EncryptedField
from shared.service import ServiceDefinition, create_service_app
from shared.settings import ServiceSettings


def definition(settings: ServiceSettings) -> ServiceDefinition:
    return ServiceDefinition(
        settings=settings,
        title="CareLoop appointments",
        routers=[
            catalog.router,
            patients.router,
            hotline.router,
            bookings.router,
            waitlist.router,
            changes.router,
            clinic.router,
            penalties.router,
            appeals.router,
            admin.router,
            beds.router,
            admissions.router,
            figures.router,
        ],
        indexes=[*store.INDEXES, IDEMPOTENCY_INDEXES],
        consumers=handlers.consumers,
        jobs=handlers.jobs,
        on_start=bootstrap.on_start,
        on_stop=bootstrap.on_stop,
        extra_topics=tuple(topic_name(settings, s) for s in handlers.CONSUMED_SERVICES),
        encrypted_fields=[
            EncryptedField(
                store.PATIENTS,
                "national_id_enc",
                "patient.national_id",
                hash_field="national_id_hash",
                hash_kind="national_id",
            ),
            EncryptedField(
                store.PATIENTS,
                "phone_enc",
                "patient.phone",
                hash_field="phone_hash",
                hash_kind="phone",
            ),
        ],
    )


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    app = create_service_app(definition(settings or AppointmentsSettings()))
    app.add_exception_handler(DomainError, handle_domain_error)
    return app

"""The appointments app factory."""

from __future__ import annotations

from fastapi import FastAPI

from services.appointments import handlers
from services.appointments.settings import AppointmentsSettings
from shared.kafka import topic_name
from shared.service import ServiceDefinition, create_service_app
from shared.settings import ServiceSettings


def definition(settings: ServiceSettings) -> ServiceDefinition:
    return ServiceDefinition(
        settings=settings,
        title="CareLoop appointments",
        consumers=handlers.consumers,
        jobs=handlers.jobs,
        extra_topics=tuple(topic_name(settings, s) for s in handlers.CONSUMED_SERVICES),
    )


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    return create_service_app(definition(settings or AppointmentsSettings()))

"""The referrals app factory."""

from __future__ import annotations

from fastapi import FastAPI

from services.referrals import bootstrap, handlers, store
from services.referrals.routes import cases, directory, fhir, porters, transports, worklists
from services.referrals.settings import ReferralsSettings
from shared.domain_errors import DomainError
from shared.domain_problems import handle_domain_error
from shared.kafka import topic_name
from shared.service import ServiceDefinition, create_service_app
from shared.settings import ServiceSettings


def definition(settings: ServiceSettings) -> ServiceDefinition:
    return ServiceDefinition(
        settings=settings,
        title="CareLoop referrals",
        routers=[
            directory.router,
            cases.router,
            worklists.router,
            transports.fhir_router,  # before fhir.router: /fhir/Task/transport/{id}
            fhir.router,
            transports.router,
            porters.router,
        ],
        indexes=store.INDEXES,
        consumers=handlers.consumers,
        jobs=handlers.jobs,
        on_start=bootstrap.on_start,
        extra_topics=tuple(topic_name(settings, s) for s in handlers.CONSUMED_SERVICES),
    )


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    app = create_service_app(definition(settings or ReferralsSettings()))
    app.add_exception_handler(DomainError, handle_domain_error)
    return app

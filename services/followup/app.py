"""The followup app factory; the lifespan also starts the HIS's HL7 v2 (MLLP) listener."""

from __future__ import annotations

import contextlib

import structlog
from fastapi import FastAPI

from services.followup import bootstrap, handlers, store
from services.followup.intake import RAW_CONTEXT
from services.followup.mllp import serve_mllp
from services.followup.routes import (
    call_list,
    complaints,
    figures,
    intake,
    plans,
    questionnaires,
    risk_flags,
    surveys,
    templates,
)
from services.followup.settings import FollowupSettings
from shared.domain_errors import DomainError
from shared.domain_problems import handle_domain_error
from shared.kafka import topic_name
from shared.pii_rotation import EncryptedField
from shared.service import Runtime, ServiceDefinition, create_service_app
from shared.settings import ServiceSettings

log = structlog.get_logger(__name__)
MLLP = "mllp"  # the listener in ``Runtime.extras``


async def on_start(runtime: Runtime) -> None:
    await bootstrap.on_start(runtime)
    await bootstrap.built(runtime).questionnaires.catalog.seed_builtins()
    settings = runtime.settings
    assert isinstance(settings, FollowupSettings)
    if not settings.mllp_enabled:
        return
    intake = bootstrap.built(runtime).intake

    async def handle(message: str) -> str:
        answer, _outcome = await intake.hl7(message, "mllp")
        return answer

    server = await serve_mllp(
        settings.mllp_host, settings.mllp_port, handle, max_frame=settings.mllp_max_frame_bytes
    )
    runtime.extras[MLLP] = server
    port = server.sockets[0].getsockname()[1]
    runtime.extras["mllp_port"] = port
    log.info("followup.mllp.listening", host=settings.mllp_host, port=port)


async def on_stop(runtime: Runtime) -> None:
    server = runtime.extras.pop(MLLP, None)
    if server is not None:
        server.close()
        with contextlib.suppress(Exception):
            await server.wait_closed()


def definition(settings: ServiceSettings) -> ServiceDefinition:
    return ServiceDefinition(
        settings=settings,
        title="CareLoop followup",
        routers=[
            intake.router,
            templates.router,
            plans.router,
            call_list.router,
            questionnaires.router,
            risk_flags.router,
            surveys.router,
            figures.router,
            complaints.router,
        ],
        indexes=store.INDEXES,
        consumers=handlers.consumers,
        jobs=handlers.jobs,
        on_start=on_start,
        on_stop=on_stop,
        extra_topics=tuple(topic_name(settings, s) for s in handlers.CONSUMED_SERVICES),
        encrypted_fields=[EncryptedField(store.INTAKE, "raw_enc", RAW_CONTEXT)],
    )


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    app = create_service_app(definition(settings or FollowupSettings()))
    app.add_exception_handler(DomainError, handle_domain_error)
    return app

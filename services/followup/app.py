"""The followup app factory."""

from __future__ import annotations

from fastapi import FastAPI

from services.followup import bootstrap, handlers
from services.followup.settings import FollowupSettings
from services.followup.store import INDEXES
from shared.kafka import topic_name
from shared.service import Runtime, ServiceDefinition, create_service_app
from shared.settings import ServiceSettings


async def on_start(runtime: Runtime) -> None:
    runtime.extras["followup"] = bootstrap.build(runtime)


def definition(settings: ServiceSettings) -> ServiceDefinition:
    return ServiceDefinition(
        settings=settings,
        title="CareLoop followup",
        indexes=INDEXES,
        consumers=handlers.consumers,
        jobs=handlers.jobs,
        on_start=on_start,
        extra_topics=tuple(topic_name(settings, s) for s in handlers.CONSUMED_SERVICES),
    )


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    return create_service_app(definition(settings or FollowupSettings()))

"""The notifications app factory."""

from __future__ import annotations

from fastapi import FastAPI

from services.notifications import handlers
from services.notifications.bootstrap import Notifications, build
from services.notifications.delivery import redeliver_topic
from services.notifications.dispatch import ADDRESS_CONTEXT
from services.notifications.recipients import PHONE_CONTEXT
from services.notifications.routes import (
    inbox,
    login_codes,
    messages,
    preferences,
    providers,
    staff_contacts,
)
from services.notifications.routes import templates as template_routes
from services.notifications.settings import NotificationsSettings
from services.notifications.staff_contacts import STAFF_PHONE_CONTEXT
from services.notifications.store import INDEXES, MESSAGES, RECIPIENTS, STAFF_CONTACTS
from shared.kafka import dlq_topic
from shared.pii_rotation import EncryptedField
from shared.service import Runtime, ServiceDefinition, create_service_app
from shared.settings import ServiceSettings

ROUTERS = (
    inbox.router,
    preferences.router,
    messages.router,
    template_routes.router,
    providers.router,
    login_codes.router,
    staff_contacts.router,
)


async def on_start(runtime: Runtime) -> None:
    runtime.extras["notifications"] = build(runtime)


async def on_stop(runtime: Runtime) -> None:
    ctx: Notifications | None = runtime.extras.get("notifications")
    if ctx is not None:
        for provider in ctx.providers.values():
            await provider.aclose()
        await ctx.previews.aclose()


def definition(settings: NotificationsSettings) -> ServiceDefinition:
    redeliver = redeliver_topic(settings)
    return ServiceDefinition(
        settings=settings,
        title="CareLoop notifications",
        routers=ROUTERS,
        indexes=INDEXES,
        consumers=handlers.consumers,
        jobs=handlers.jobs,
        on_start=on_start,
        on_stop=on_stop,
        extra_topics=(
            *handlers.consumer_topics(settings),
            dlq_topic(redeliver, "notifications.delivery"),
        ),
        encrypted_fields=[
            EncryptedField(RECIPIENTS, "phone_enc", PHONE_CONTEXT),
            EncryptedField(MESSAGES, "address_enc", ADDRESS_CONTEXT, record_id_field=None),
            EncryptedField(STAFF_CONTACTS, "phone_enc", STAFF_PHONE_CONTEXT),
        ],
    )


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    if settings is None:
        settings = NotificationsSettings()
    if not isinstance(settings, NotificationsSettings):
        settings = NotificationsSettings(**settings.model_dump())
    return create_service_app(definition(settings))

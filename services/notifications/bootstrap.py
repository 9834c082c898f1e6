"""The notifications composition root: every object the routes and handlers use, built once
in the lifespan with explicit constructor arguments."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import Counter

from services.notifications.callbacks import CallbackGuard
from services.notifications.consents import Consents
from services.notifications.delivery import Delivery
from services.notifications.dispatch import Dispatcher
from services.notifications.domain.channels import Channel
from services.notifications.domain.rules import Preferences
from services.notifications.inbox import Inbox
from services.notifications.limits import PatientRateLimit
from services.notifications.message_kinds import MessageKinds
from services.notifications.messages import Messages
from services.notifications.outcomes import Outcomes
from services.notifications.preferences import PreferenceStore
from services.notifications.preview_worker import TemplateSandbox
from services.notifications.providers.base import Provider
from services.notifications.providers.registry import build_providers
from services.notifications.receipts import Receipts
from services.notifications.recipients import Recipients
from services.notifications.reminders import Reminders
from services.notifications.sandbox_deliveries import SandboxDeliveries
from services.notifications.settings import NotificationsSettings
from services.notifications.staff_contacts import StaffContacts
from services.notifications.templates import TemplateStore
from shared.crypto import FieldCipher
from shared.idempotency import IdempotencyKeys
from shared.service import Runtime


@dataclass
class Notifications:
    runtime: Runtime
    settings: NotificationsSettings
    message_kinds: MessageKinds
    templates: TemplateStore
    preferences: PreferenceStore
    recipients: Recipients
    consents: Consents
    inbox: Inbox
    messages: Messages
    dispatcher: Dispatcher
    delivery: Delivery
    receipts: Receipts
    reminders: Reminders
    providers: dict[Channel, Provider]
    idempotency: IdempotencyKeys
    sandbox: SandboxDeliveries
    callbacks: CallbackGuard
    previews: TemplateSandbox  # staff's templates render in worker processes
    staff_contacts: StaffContacts  # how to reach a staff member with an alert


def _counters(runtime: Runtime) -> tuple[Counter, Counter, Counter]:
    registry = runtime.metrics.registry
    sent = Counter(
        "careloop_notifications_total",
        "Notification messages by channel and status",
        ["channel", "status"],
        registry=registry,
    )
    render = Counter(
        "careloop_template_render_failures_total",
        "Stored templates that failed to render (the built-in one was used)",
        ["kind", "channel"],
        registry=registry,
    )
    receipts = Counter(
        "careloop_notification_receipts_total",
        "Provider receipts by provider and outcome",
        ["provider", "outcome"],
        registry=registry,
    )
    return sent, render, receipts


def build(runtime: Runtime) -> Notifications:
    settings = runtime.settings
    assert isinstance(settings, NotificationsSettings)
    db = runtime.db
    sent, render_failures, receipt_counter = _counters(runtime)
    cipher = FieldCipher.from_settings(settings.pii_encryption_keys, settings.pii_hash_key)
    message_kinds = MessageKinds.load()
    default = Preferences(
        language=settings.default_language,
        quiet_hours=settings.default_quiet_hours,
    )
    previews = TemplateSandbox(
        timeout=settings.template_preview_timeout_seconds,
        max_output=settings.template_max_output_bytes,
        concurrency=settings.template_preview_concurrency,
    )
    templates = TemplateStore(
        db, runtime.outbox, message_kinds, render_failures, trial=previews.render
    )
    preferences = PreferenceStore(db, default)
    recipients = Recipients(db, cipher)
    consents = Consents(db, runtime.outbox, settings.wechat_template_ids)
    inbox = Inbox(db, runtime.redis, settings.redis_key_prefix)
    messages = Messages(db)
    dispatcher = Dispatcher(
        db,
        messages,
        templates,
        preferences,
        recipients,
        inbox,
        cipher,
        settings.hospital_timezone,
        sent,
        runtime.outbox,
    )
    providers = build_providers(settings, db)
    limits = PatientRateLimit(
        runtime.redis, settings.redis_key_prefix, settings.patient_rate_limit_per_hour
    )
    outcomes = Outcomes(db, settings, message_kinds, messages, dispatcher, consents, sent)
    delivery = Delivery(
        settings,
        message_kinds,
        messages,
        dispatcher,
        templates,
        consents,
        limits,
        providers,
        outcomes,
        runtime.outbox,
    )
    return Notifications(
        runtime=runtime,
        settings=settings,
        message_kinds=message_kinds,
        templates=templates,
        preferences=preferences,
        recipients=recipients,
        consents=consents,
        inbox=inbox,
        messages=messages,
        dispatcher=dispatcher,
        delivery=delivery,
        receipts=Receipts(runtime.outbox, message_kinds, messages, dispatcher, receipt_counter),
        reminders=Reminders(db, message_kinds, dispatcher, settings.reminder_offsets_minutes),
        providers=providers,
        idempotency=IdempotencyKeys(db),
        sandbox=SandboxDeliveries(db),
        callbacks=CallbackGuard(
            runtime.redis,
            settings.redis_key_prefix,
            window_seconds=settings.wechat_callback_window_seconds,
            allowed_networks=settings.aliyun_receipt_allowed_networks,
            trusted_proxies=settings.callback_trusted_proxies,
        ),
        previews=previews,
        staff_contacts=StaffContacts(db, cipher, runtime.outbox, runtime.audit),
    )

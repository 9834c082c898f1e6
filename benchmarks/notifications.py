"""Notifications costs as ratios on the same stack.

* dispatching one appointment event (preferences, recipient, inbox item, a message per
  channel and its delivery job, in one transaction) vs a bare outbox write (state + event);
* a delivery job (render, sandbox send, attempt record, events) vs the same bare write.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from datetime import UTC, datetime, timedelta

from devstack.stack import EmbeddedStack
from services.appointments.events import AppointmentBooked
from services.notifications.app import definition
from services.notifications.bootstrap import Notifications
from services.notifications.messages import Source
from services.notifications.recipients import PHONE_CONTEXT
from services.notifications.settings import NotificationsSettings
from shared.auth import generate_ed25519_keypair
from shared.crypto import FieldCipher, generate_key
from shared.events import make_event
from shared.jobs import JobRunner
from shared.outbox import Tx
from shared.privacy import mask_phone
from shared.service import start_runtime, stop_runtime

EVENTS = 150


def _facts(n: int) -> AppointmentBooked:
    starts = datetime.now(UTC) + timedelta(days=3)
    return AppointmentBooked(
        appointment_id=f"a{n}", patient_id=f"p{n}", account_id=f"acct{n}", org_id="h1",
        department_id="d1", department_name="心内科", resource_id="r1", resource_name="王医生",
        resource_kind="doctor", clinic_date=starts.date(), session="morning", number=n,
        starts_at=starts, ends_at=starts + timedelta(minutes=10), channel="mini_program",
    )  # fmt: skip


async def bench_notifications(stack: EmbeddedStack) -> list[tuple[str, float, float]]:
    settings = NotificationsSettings(
        mongo_url=stack.mongo_url,
        mongo_db="bench_notifications",
        kafka_bootstrap=stack.kafka_bootstrap,
        kafka_topic_prefix="benchn",
        redis_url=stack.redis_url(),
        redis_key_prefix="benchn:",
        pii_encryption_keys=f"k1:{generate_key()}",
        pii_hash_key=generate_key(),
        patient_rate_limit_per_hour=0,
        jwt_public_key=generate_ed25519_keypair()[1],
        quiet_hours_start="00:00",
        quiet_hours_end="00:00",
    )
    runtime = await start_runtime(dataclasses.replace(definition(settings), run_workers=False))
    ctx: Notifications = runtime.extras["notifications"]
    kind = ctx.message_kinds.kinds["appointment.booked"]
    try:
        started = time.perf_counter()
        for n in range(EVENTS):

            async def bare(tx: Tx, n: int = n) -> None:
                await runtime.db.bare_state.insert_one({"n": n}, session=tx.session)
                tx.emit(make_event(_facts(n), source="bench", subject=f"p{n}"))

            await runtime.outbox.transaction(bare)
        baseline = EVENTS / (time.perf_counter() - started)

        cipher = FieldCipher.from_settings(settings.pii_encryption_keys, settings.pii_hash_key)
        for n in range(EVENTS):
            phone = f"138{n:08d}"

            async def known(tx: Tx, n: int = n, phone: str = phone) -> None:
                await ctx.recipients.patient_registered(
                    tx.session, patient_id=f"p{n}", account_id=f"acct{n}",
                    phone_enc=cipher.encrypt(phone, context=PHONE_CONTEXT),
                    phone_masked=mask_phone(phone),
                )  # fmt: skip

            await runtime.outbox.transaction(known)

        started = time.perf_counter()
        for n in range(EVENTS):
            event = _facts(n)
            source = Source(id=f"e{n}", event_type=event.event_type, patient_id=f"p{n}",
                            account_id=f"acct{n}")  # fmt: skip
            data = event.model_dump(mode="json")
            await runtime.outbox.transaction(
                functools.partial(ctx.dispatcher.dispatch, kind=kind, source=source, context=data)
            )
        dispatched = EVENTS / (time.perf_counter() - started)

        runner = JobRunner(runtime.outbox, settings, {}, worker_id="bench")
        runner.handlers = {"notification.deliver": ctx.delivery.run}
        started = time.perf_counter()
        done = 0
        while (job := await runner.claim_next()) is not None:
            await runner.run_job(job)
            done += 1
        delivered = done / (time.perf_counter() - started) if done else 0.0
    finally:
        await stop_runtime(runtime, definition(settings))
    return [
        ("notification dispatch (inbox + messages + job) vs outbox write", dispatched, baseline),
        (
            "notification delivery job (render, sandbox SMS, record) vs outbox write",
            delivered,
            baseline,
        ),
    ]

"""Reminders: timed jobs before the visit, moved on reschedule, dropped on cancel, fired once."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from services.notifications.reminders import REMINDER_JOB
from shared.jobs import JOBS
from tests.integration.notifications.conftest import (
    NotificationsApi,
    booked,
    cancelled,
    facts,
    rescheduled,
    running_notifications,
)
from tests.support.kafka import wait_until

SOON = timedelta(seconds=63)  # with a 1-minute offset, the reminder is due in ~3 s


async def reminder_jobs(api: NotificationsApi, appointment_id: str) -> list[dict[str, Any]]:
    query = {"kind": REMINDER_JOB, "payload.appointment_id": appointment_id}
    return await api.ctx.runtime.db[JOBS].find(query).sort("due_at", 1).to_list()


async def test_booking_schedules_reminders_at_each_offset(
    notifications_settings: Any, minter: Any
) -> None:
    settings = notifications_settings(reminder_offsets_minutes=[1440, 120])
    async with running_notifications(settings, minter) as api:
        patient_id, account_id, _ = await api.register_patient()
        f = facts(patient_id, account_id, starts_in=timedelta(days=3))
        await api.publish(booked(f))
        await wait_until(lambda: _has_jobs(api, f["appointment_id"], 2), what="two reminders")
        jobs = await reminder_jobs(api, f["appointment_id"])
        starts = f["starts_at"]
        assert [j["due_at"].replace(tzinfo=starts.tzinfo) for j in jobs] == [
            starts - timedelta(minutes=1440),
            starts - timedelta(minutes=120),
        ]
        assert {j["status"] for j in jobs} == {"scheduled"}


async def _has_jobs(api: NotificationsApi, appointment_id: str, n: int) -> bool:
    return len(await reminder_jobs(api, appointment_id)) >= n


async def test_reminder_fires_once_with_the_visit_details(
    notifications_settings: Any, minter: Any
) -> None:
    settings = notifications_settings(reminder_offsets_minutes=[1440, 1])
    async with running_notifications(settings, minter) as api:
        patient_id, account_id, _ = await api.register_patient()
        f = facts(patient_id, account_id, starts_in=SOON, preparation="空腹")
        await api.publish(booked(f))
        sms = await api.wait_for_sandbox(1, patient_id=patient_id, kind="appointment.reminder")
        assert "王医生" in sms[0]["body"]
        jobs = await reminder_jobs(api, f["appointment_id"])
        assert [j["status"] for j in jobs] == ["done"]  # the 24-hour one was already past
        await asyncio.sleep(1.5)
        assert len(await api.sandbox(patient_id=patient_id, kind="appointment.reminder")) == 1


async def test_reschedule_moves_the_reminders(notifications_settings: Any, minter: Any) -> None:
    settings = notifications_settings(reminder_offsets_minutes=[1440, 1])
    async with running_notifications(settings, minter) as api:
        patient_id, account_id, _ = await api.register_patient()
        old = facts(patient_id, account_id, starts_in=timedelta(seconds=90))
        new = facts(patient_id, account_id, starts_in=timedelta(days=2))
        await api.publish(booked(old))
        await wait_until(lambda: _has_jobs(api, old["appointment_id"], 1), what="old reminder")
        await api.publish(rescheduled(old, new))
        await wait_until(lambda: _has_jobs(api, new["appointment_id"], 2), what="new reminders")
        assert [j["status"] for j in await reminder_jobs(api, old["appointment_id"])] == [
            "cancelled"
        ]
        moved = await reminder_jobs(api, new["appointment_id"])
        assert [j["due_at"].replace(tzinfo=new["starts_at"].tzinfo) for j in moved] == [
            new["starts_at"] - timedelta(minutes=1440),
            new["starts_at"] - timedelta(minutes=1),
        ]
        await api.wait_for_sandbox(1, patient_id=patient_id, kind="appointment.rescheduled")
        assert await api.sandbox(patient_id=patient_id, kind="appointment.reminder") == []


async def test_cancellation_drops_the_reminders(notifications_settings: Any, minter: Any) -> None:
    settings = notifications_settings(reminder_offsets_minutes=[1])
    async with running_notifications(settings, minter) as api:
        patient_id, account_id, _ = await api.register_patient()
        f = facts(patient_id, account_id, starts_in=timedelta(seconds=66))
        await api.publish(booked(f))
        await api.publish(cancelled(f))
        await api.wait_for_sandbox(1, patient_id=patient_id, kind="appointment.cancelled")
        jobs = await reminder_jobs(api, f["appointment_id"])
        assert [j["status"] for j in jobs] == ["cancelled"]
        await asyncio.sleep(7)  # past the time the reminder would have fired
        assert await api.sandbox(patient_id=patient_id, kind="appointment.reminder") == []


async def test_two_replicas_fire_each_reminder_and_send_each_message_once(
    notifications_settings: Any, minter: Any
) -> None:
    settings = notifications_settings(reminder_offsets_minutes=[1])
    async with (
        running_notifications(settings, minter) as one,
        running_notifications(settings, minter) as two,
    ):
        patients = [await one.register_patient() for _ in range(6)]
        for i, (patient_id, account_id, _) in enumerate(patients):
            f = facts(patient_id, account_id, starts_in=SOON + timedelta(seconds=i))
            await (one if i % 2 else two).publish(booked(f))
        await one.wait_for_sandbox(12, timeout=60)
        await asyncio.sleep(2)
        deliveries = await one.sandbox()
        assert len(deliveries) == 12  # a confirmation and a reminder each, never twice
        assert len({d["message_id"] for d in deliveries}) == 12
        for patient_id, _, _ in patients:
            kinds = sorted(d["kind"] for d in deliveries if d["patient_id"] == patient_id)
            assert kinds == ["appointment.booked", "appointment.reminder"]

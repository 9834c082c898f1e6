"""A delivery that dies between the provider call and its record does not send blindly again.

The attempt is recorded (message ``sending``) before the provider is called; the run that
picks the job up after the lease expired asks the provider about the message's key first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from services.appointments.events import PatientRegistered
from services.notifications.domain.channels import Channel
from services.notifications.handlers import jobs
from services.notifications.providers.base import Lookup, Provider, SendRequest, SendResult
from services.notifications.recipients import PHONE_CONTEXT
from services.notifications.settings import NotificationsSettings
from services.notifications.store import MESSAGES
from shared.auth import TokenMinter
from shared.crypto import FieldCipher
from shared.events import Envelope, make_event
from shared.ids import new_id
from shared.jobs import JobRunner
from shared.mongo import Database, Document
from shared.outbox import request_headers
from shared.privacy import mask_phone
from tests.factories import make_phone
from tests.integration.notifications.conftest import (
    NotificationsApi,
    booked,
    facts,
    running_notifications,
)
from tests.support.kafka import wait_until
from tests.support.provider_servers import (
    ALIYUN_KEY_ID,
    ALIYUN_KEY_SECRET,
    ALIYUN_SIGN_NAME,
    WECHAT_APP_ID,
    WECHAT_APP_SECRET,
    AliyunSmsServer,
    WechatServer,
)
from tests.support.server import serve
from tests.support.service_process import service_process

KIND = "appointment.booked"


def aliyun_settings(build: Callable[..., NotificationsSettings], url: str) -> NotificationsSettings:
    return build(
        sms_provider="aliyun",
        aliyun_sms_endpoint=f"{url}/",
        aliyun_access_key_id=ALIYUN_KEY_ID,
        aliyun_access_key_secret=ALIYUN_KEY_SECRET,
        aliyun_sms_sign_name=ALIYUN_SIGN_NAME,
        sms_template_codes={KIND: "SMS_100"},
        jobs_lease_seconds=3.0,
    )


async def message_of(db: Database, patient_id: str, channel: str) -> Document | None:
    return await db[MESSAGES].find_one({"patient_id": patient_id, "kind": KIND, "channel": channel})


async def until_status(db: Database, patient_id: str, channel: str, status: str) -> Document:
    async def reached() -> bool:
        msg = await message_of(db, patient_id, channel)
        return msg is not None and msg["status"] == status

    await wait_until(reached, timeout=30, what=f"the {channel} message {status}")
    msg = await message_of(db, patient_id, channel)
    assert msg is not None
    return msg


async def publish(settings: NotificationsSettings, events: list[Envelope]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        for event in events:
            await producer.send_and_wait(
                f"{settings.kafka_topic_prefix}.appointments",
                event.to_bytes(),
                key=event.subject.encode(),
                headers=[(k, v.encode()) for k, v in request_headers(event).items()],
            )
    finally:
        await producer.stop()


def registered(settings: NotificationsSettings, patient_id: str, account_id: str) -> Envelope:
    cipher = FieldCipher.from_settings(settings.pii_encryption_keys, settings.pii_hash_key)
    phone = make_phone()
    payload = PatientRegistered(
        patient_id=patient_id,
        account_id=account_id,
        relation="self",
        phone_enc=cipher.encrypt(phone, context=PHONE_CONTEXT, record_id=patient_id),
        phone_masked=mask_phone(phone),
    )
    return make_event(payload, source="appointments", subject=patient_id)


async def test_a_service_killed_after_aliyun_took_the_sms_does_not_send_it_again(
    notifications_settings: Callable[..., NotificationsSettings],
    minter: TokenMinter,
    tmp_path: Path,
) -> None:
    server = AliyunSmsServer()
    async with serve(server.app) as url:
        settings = aliyun_settings(notifications_settings, url)
        server.answer_late(1, 8.0)  # Aliyun takes the SMS; its answer comes too late
        proc = service_process("notifications", settings, tmp_path).start(timeout=60)
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{proc.port}") as client:
                for _ in range(200):
                    if (await client.get("/readyz")).status_code == 200:
                        break
                    await asyncio.sleep(0.1)
            patient_id, account_id = new_id(), new_id()
            await publish(
                settings,
                [
                    registered(settings, patient_id, account_id),
                    booked(facts(patient_id, account_id)),
                ],
            )

            async def taken() -> bool:
                return len(server.sends) == 1

            await wait_until(taken, timeout=60, what="Aliyun taking the SMS")
        finally:
            proc.kill()  # SIGKILL while the send's answer is on its way
        async with running_notifications(settings, minter) as api:
            db = api.ctx.runtime.db
            begun = await message_of(db, patient_id, "sms")
            assert begun is not None
            assert begun["status"] in ("sending", "delivered")  # the survivor may be quick
            msg = await until_status(db, patient_id, "sms", "delivered")
        assert len(server.sends) == 1
        assert server.sends[0].out_id == msg["_id"]
        assert server.queries >= 1
        assert [a["status"] for a in msg["attempts"]] == ["delivered"]
        assert msg["sending"] is None


class CrashAround:
    """A provider stand-in's wrapper that kills the job's worker (cancels its task) once,
    before or after the real call."""

    def __init__(self, inner: Provider, *, after_call: bool) -> None:
        self.inner = inner
        self.name = inner.name
        self.channel = inner.channel
        self.after_call = after_call
        self.crashed = False
        self.sends = 0

    async def send(self, request: SendRequest) -> SendResult:
        if not self.crashed and not self.after_call:
            await self._crash()
        result = await self.inner.send(request)
        self.sends += 1
        if not self.crashed:
            await self._crash()
        return result

    async def lookup(self, request: SendRequest, since: datetime) -> Lookup:
        return await self.inner.lookup(request, since)

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def _crash(self) -> None:
        self.crashed = True
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        await asyncio.sleep(0)


async def survive(api: NotificationsApi) -> asyncio.Task[None]:
    """Another worker, after the crashed one's job task is gone."""
    runtime = api.ctx.runtime
    assert runtime.jobs is not None
    jobs_task = next(t for t in runtime.tasks if t.get_name() == "jobs")
    await wait_until(_done(jobs_task), what="the crashed worker gone")
    survivor = JobRunner(runtime.outbox, api.settings, jobs(runtime), worker_id="survivor")
    runtime.jobs = survivor
    task = asyncio.create_task(survivor.run(), name="jobs")
    runtime.tasks.append(task)
    return task


def _done(task: asyncio.Task[Any]) -> Callable[[], Any]:
    async def done() -> bool:
        return task.done()

    return done


async def test_a_worker_killed_before_the_send_sends_it_once_after_asking(
    notifications_settings: Callable[..., NotificationsSettings], minter: TokenMinter
) -> None:
    settings = notifications_settings(jobs_lease_seconds=2.0)
    async with running_notifications(settings, minter) as api:
        wrapper = CrashAround(api.ctx.providers[Channel.SMS], after_call=False)
        api.ctx.providers[Channel.SMS] = wrapper
        patient_id, account_id, _ = await api.register_patient()
        await api.publish(booked(facts(patient_id, account_id)))
        db = api.ctx.runtime.db
        await until_status(db, patient_id, "sms", "sending")
        await survive(api)
        msg = await until_status(db, patient_id, "sms", "delivered")
        assert wrapper.sends == 1
        assert len(await api.sandbox(patient_id=patient_id, channel="sms")) == 1
        assert [a["status"] for a in msg["attempts"]] == ["delivered"]


async def test_a_wechat_send_whose_answer_was_lost_ends_unknown_not_sent_twice(
    notifications_settings: Callable[..., NotificationsSettings], minter: TokenMinter
) -> None:
    server = WechatServer()
    async with serve(server.app) as url:
        settings = notifications_settings(
            wechat_provider="wechat",
            wechat_api_base=url,
            wechat_app_id=WECHAT_APP_ID,
            wechat_app_secret=WECHAT_APP_SECRET,
            wechat_template_ids={KIND: "tpl-booked"},
            jobs_lease_seconds=2.0,
        )
        async with running_notifications(settings, minter) as api:
            wrapper = CrashAround(api.ctx.providers[Channel.WECHAT], after_call=True)
            api.ctx.providers[Channel.WECHAT] = wrapper
            patient_id, account_id, _ = await api.register_patient()
            headers = api.token(account_id)
            bound = await api.client.put(
                f"/v1/notifications/accounts/{account_id}/wechat",
                json={"openid": "oWx" + "1" * 24},
                headers=api.service,
            )
            assert bound.status_code == 200, bound.text
            granted = await api.client.post(
                "/v1/notifications/me/wechat/consents",
                json={"results": {"tpl-booked": "accept"}},
                headers=headers,
            )
            assert granted.status_code == 200, granted.text
            await api.publish(booked(facts(patient_id, account_id)))
            db = api.ctx.runtime.db
            await until_status(db, patient_id, "wechat", "sending")
            await survive(api)
            msg = await until_status(db, patient_id, "wechat", "unknown")
            assert msg["reason"] == "outcome_unknown"
            assert len(server.sends) == 1
            assert [a["status"] for a in msg["attempts"]] == ["unknown"]
            await asyncio.sleep(1)  # no fallback to SMS: the WeChat message probably arrived
            assert await message_of(db, patient_id, "sms") is None


async def test_an_sms_whose_answer_timed_out_is_looked_up_not_sent_again(
    notifications_settings: Callable[..., NotificationsSettings], minter: TokenMinter
) -> None:
    server = AliyunSmsServer()
    async with serve(server.app) as url:
        settings = aliyun_settings(notifications_settings, url).model_copy(
            update={"provider_timeout_seconds": 0.5}
        )
        async with running_notifications(settings, minter) as api:
            db = api.ctx.runtime.db
            # first: Aliyun sends it, but answers after the adapter gave up waiting
            server.answer_late(1, 1.5)
            patient_id, account_id, _ = await api.register_patient()
            await api.publish(booked(facts(patient_id, account_id)))
            late = await until_status(db, patient_id, "sms", "delivered")
            assert len(server.sends) == 1
            assert [a["status"] for a in late["attempts"]] == ["delivered"]
            # then: Aliyun is slow to take it, the adapter gives up, nothing was sent
            server.delay_next(1, 1.5)
            other, other_account, _ = await api.register_patient()
            await api.publish(booked(facts(other, other_account)))
            slow = await until_status(db, other, "sms", "sent")  # sent now: a receipt follows
            assert len(server.sends) == 2
            assert server.sends[1].out_id == slow["_id"]
            assert [a["status"] for a in slow["attempts"]] == ["sent"]

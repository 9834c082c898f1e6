"""Turning one event (or reminder, or login code) into messages, inside the caller's transaction.

For a message kind and a patient, it writes the inbox item and its message,
records a ``suppressed`` message for each push channel left out (turned off, no address),
and queues the first push channel of the plan with a delivery job due now or at the end
of the patient's quiet hours. Later channels are queued only when the one before fails
(:meth:`Dispatcher.fall_back`). Every message has a dedupe key, so a redelivered event or a
re-run job never makes a second message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import structlog
from prometheus_client import Counter

from services.notifications.domain.channels import Channel
from services.notifications.domain.rules import (
    Preferences,
    fallback_after,
    is_expired,
    plan_channels,
    send_at,
)
from services.notifications.inbox import Inbox
from services.notifications.message_kinds import MessageKind
from services.notifications.messages import Messages, Source, Status, dedupe_key, new_message
from services.notifications.preferences import PreferenceStore
from services.notifications.recipients import Recipients
from services.notifications.rendering import RenderError
from services.notifications.store import DISPATCHES
from services.notifications.templates import TemplateStore
from shared.crypto import FieldCipher
from shared.jobs import schedule_job
from shared.mongo import Database, Document
from shared.outbox import Outbox, Tx
from shared.privacy import mask_phone

log = structlog.get_logger(__name__)

DELIVER_JOB = "notification.deliver"
ADDRESS_CONTEXT = "notification.address"


def deliver_job_key(message_id: str) -> str:
    return f"deliver:{message_id}"


@dataclass
class Dispatcher:
    db: Database
    messages: Messages
    templates: TemplateStore
    preferences: PreferenceStore
    recipients: Recipients
    inbox: Inbox
    cipher: FieldCipher
    timezone: str
    counted: Counter  # notifications by channel and status
    outbox: Outbox

    async def send_now(
        self,
        kind: MessageKind,
        source: Source,
        context: Mapping[str, Any],
        *,
        address: str,
        language: str,
    ) -> list[str]:
        """Write the messages of one kind to ``address`` in a transaction of their own."""

        async def work(tx: Tx) -> list[str]:
            return await self.dispatch(
                tx, kind, source, context, address=address, language=language
            )

        return await self.outbox.transaction(work)

    async def dispatch(
        self,
        tx: Tx,
        kind: MessageKind,
        source: Source,
        context: Mapping[str, Any],
        *,
        address: str | None = None,
        language: str | None = None,
        now: datetime | None = None,
    ) -> list[str]:
        """Write the messages of one kind for one source; returns their ids."""
        now = now or datetime.now(UTC)
        prefs = await self._preferences(tx, source)
        if language is not None:
            prefs = replace(prefs, language=language)
        expires_at = _expiry(kind, context)
        data = dict(context)
        if is_expired(now, expires_at):
            log.info("notification.expired_before_dispatch", kind=kind.kind)
            self.counted.labels("any", Status.EXPIRED.value).inc()
            return []
        dispatch_id = f"{source.id}:{kind.kind}"
        if await self.db[DISPATCHES].find_one({"_id": dispatch_id}, session=tx.session):
            return []  # this source was dispatched already (a re-run job, a replayed event)
        ids: list[str] = []
        if kind.inbox and source.account_id:
            ids.append(await self._to_inbox(tx, kind, source, data, prefs.language, now))
        reachable, masked = await self._reachability(tx, source, address)
        plan = plan_channels(kind.push, mandatory=kind.mandatory, prefs=prefs, reachable=reachable)
        chain = [c.value for c in plan.chain]
        for skipped in plan.skipped:
            doc = new_message(
                source,
                kind=kind.kind,
                channel=skipped.channel.value,
                status=Status.SUPPRESSED,
                language=prefs.language,
                context={},
                chain=chain,
                now=now,
                reason=skipped.reason,
            )
            ids.append(await self._insert(tx, doc))
        await self.db[DISPATCHES].insert_one(
            {
                "_id": dispatch_id,
                "kind": kind.kind,
                "plan": chain,
                "skipped": {s.channel.value: s.reason for s in plan.skipped},
                "created_at": now,
            },
            session=tx.session,
        )
        if plan.chain:
            first = plan.chain[0]
            due = send_at(now, urgent=kind.urgent, prefs=prefs, timezone=self.timezone)
            ids.append(
                await self.queue(
                    tx,
                    kind,
                    source,
                    first,
                    data,
                    prefs.language,
                    chain,
                    due,
                    expires_at,
                    masked.get(first),
                    self._encrypt(address),
                )
            )
        elif kind.push:
            log.info("notification.no_push_channel", kind=kind.kind)
        return ids

    async def queue(
        self,
        tx: Tx,
        kind: MessageKind,
        source: Source,
        channel: Channel,
        context: dict[str, Any],
        language: str,
        chain: list[str],
        due: datetime,
        expires_at: datetime | None,
        address_masked: str | None,
        address_enc: str | None,
    ) -> str:
        doc = new_message(
            source,
            kind=kind.kind,
            channel=channel.value,
            status=Status.QUEUED,
            language=language,
            context=context,
            chain=chain,
            now=datetime.now(UTC),
            due_at=due,
            expires_at=expires_at,
            address_masked=address_masked,
            address_enc=address_enc,
        )
        message_id = await self._insert(tx, doc)
        await schedule_job(
            self.db,
            tx.session,
            kind=DELIVER_JOB,
            due_at=due,
            payload={"message_id": message_id},
            key=deliver_job_key(message_id),
        )
        return message_id

    async def fall_back(self, tx: Tx, kind: MessageKind, failed: Document) -> str | None:
        """Queue the next channel of the failed message's plan, if there is one."""
        channel = fallback_after([Channel(c) for c in failed["chain"]], Channel(failed["channel"]))
        if channel is None:
            await self._log_undelivered(tx, kind, failed)
            return None
        source = Source(
            id=failed["source_id"],
            event_type=failed.get("source_event_type"),
            patient_id=failed.get("patient_id"),
            account_id=failed.get("account_id"),
            org_id=failed.get("org_id"),
        )
        if await self.messages.exists(dedupe_key(source, kind.kind, channel.value), tx.session):
            return None
        prefs = await self._preferences(tx, source)
        now = datetime.now(UTC)
        due = send_at(now, urgent=kind.urgent, prefs=prefs, timezone=self.timezone)
        masked = failed.get("address_masked") if channel != Channel.WECHAT else None
        if failed.get("address_enc") is None:
            _, by_channel = await self._reachability(tx, source, None)
            masked = by_channel.get(channel)
        return await self.queue(
            tx,
            kind,
            source,
            channel,
            failed["context"],
            failed["language"],
            failed["chain"],
            due,
            failed.get("expires_at"),
            masked,
            failed.get("address_enc"),
        )

    async def _log_undelivered(self, tx: Tx, kind: MessageKind, last: Document) -> None:
        """The plan is used up: a warning when a channel failed, else (every channel
        suppressed: turned off, no address, no WeChat consent) an info with the reasons."""
        outcomes = await self.messages.push_outcomes(last["source_id"], kind.kind, tx.session)
        reasons = {channel: reason for channel, (_, reason) in outcomes.items()}
        failed = [c for c, (status, _) in outcomes.items() if status == Status.FAILED.value]
        facts = {"kind": kind.kind, "message_id": last["_id"], "reasons": reasons}
        if failed:
            log.warning("notification.all_channels_failed", failed=sorted(failed), **facts)
        else:
            log.info("notification.no_channel_delivered", **facts)

    async def _to_inbox(
        self,
        tx: Tx,
        kind: MessageKind,
        source: Source,
        data: dict[str, Any],
        language: str,
        now: datetime,
    ) -> str:
        context = {**data, "language": language, "tz": self.timezone}
        doc = new_message(
            source,
            kind=kind.kind,
            channel=Channel.INBOX.value,
            status=Status.DELIVERED,
            language=language,
            context={},
            chain=[],
            now=now,
        )
        try:
            resolved = await self.templates.render(kind, language, Channel.INBOX, context)
        except RenderError as exc:
            log.error("notification.inbox_render_failed", kind=kind.kind, error=str(exc))
            doc.update(status=Status.FAILED.value, reason="render_error")
            return await self._insert(tx, doc)
        doc["template_version"] = resolved.version
        message_id = await self._insert(tx, doc)
        await self.inbox.add(
            tx,
            {
                "_id": message_id,
                "dedupe": doc["dedupe"],
                "account_id": source.account_id,
                "patient_id": source.patient_id,
                "kind": kind.kind,
                "title": resolved.rendered.title,
                "body": resolved.rendered.body,
                "page": resolved.rendered.page,
                "created_at": now,
                "read_at": None,
            },
        )
        return message_id

    async def _insert(self, tx: Tx, doc: Document) -> str:
        await self.messages.collection.insert_one(doc, session=tx.session)
        self.counted.labels(doc["channel"], doc["status"]).inc()
        return str(doc["_id"])

    async def _preferences(self, tx: Tx, source: Source) -> Preferences:
        if source.patient_id is None:
            return self.preferences.default
        return await self.preferences.for_patient(source.patient_id, tx.session)

    async def _reachability(
        self, tx: Tx, source: Source, address: str | None
    ) -> tuple[dict[Channel, bool], dict[Channel, str | None]]:
        """Which push channels have an address, and each address masked."""
        if address is not None:  # an explicit phone number (login codes)
            masked = mask_phone(address)
            return {Channel.SMS: True, Channel.VOICE: True}, {
                Channel.SMS: masked,
                Channel.VOICE: masked,
            }
        recipient = (
            await self.recipients.get(source.patient_id, tx.session) if source.patient_id else None
        )
        phone_masked = (
            recipient.get("phone_masked") if recipient and recipient.get("phone_enc") else None
        )
        openid = await self.recipients.wechat_openid(source.account_id, tx.session)
        return (
            {
                Channel.SMS: bool(phone_masked),
                Channel.VOICE: bool(phone_masked),
                Channel.WECHAT: bool(openid),
            },
            {
                Channel.SMS: phone_masked,
                Channel.VOICE: phone_masked,
                Channel.WECHAT: _mask_openid(openid) if openid else None,
            },
        )

    def _encrypt(self, address: str | None) -> str | None:
        return self.cipher.encrypt(address, context=ADDRESS_CONTEXT) if address else None

    def reveal(self, address_enc: str) -> str:
        return self.cipher.decrypt(address_enc, context=ADDRESS_CONTEXT)


def _expiry(kind: MessageKind, context: Mapping[str, Any]) -> datetime | None:
    if not kind.expires or not context.get(kind.expires):
        return None
    value = context[kind.expires]
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _mask_openid(openid: str) -> str:
    return f"{openid[:4]}****{openid[-4:]}" if len(openid) > 8 else "****"

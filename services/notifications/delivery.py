"""The delivery job: send one queued message on its channel, once, and record what happened.

A message's job is claimed with a lease (``shared.jobs``), so two replicas never send the
same message. The send and its record commit together; should that transaction be retried
(a write conflict), the provider's answer is reused rather than sending again.

Outcomes: sent / delivered → ``notification.sent`` (/ ``.delivered``); a retryable
provider error → another attempt after a backoff; retries exhausted or a permanent error →
``failed``, a dead letter on ``careloop.notifications.dlq.delivery``, ``notification.failed``,
and the next channel of the plan. No consent or no address → ``suppressed`` and the next
channel; past its usefulness → ``expired``.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from prometheus_client import Counter

from services.notifications.consents import Consents
from services.notifications.dispatch import DELIVER_JOB, Dispatcher, deliver_job_key
from services.notifications.domain.channels import Channel
from services.notifications.domain.rules import is_expired, retry_delay
from services.notifications.events import (
    NotificationDelivered,
    NotificationFailed,
    NotificationRedeliveryRequested,
    NotificationSent,
)
from services.notifications.limits import PatientRateLimit
from services.notifications.message_kinds import MessageKind, MessageKinds
from services.notifications.messages import Messages, Status, event_subject, message_facts
from services.notifications.providers.base import (
    Provider,
    ProviderError,
    SendRequest,
    SendResult,
    SendStatus,
)
from services.notifications.rendering import RenderError
from services.notifications.settings import NotificationsSettings
from services.notifications.templates import TemplateStore
from shared.audit import AuditLog
from shared.dead_letters import dead_letter_document, record_dead_letter
from shared.events import make_event
from shared.jobs import Job, schedule_job
from shared.mongo import Database, Document
from shared.outbox import Outbox, Tx
from shared.principal import Principal

log = structlog.get_logger(__name__)

SOURCE = "notifications"
NO_CONSENT_CODES = frozenset({"43101"})  # WeChat: the user has no subscription left
MEMO_SIZE = 1024


def redeliver_topic(settings: NotificationsSettings) -> str:
    return f"{settings.own_topic}.redeliver"


@dataclass
class Delivery:
    db: Database
    settings: NotificationsSettings
    message_kinds: MessageKinds
    messages: Messages
    dispatcher: Dispatcher
    templates: TemplateStore
    consents: Consents
    limits: PatientRateLimit
    providers: dict[Channel, Provider]
    counted: Counter
    outbox: Outbox
    _answers: OrderedDict[tuple[str, int], SendResult | ProviderError] = field(
        default_factory=OrderedDict
    )

    async def run(self, job: Job, tx: Tx) -> None:
        msg = await self.messages.get(job.payload["message_id"], tx.session)
        if msg is None or msg["status"] != Status.QUEUED:
            return  # sent, suppressed or failed already
        kind = self.message_kinds.get(msg["kind"])
        channel = Channel(msg["channel"])
        now = datetime.now(UTC)
        if kind is None:
            await self._fail(tx, msg, None, "unknown_kind", None, dead_letter=True)
            return
        if is_expired(now, msg.get("expires_at")):
            await self._finish(tx, msg, Status.EXPIRED, "past_its_time")
            return
        address = await self._address(tx, msg, channel)
        if address is None:
            await self._suppress(tx, kind, msg, "no_address")
            return
        spend = channel == Channel.WECHAT and not msg.get("consent_spent")
        if spend and not await self.consents.spend(
            tx.session, msg["account_id"], kind.kind, msg["_id"]
        ):
            await self._suppress(tx, kind, msg, "no_consent")
            return
        if not (kind.urgent or kind.mandatory) and msg.get("patient_id"):
            later = await self.limits.admit(msg["patient_id"], channel.value, now)
            if later is not None:
                await self._postpone(tx, msg, later, "rate_limited")
                return
        context = {
            **msg["context"],
            "language": msg["language"],
            "tz": self.settings.hospital_timezone,
        }
        try:
            resolved = await self.templates.render(kind, msg["language"], channel, context)
        except RenderError as exc:
            await self._fail(tx, msg, kind, "render_error", str(exc), dead_letter=True)
            return
        attempt_no = len(msg["attempts"]) + 1
        request = SendRequest(
            message_id=msg["_id"],
            attempt_id=f"{msg['_id']}.{attempt_no}",
            channel=channel,
            address=address,
            kind=kind.kind,
            language=msg["language"],
            rendered=resolved.rendered,
            provider_template=self._provider_template(channel, kind.kind),
            patient_id=msg.get("patient_id"),
        )
        answer = await self._send_once(job, request)
        attempt: dict[str, Any] = {"at": now, "id": request.attempt_id}
        if isinstance(answer, SendResult):
            await self._sent(tx, msg, answer, attempt, resolved.version, consent_spent=spend)
        else:
            await self._provider_failed(tx, kind, msg, answer, attempt, attempt_no)

    async def _send_once(self, job: Job, request: SendRequest) -> SendResult | ProviderError:
        """Call the provider once per job run, even if the transaction around it is retried."""
        memo = (job.id, job.attempts)
        if memo in self._answers:
            return self._answers[memo]
        provider = self.providers[request.channel]
        try:
            answer: SendResult | ProviderError = await provider.send(request)
        except ProviderError as exc:
            answer = exc
        except Exception as exc:  # an adapter bug must not lose the message: retry it
            answer = ProviderError(
                provider.name, "adapter_error", f"{type(exc).__name__}: {exc}", retryable=True
            )
        self._answers[memo] = answer
        while len(self._answers) > MEMO_SIZE:
            self._answers.popitem(last=False)
        return answer

    async def _sent(
        self,
        tx: Tx,
        msg: Document,
        result: SendResult,
        attempt: dict[str, Any],
        version: int,
        *,
        consent_spent: bool,
    ) -> None:
        status = Status.DELIVERED if result.status == SendStatus.DELIVERED else Status.SENT
        attempt.update(status=status.value, provider=result.provider)
        fields: dict[str, Any] = {
            "status": status.value,
            "provider": result.provider,
            "provider_message_id": result.provider_message_id,
            "template_version": version,
            "sent_at": attempt["at"],
            "reason": None,
        }
        if consent_spent:
            fields["consent_spent"] = True
        if status == Status.DELIVERED:
            fields["delivered_at"] = attempt["at"]
        await self.messages.update(
            msg["_id"], tx.session, fields, **{"$push": {"attempts": attempt}}
        )
        facts = message_facts(
            msg, provider=result.provider, provider_message_id=result.provider_message_id
        )
        tx.emit(make_event(NotificationSent(**facts), source=SOURCE, subject=event_subject(msg)))
        if status == Status.DELIVERED:
            tx.emit(
                make_event(
                    NotificationDelivered(**facts), source=SOURCE, subject=event_subject(msg)
                )
            )
        self.counted.labels(msg["channel"], status.value).inc()
        await self._forget_secret(tx, msg, status)

    async def _provider_failed(
        self,
        tx: Tx,
        kind: MessageKind,
        msg: Document,
        error: ProviderError,
        attempt: dict[str, Any],
        attempt_no: int,
    ) -> None:
        attempt.update(
            status="failed", provider=error.provider, error=str(error)[:300], code=error.code
        )
        await self.messages.update(msg["_id"], tx.session, {}, **{"$push": {"attempts": attempt}})
        log.warning(
            "notification.send_failed",
            channel=msg["channel"],
            provider=error.provider,
            code=error.code,
            retryable=error.retryable,
            attempt=attempt_no,
        )
        if msg["channel"] == Channel.WECHAT and error.code in NO_CONSENT_CODES:
            await self.consents.refused(tx.session, msg["account_id"], kind.kind, msg["_id"])
            await self._suppress(tx, kind, msg, "no_consent")
            return
        allowed = self.settings.delivery_max_attempts + msg.get("attempt_base", 0)
        if error.retryable and attempt_no < allowed:
            delay = retry_delay(
                attempt_no - msg.get("attempt_base", 0),
                base=self.settings.delivery_retry_base_seconds,
                cap=self.settings.delivery_retry_max_seconds,
            )
            await self._postpone(tx, msg, datetime.now(UTC) + delay, f"retry after {error.code}")
            return
        reason = "retries_exhausted" if error.retryable else "provider_refused"
        await self._fail(tx, msg, kind, reason, str(error), dead_letter=True, code=error.code)

    async def _fail(
        self,
        tx: Tx,
        msg: Document,
        kind: MessageKind | None,
        reason: str,
        error: str | None,
        *,
        dead_letter: bool,
        code: str | None = None,
    ) -> None:
        await self.messages.update(
            msg["_id"], tx.session, {"status": Status.FAILED.value, "reason": reason}
        )
        self.counted.labels(msg["channel"], Status.FAILED.value).inc()
        next_id = await self.dispatcher.fall_back(tx, kind, msg) if kind else None
        fallback = None
        if next_id is not None:
            queued = await self.messages.get(next_id, tx.session)
            fallback = queued["channel"] if queued else None
        failed = NotificationFailed(
            **message_facts(msg), reason=reason, error_code=code, fallback_channel=fallback
        )
        tx.emit(make_event(failed, source=SOURCE, subject=event_subject(msg)))
        if dead_letter:
            await self._dead_letter(tx, msg, f"{reason}: {error or ''}")

    async def _dead_letter(self, tx: Tx, msg: Document, error: str) -> None:
        """Park the message for operators; replaying it (ops API) sends it again."""
        request = make_event(
            NotificationRedeliveryRequested(message_id=msg["_id"]),
            source=SOURCE,
            subject=event_subject(msg),
        )
        doc = dead_letter_document(
            consumer="notifications.delivery",
            topic=redeliver_topic(self.settings),
            partition=-1,
            offset=-1,
            key=event_subject(msg),
            value=request.to_bytes(),
            headers={"ce_type": request.type, "ce_id": request.id},
            error=error,
            attempts=len(msg.get("attempts", [])) + 1,
            event_id=msg["_id"],
            event_type="notification.delivery",
        )
        await record_dead_letter(tx, self.db, doc)

    async def redeliver(self, tx: Tx, message_id: str) -> bool:
        """Queue a failed message again (a replayed dead letter), with fresh attempts."""
        msg = await self.messages.get(message_id, tx.session)
        if msg is None or msg["status"] != Status.FAILED:
            return False
        await self._postpone(
            tx, msg, datetime.now(UTC), "redelivery", attempt_base=len(msg["attempts"])
        )
        return True

    async def retry_failed(
        self, msg: Document, admin: Principal, audit: AuditLog, reason: str | None
    ) -> bool:
        """A staff retry of a failed message: queue it again, audited in the same
        transaction; False if the message is not failed (nothing is written)."""

        async def work(tx: Tx) -> bool:
            retried = await self.redeliver(tx, msg["_id"])
            if retried:  # audited with the change, in its transaction
                await audit.record(
                    admin,
                    "notification.message.retry",
                    patient_id=msg.get("patient_id"),
                    resource=f"message:{msg['_id']}",
                    reason=reason or "retry a failed delivery",
                    details={"channel": msg.get("channel"), "kind": msg.get("kind")},
                    session=tx.session,
                )
            return retried

        return await self.outbox.transaction(work)

    async def _suppress(self, tx: Tx, kind: MessageKind, msg: Document, reason: str) -> None:
        await self._finish(tx, msg, Status.SUPPRESSED, reason)
        await self.dispatcher.fall_back(tx, kind, msg)

    async def _finish(self, tx: Tx, msg: Document, status: Status, reason: str) -> None:
        await self.messages.update(
            msg["_id"], tx.session, {"status": status.value, "reason": reason}
        )
        self.counted.labels(msg["channel"], status.value).inc()
        await self._forget_secret(tx, msg, status)

    async def _postpone(
        self, tx: Tx, msg: Document, due: datetime, reason: str, *, attempt_base: int | None = None
    ) -> None:
        fields: dict[str, Any] = {"status": Status.QUEUED.value, "due_at": due, "reason": reason}
        if attempt_base is not None:
            fields["attempt_base"] = attempt_base
        await self.messages.update(msg["_id"], tx.session, fields)
        await schedule_job(
            self.db,
            tx.session,
            kind=DELIVER_JOB,
            due_at=due,
            payload={"message_id": msg["_id"]},
            key=deliver_job_key(msg["_id"]),
        )

    async def _forget_secret(self, tx: Tx, msg: Document, status: Status) -> None:
        """A login code is not kept once its message is out (or given up)."""
        kind = self.message_kinds.get(msg["kind"])
        if kind is not None and kind.to_address and status != Status.QUEUED:
            await self.messages.update(msg["_id"], tx.session, {"context": {}})

    async def _address(self, tx: Tx, msg: Document, channel: Channel) -> str | None:
        if msg.get("address_enc"):
            return self.dispatcher.reveal(msg["address_enc"])
        if channel == Channel.WECHAT:
            return await self.dispatcher.recipients.wechat_openid(msg.get("account_id"), tx.session)
        recipient = (
            await self.dispatcher.recipients.get(msg["patient_id"], tx.session)
            if msg.get("patient_id")
            else None
        )
        return self.dispatcher.recipients.phone_of(recipient)

    def _provider_template(self, channel: Channel, kind: str) -> str | None:
        if channel == Channel.SMS:
            return self.settings.sms_template_codes.get(kind)
        if channel == Channel.WECHAT:
            return self.settings.wechat_template_ids.get(kind)
        return None

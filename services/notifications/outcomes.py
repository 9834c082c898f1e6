"""What the delivery job writes for each outcome of an attempt on a message.

sent / delivered → ``notification.sent`` (/ ``.delivered``); a retryable provider error →
another attempt after a backoff; retries exhausted or a permanent error → ``failed``, a
dead letter on ``careloop.notifications.dlq.delivery``, ``notification.failed``, and the
next channel of the plan. No consent or no address → ``suppressed`` and the next channel;
past its usefulness → ``expired``; an attempt whose fate the provider cannot tell →
``unknown`` (see ``sending``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from prometheus_client import Counter

from services.notifications.consents import Consents
from services.notifications.dispatch import DELIVER_JOB, Dispatcher, deliver_job_key
from services.notifications.domain.channels import Channel
from services.notifications.domain.rules import retry_delay
from services.notifications.events import (
    NotificationDelivered,
    NotificationFailed,
    NotificationRedeliveryRequested,
    NotificationSent,
)
from services.notifications.message_kinds import MessageKind, MessageKinds
from services.notifications.messages import Messages, Status, event_subject, message_facts
from services.notifications.providers.base import ProviderError, SendResult, SendStatus
from services.notifications.sending import Unresolved
from services.notifications.settings import NotificationsSettings
from shared.dead_letters import dead_letter_document, record_dead_letter
from shared.events import make_event
from shared.jobs import schedule_job
from shared.mongo import Database, Document
from shared.outbox import Tx

log = structlog.get_logger(__name__)

SOURCE = "notifications"
NO_CONSENT_CODES = frozenset({"43101"})  # WeChat: the user has no subscription left


def redeliver_topic(settings: NotificationsSettings) -> str:
    return f"{settings.own_topic}.redeliver"


@dataclass
class Outcomes:
    db: Database
    settings: NotificationsSettings
    message_kinds: MessageKinds
    messages: Messages
    dispatcher: Dispatcher
    consents: Consents
    counted: Counter  # notifications by channel and status

    async def unresolved(
        self, tx: Tx, msg: Document, outcome: Unresolved, attempt: dict[str, Any]
    ) -> None:
        """No provider answer: the message ends ``unknown`` or ``expired``, not sent (again)."""
        attempt.update(status=outcome.status.value)
        await self.push_attempt(tx, msg, attempt)
        await self.finish(tx, msg, outcome.status, outcome.reason)
        if outcome.status == Status.UNKNOWN:
            log.warning("notification.outcome_unknown", channel=msg["channel"])

    async def push_attempt(self, tx: Tx, msg: Document, attempt: dict[str, Any]) -> None:
        """Record one attempt; the message is no longer ``sending`` it."""
        await self.messages.update(
            msg["_id"], tx.session, {"sending": None}, **{"$push": {"attempts": attempt}}
        )

    async def sent(
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
        await self.messages.update(msg["_id"], tx.session, fields)
        await self.push_attempt(tx, msg, attempt)
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
        await self.forget_secret(tx, msg, status)

    async def provider_failed(
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
        await self.push_attempt(tx, msg, attempt)
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
            await self.suppress(tx, kind, msg, "no_consent")
            return
        allowed = self.settings.delivery_max_attempts + msg.get("attempt_base", 0)
        if error.retryable and attempt_no < allowed:
            delay = retry_delay(
                attempt_no - msg.get("attempt_base", 0),
                base=self.settings.delivery_retry_base_seconds,
                cap=self.settings.delivery_retry_max_seconds,
            )
            await self.postpone(tx, msg, datetime.now(UTC) + delay, f"retry after {error.code}")
            return
        reason = "retries_exhausted" if error.retryable else "provider_refused"
        await self.fail(tx, msg, kind, reason, str(error), dead_letter=True, code=error.code)

    async def fail(
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
            await self.dead_letter(tx, msg, f"{reason}: {error or ''}")

    async def dead_letter(self, tx: Tx, msg: Document, error: str) -> None:
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

    async def ask_again(
        self,
        tx: Tx,
        msg: Document,
        begun: Document,
        outcome: Unresolved,
        attempt: dict[str, Any],
    ) -> None:
        """The attempt's fate is open (its answer was lost, or the provider could not be
        asked): ask again later (it stays ``sending``, so nothing is sent blindly), or, after
        ``delivery_max_attempts`` tries, give up as ``unknown``."""
        asked = int(begun.get("lookups", 0)) + 1
        error = outcome.error
        code = error.code if error else None
        log.warning("notification.attempt_open", why=outcome.reason, code=code, asked=asked)
        if asked >= self.settings.delivery_max_attempts:
            attempt.update(error=str(error)[:300])
            await self.unresolved(tx, msg, Unresolved(Status.UNKNOWN, outcome.reason), attempt)
            return
        due = datetime.now(UTC) + retry_delay(
            asked,
            base=self.settings.delivery_retry_base_seconds,
            cap=self.settings.delivery_retry_max_seconds,
        )
        await self.messages.update(msg["_id"], tx.session, {"sending.lookups": asked})
        await self.schedule(tx, msg, due)

    async def suppress(self, tx: Tx, kind: MessageKind, msg: Document, reason: str) -> None:
        await self.finish(tx, msg, Status.SUPPRESSED, reason)
        await self.dispatcher.fall_back(tx, kind, msg)

    async def finish(self, tx: Tx, msg: Document, status: Status, reason: str) -> None:
        await self.messages.update(
            msg["_id"], tx.session, {"status": status.value, "reason": reason}
        )
        self.counted.labels(msg["channel"], status.value).inc()
        await self.forget_secret(tx, msg, status)

    async def postpone(
        self, tx: Tx, msg: Document, due: datetime, reason: str, *, attempt_base: int | None = None
    ) -> None:
        fields: dict[str, Any] = {"status": Status.QUEUED.value, "due_at": due, "reason": reason}
        if attempt_base is not None:
            fields["attempt_base"] = attempt_base
        await self.messages.update(msg["_id"], tx.session, fields)
        await self.schedule(tx, msg, due)

    async def schedule(self, tx: Tx, msg: Document, due: datetime) -> None:
        await schedule_job(
            self.db,
            tx.session,
            kind=DELIVER_JOB,
            due_at=due,
            payload={"message_id": msg["_id"]},
            key=deliver_job_key(msg["_id"]),
        )

    async def forget_secret(self, tx: Tx, msg: Document, status: Status) -> None:
        """A login code is not kept once its message is out (or given up)."""
        kind = self.message_kinds.get(msg["kind"])
        if kind is not None and kind.to_address and status != Status.QUEUED:
            await self.messages.update(msg["_id"], tx.session, {"context": {}})

"""The delivery job: send one queued message on its channel, once, and record what happened.

A message's job is claimed with a lease (``shared.jobs``), so two replicas never send the
same message. The job runs in three steps (a :class:`~shared.jobs.Stepwise` handler): the
attempt is recorded as begun (message ``sending``) in one transaction, the provider is
called with no transaction open, and the outcome is recorded in another, which finishes
the job. A run that dies between the call and its record is picked up when its lease
expires; it asks the provider before sending again (``sending``). What each outcome
writes is in ``outcomes``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services.notifications.consents import Consents
from services.notifications.dispatch import Dispatcher
from services.notifications.domain.channels import Channel
from services.notifications.domain.rules import is_expired
from services.notifications.limits import PatientRateLimit
from services.notifications.message_kinds import MessageKinds
from services.notifications.messages import Messages, Status
from services.notifications.outcomes import Outcomes, redeliver_topic
from services.notifications.providers.base import (
    Provider,
    SendRequest,
    SendResult,
)
from services.notifications.rendering import RenderError
from services.notifications.sending import Outcome, Pending, Unresolved, call_provider
from services.notifications.settings import NotificationsSettings
from services.notifications.templates import TemplateStore
from shared.audit import AuditLog
from shared.jobs import Job, JobSteps, Stepwise
from shared.mongo import Document
from shared.outbox import Outbox, Tx
from shared.principal import Principal

__all__ = ["Delivery", "redeliver_topic"]


def _send_key(msg: Document) -> str:
    """The provider key of the message's sends: its id; after a redelivery (which must
    really send again) the id and the redelivery's attempt base."""
    base = int(msg.get("attempt_base", 0))
    return f"{msg['_id']}~{base}" if base else str(msg["_id"])


@dataclass
class Delivery:
    settings: NotificationsSettings
    message_kinds: MessageKinds
    messages: Messages
    dispatcher: Dispatcher
    templates: TemplateStore
    consents: Consents
    limits: PatientRateLimit
    providers: dict[Channel, Provider]
    outcomes: Outcomes
    outbox: Outbox

    @property
    def run(self) -> Stepwise:
        """The delivery job's handler (register it for ``DELIVER_JOB``)."""
        return Stepwise(self.deliver)

    async def deliver(self, job: Job, steps: JobSteps) -> None:
        """Begin the attempt (recorded), call the provider (no transaction open), record
        what happened: three steps, each safe to repeat after a crash (see ``sending``)."""
        pending = await steps.transaction(lambda tx: self._begin(job, tx, steps))
        if pending is None:
            return
        outcome = await call_provider(self.providers[pending.request.channel], pending)
        await steps.transaction(lambda tx: self._record(tx, steps, pending, outcome))

    async def _begin(self, job: Job, tx: Tx, steps: JobSteps) -> Pending | None:
        """The attempt to make, recorded as begun; or None, the job finished without one."""
        msg = await self.messages.get(job.payload["message_id"], tx.session)
        if msg is None or msg["status"] not in (Status.QUEUED, Status.SENDING):
            return None  # sent, suppressed or failed already
        recovering = msg["status"] == Status.SENDING
        kind = self.message_kinds.get(msg["kind"])
        channel = Channel(msg["channel"])
        now = datetime.now(UTC)
        if kind is None:
            await steps.finish(tx)
            await self.outcomes.fail(tx, msg, None, "unknown_kind", None, dead_letter=True)
            return None
        if not recovering and is_expired(now, msg.get("expires_at")):
            await steps.finish(tx)
            await self.outcomes.finish(tx, msg, Status.EXPIRED, "past_its_time")
            return None
        address = await self._address(tx, msg, channel)
        if address is None:
            await steps.finish(tx)
            await self.outcomes.suppress(tx, kind, msg, "no_address")
            return None
        spend = channel == Channel.WECHAT and not msg.get("consent_spent")
        if spend and not await self.consents.spend(
            tx.session, msg["account_id"], kind.kind, msg["_id"]
        ):
            await steps.finish(tx)
            await self.outcomes.suppress(tx, kind, msg, "no_consent")
            return None
        if not (recovering or kind.urgent or kind.mandatory) and msg.get("patient_id"):
            later = await self.limits.admit(msg["patient_id"], channel.value, now)
            if later is not None:
                await steps.finish(tx)
                await self.outcomes.postpone(tx, msg, later, "rate_limited")
                return None
        context = {
            **msg["context"],
            "language": msg["language"],
            "tz": self.settings.hospital_timezone,
        }
        try:
            resolved = await self.templates.render(kind, msg["language"], channel, context)
        except RenderError as exc:
            await steps.finish(tx)
            await self.outcomes.fail(tx, msg, kind, "render_error", str(exc), dead_letter=True)
            return None
        attempt_no = len(msg["attempts"]) + 1
        begun = msg.get("sending") if recovering else None
        if begun is None:
            begun = {"attempt_id": f"{msg['_id']}.{attempt_no}", "key": _send_key(msg), "at": now}
            fields: dict[str, Any] = {"status": Status.SENDING.value, "sending": begun}
            if spend:
                fields["consent_spent"] = True
            await self.messages.update(msg["_id"], tx.session, fields)
        request = SendRequest(
            message_id=msg["_id"],
            attempt_id=begun["attempt_id"],
            channel=channel,
            address=address,
            kind=kind.kind,
            language=msg["language"],
            rendered=resolved.rendered,
            provider_template=self._provider_template(channel, kind.kind),
            patient_id=msg.get("patient_id"),
            idempotency_key=begun["key"],
        )
        return Pending(
            msg=msg,
            request=request,
            attempt_no=attempt_no,
            since=begun["at"],
            template_version=resolved.version,
            consent_spent=spend or bool(msg.get("consent_spent")),
            recovering=recovering,
        )

    async def _record(self, tx: Tx, steps: JobSteps, pending: Pending, outcome: Outcome) -> None:
        """Record the attempt's outcome, if the attempt is still the message's current one."""
        await steps.finish(tx)
        msg = await self.messages.get(pending.msg["_id"], tx.session)
        begun = (msg or {}).get("sending") or {}
        if msg is None or begun.get("attempt_id") != pending.request.attempt_id:
            return  # recorded already
        kind = self.message_kinds.get(msg["kind"])
        attempt: dict[str, Any] = {"at": pending.since, "id": pending.request.attempt_id}
        if isinstance(outcome, Unresolved) and outcome.status == Status.SENDING:
            await self.outcomes.ask_again(tx, msg, begun, outcome, attempt)
            return
        if isinstance(outcome, SendResult):
            version = pending.template_version
            await self.outcomes.sent(
                tx, msg, outcome, attempt, version, consent_spent=pending.consent_spent
            )
        elif isinstance(outcome, Unresolved):
            await self.outcomes.unresolved(tx, msg, outcome, attempt)
        elif kind is None:  # the kind left the catalog while the attempt was out
            await self.outcomes.push_attempt(tx, msg, {**attempt, "status": "failed"})
            await self.outcomes.fail(tx, msg, None, "unknown_kind", str(outcome), dead_letter=True)
        else:
            await self.outcomes.provider_failed(tx, kind, msg, outcome, attempt, pending.attempt_no)

    async def redeliver(self, tx: Tx, message_id: str) -> bool:
        """Queue a failed message again (a replayed dead letter), with fresh attempts."""
        msg = await self.messages.get(message_id, tx.session)
        if msg is None or msg["status"] != Status.FAILED:
            return False
        await self.outcomes.postpone(
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

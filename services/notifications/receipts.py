"""Provider receipts: a delivery report moves a sent message to delivered or failed.

A receipt for a message we do not know (another environment's, or forged) is logged and
counted, never an error the provider would retry forever. An undelivered report fails the
message and queues the next channel of its plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from prometheus_client import Counter

from services.notifications.dispatch import Dispatcher
from services.notifications.events import NotificationDelivered, NotificationFailed
from services.notifications.message_kinds import MessageKinds
from services.notifications.messages import Messages, Status, event_subject, message_facts
from services.notifications.providers.base import Receipt
from shared.events import make_event
from shared.outbox import Outbox, Tx

log = structlog.get_logger(__name__)


@dataclass
class Receipts:
    outbox: Outbox
    message_kinds: MessageKinds
    messages: Messages
    dispatcher: Dispatcher
    counted: Counter  # receipts by provider and outcome

    async def apply_all(self, receipts: list[Receipt]) -> dict[str, int]:
        outcomes: dict[str, int] = {}
        for receipt in receipts:
            outcome = await self.apply(receipt)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        return outcomes

    async def apply(self, receipt: Receipt) -> str:
        outcome = await self.outbox.transaction(lambda tx: self._apply(tx, receipt))
        self.counted.labels(receipt.provider, outcome).inc()
        if outcome == "unknown":
            log.warning("receipt.unknown_message", provider=receipt.provider)
        return outcome

    async def _apply(self, tx: Tx, receipt: Receipt) -> str:
        msg = await self.messages.by_provider_id(
            receipt.provider, receipt.provider_message_id, tx.session
        )
        if msg is None:
            return "unknown"
        if msg["status"] != Status.SENT:
            return "duplicate"  # delivered / failed already: a repeated report changes nothing
        at = receipt.reported_at or datetime.now(UTC)
        facts = message_facts(
            msg, provider=receipt.provider, provider_message_id=receipt.provider_message_id
        )
        subject = event_subject(msg)
        if receipt.delivered:
            await self.messages.update(
                msg["_id"], tx.session, {"status": Status.DELIVERED.value, "delivered_at": at}
            )
            tx.emit(
                make_event(NotificationDelivered(**facts), source="notifications", subject=subject)
            )
            return "delivered"
        reason = f"undelivered: {receipt.error_code or 'unknown'}"
        await self.messages.update(
            msg["_id"], tx.session, {"status": Status.FAILED.value, "reason": reason}
        )
        kind = self.message_kinds.get(msg["kind"])
        next_id = await self.dispatcher.fall_back(tx, kind, msg) if kind else None
        next_msg = await self.messages.get(next_id, tx.session) if next_id else None
        failed = NotificationFailed(
            **facts,
            reason=reason,
            error_code=receipt.error_code,
            fallback_channel=next_msg["channel"] if next_msg else None,
        )
        tx.emit(make_event(failed, source="notifications", subject=subject))
        return "failed"

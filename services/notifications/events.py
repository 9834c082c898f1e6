"""Events the notifications service publishes on ``careloop.notifications``
(docs/architecture.md §4).

They say what happened to one message on one channel; addresses never travel in events.
"""

from __future__ import annotations

from shared.events import EventPayload, event_type


class MessageFacts(EventPayload):
    message_id: str
    kind: str
    channel: str
    patient_id: str | None = None
    account_id: str | None = None
    source_event_id: str | None = None
    source_event_type: str | None = None
    provider: str | None = None
    provider_message_id: str | None = None


@event_type("notification.sent")
class NotificationSent(MessageFacts):
    """The provider accepted the message (or it went to the inbox)."""


@event_type("notification.delivered")
class NotificationDelivered(MessageFacts):
    """The provider reported the message delivered."""


@event_type("notification.failed")
class NotificationFailed(MessageFacts):
    """The channel gave up on the message: retries ran out, or the provider refused it."""

    reason: str
    error_code: str | None = None
    fallback_channel: str | None = None


@event_type("notification.redelivery_requested")
class NotificationRedeliveryRequested(EventPayload):
    """Internal (topic ``careloop.notifications.redeliver``): send a failed message again.

    It is what a delivery dead letter holds, so replaying the dead letter requeues the message.
    """

    message_id: str

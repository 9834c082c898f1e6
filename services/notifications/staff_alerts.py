"""Alerts to a staff member: message kinds with ``audience = "staff"``.

The kind's ``staff_field`` names the event data field holding the staff id (the staff
account id, the token's subject). The message lands in that account's in-app inbox and
goes to the phone in the staff member's contact (:mod:`.staff_contacts`) as an explicit
address; an urgent kind passes quiet hours. Without a contact on file it lands in the
inbox only. The patient the event is about is never an addressee: no patient id on the
source, so neither the patient's phone nor their accounts are looked up.
"""

from __future__ import annotations

import structlog

from services.notifications.dispatch import Dispatcher
from services.notifications.message_kinds import MessageKind
from services.notifications.messages import Source
from services.notifications.staff_contacts import StaffContacts
from shared.events import Envelope
from shared.outbox import Tx

log = structlog.get_logger(__name__)


async def alert_staff(
    dispatcher: Dispatcher,
    contacts: StaffContacts,
    kind: MessageKind,
    event: Envelope,
    tx: Tx,
) -> list[str]:
    """Write the staff kind's messages for ``event``; returns their ids."""
    data = event.data
    staff_id = data.get(kind.staff_field)
    if not staff_id:
        log.warning(
            "notification.staff_missing", kind=kind.kind, field=kind.staff_field, event_id=event.id
        )
        return []
    staff_id = str(staff_id)
    source = Source(
        id=event.id,
        event_type=event.type,
        patient_id=None,  # the alert is about the patient, never to them
        account_id=staff_id,
        org_id=data.get("org_id"),
    )
    contact = await contacts.get(staff_id, tx.session)
    phone = contacts.phone_of(contact) if contact else None
    if phone is None:
        log.warning("notification.staff_contact_missing", kind=kind.kind, staff_id=staff_id)
    language = contact.get("language") if contact else None
    return await dispatcher.dispatch(tx, kind, source, data, address=phone, language=language)

"""Where the appointments service registers its event handlers and timed jobs: one table.

The referral saga's asks and cancellations are handled by
:mod:`services.appointments.referral_bookings`, follow-up's revisit asks
(``followup.revisit_requested``) by :mod:`services.appointments.revisit_bookings`; both
book from the reserved pool (:mod:`services.appointments.reserved_bookings`). The HIS's
admissions and discharges (``careloop.his``) move beds (:mod:`services.appointments.bed_stays`;
followup consumes the same events independently). Other
events on the consumed topics have no handler: the consumer passes over them.
"""

from __future__ import annotations

from datetime import UTC, datetime

from services.appointments.bed_offer_states import OFFER_EXPIRED_JOB as BED_OFFER_EXPIRED_JOB
from services.appointments.bed_stays import ADT_RECEIVED, HIS_ADMITTED, HIS_DISCHARGE
from services.appointments.bootstrap import built
from services.appointments.no_shows import sweep_no_shows
from services.appointments.referral_events import ACCEPTED, BOOKING_REQUESTED, CANCELLED
from services.appointments.revisit_events import REVISIT_REQUESTED
from services.appointments.schedules import NO_SHOW_JOB, POOL_RETURN_JOB
from services.appointments.waitlist_entries import CLOSE_JOB, OFFER_EXPIRED_JOB
from shared.consumer import ConsumerSpec, Handler
from shared.events import Envelope
from shared.jobs import Job, JobHandler
from shared.kafka import topic_name
from shared.outbox import Tx
from shared.service import Runtime

CONSUMED_SERVICES: tuple[str, ...] = ("referrals", "followup", "his")


def consumers(runtime: Runtime) -> list[ConsumerSpec]:
    """Consumers by name; called once the lifespan has built the service's objects."""
    referrals, revisits = built(runtime).referrals, built(runtime).revisits
    stays = built(runtime).bed_stays

    async def referral_booking_asked(event: Envelope, tx: Tx) -> None:
        await referrals.book(event, tx)

    async def referral_cancelled(event: Envelope, tx: Tx) -> None:
        await referrals.cancel(event, tx)

    async def revisit_requested(event: Envelope, tx: Tx) -> None:
        await revisits.book(event, tx)

    async def his_admitted(event: Envelope, tx: Tx) -> None:
        await stays.admitted(event, tx)  # the bed is occupied (bed_stays.py)

    async def his_discharge(event: Envelope, tx: Tx) -> None:
        await stays.discharged(event, tx)  # the bed is to be cleaned

    async def adt_received(event: Envelope, tx: Tx) -> None:
        await stays.adt_received(event, tx)  # the same from HL7, through followup

    handlers: dict[str, Handler] = {
        ACCEPTED: referral_booking_asked,
        BOOKING_REQUESTED: referral_booking_asked,
        CANCELLED: referral_cancelled,
        REVISIT_REQUESTED: revisit_requested,
        HIS_ADMITTED: his_admitted,
        HIS_DISCHARGE: his_discharge,
        ADT_RECEIVED: adt_received,
    }
    topics = tuple(topic_name(runtime.settings, s) for s in CONSUMED_SERVICES)
    return [ConsumerSpec(name="events", topics=topics, handlers=handlers)]


def jobs(runtime: Runtime) -> dict[str, JobHandler]:
    """Timed jobs by kind; called once the lifespan has built the service's objects."""
    app = built(runtime)

    async def pool_return(job: Job, tx: Tx) -> None:
        await app.schedules.return_pools(job.payload["schedule_id"], tx)

    async def no_show_sweep(job: Job, tx: Tx) -> None:
        await sweep_no_shows(app.db, app.policies, app.records, job.payload["schedule_id"], tx)

    async def waitlist_offer_expired(job: Job, tx: Tx) -> None:
        await app.waitlist.expire_offer(tx, str(job.payload["entry_id"]), datetime.now(UTC))

    async def waitlist_close(job: Job, tx: Tx) -> None:
        await app.waitlist.close_queue(tx, str(job.payload["schedule_id"]), datetime.now(UTC))

    async def bed_offer_expired(job: Job, tx: Tx) -> None:
        await app.bed_offers.expire(tx, str(job.payload["offer_id"]), datetime.now(UTC))

    return {
        POOL_RETURN_JOB: pool_return,
        NO_SHOW_JOB: no_show_sweep,
        OFFER_EXPIRED_JOB: waitlist_offer_expired,
        CLOSE_JOB: waitlist_close,
        BED_OFFER_EXPIRED_JOB: bed_offer_expired,
    }

"""Leases of booking admissions: taken over by a retry, reconciled when their holder died.

An admission is leased to the request (and replica) that holds it until its booking
commits (:mod:`services.appointments.admission`). If the request dies first (the process
was killed between admission and commit), the lease stays behind with the patient's
guard and the slot it took. Then:

* a retry with the same ``Idempotency-Key`` takes the lease over and completes the
  booking on the same slot (:meth:`AdmissionLeases.take_over`);
* otherwise, once the lease expired or its replica is gone (``shared.replica_liveness``),
  Mongo decides: a committed booking keeps the guard, and a slot still open there goes
  back to its pool (:meth:`AdmissionLeases.reconcile`). Every replica sweeps the lease
  index each ``reconcile_interval_seconds``; a request meeting such a lease reconciles
  it on the spot.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import structlog

from services.appointments.admission import AdmissionGate, Lease, LeaseTerms
from services.appointments.store import APPOINTMENTS, SLOTS
from shared.mongo import Database
from shared.replica_liveness import ReplicaLiveness

log = structlog.get_logger(__name__)


def now_ms() -> int:
    return int(time.time() * 1000)


class AdmissionLeases:
    def __init__(
        self,
        db: Database,
        gate: AdmissionGate,
        liveness: ReplicaLiveness,
        *,
        lease_seconds: float = 15.0,
        interval_seconds: float = 1.0,
    ) -> None:
        self.db = db
        self.gate = gate
        self.liveness = liveness
        self.grace_ms = int(lease_seconds * 1000)
        self.interval = interval_seconds
        self._stopped = asyncio.Event()

    @property
    def owner(self) -> str:
        return self.liveness.replica_id

    async def take_over(
        self, schedule_id: str, patient_id: str, held: Lease, terms: LeaseTerms
    ) -> Lease | None:
        return await self.gate.take_over(schedule_id, patient_id, held, terms, now_ms())

    async def is_dead(self, held: Lease, at_ms: int) -> bool:
        """Its request cannot still be running: its replica is gone, or it ran out of time
        (a live replica's lease gets one more lease time of grace: it may be slow)."""
        if held.owner != self.owner and not await self.liveness.is_alive(held.owner):
            return True
        return held.expires_ms + self.grace_ms <= at_ms

    async def reconcile_if_dead(self, schedule_id: str, patient_id: str, held: Lease) -> bool:
        if not await self.is_dead(held, now_ms()):
            return False
        return await self.reconcile(schedule_id, patient_id, held)

    async def reconcile(self, schedule_id: str, patient_id: str, held: Lease) -> bool:
        """End a dead request's lease as Mongo has it; False if the lease changed meanwhile."""
        booked = await self.db[APPOINTMENTS].find_one(
            {"schedule_id": schedule_id, "patient_id": patient_id, "active": True}, {"_id": 1}
        )
        slot = await self.db[SLOTS].find_one({"_id": held.slot_id}, {"status": 1})
        slot_open = slot is not None and slot.get("status") == "open"
        done = await self.gate.reclaim(
            schedule_id, patient_id, held, booked=booked is not None, slot_open=slot_open
        )
        if done:
            log.info(
                "admission.lease_reconciled",
                schedule_id=schedule_id,
                patient_id=patient_id,
                owner=held.owner,
                booked=booked is not None,
                slot_returned=slot_open,
            )
        return done

    async def sweep(self) -> int:
        """Reconcile every dead lease in the index; returns how many ended."""
        ended = 0
        at = now_ms()
        for schedule_id, patient_id in await self.gate.due_leases(at + 10**12, limit=1000):
            held = await self.gate.lease_of(schedule_id, patient_id)
            if held is None:  # settled or released: only the index entry was left
                await self.gate.forget_lease(schedule_id, patient_id)
            elif await self.is_dead(held, at) and await self.reconcile(
                schedule_id, patient_id, held
            ):
                ended += 1
        return ended

    async def run(self) -> None:
        while not self._stopped.is_set():
            try:
                await self.sweep()
            except Exception as exc:  # Redis or Mongo away: the next round tries again
                log.warning("admission.lease_sweep_failed", error=str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), self.interval)

    def stop(self) -> None:
        self._stopped.set()

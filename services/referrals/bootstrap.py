"""The referrals composition root: every object the routes and handlers use, built once in the
lifespan, in dependency order, with explicit constructor arguments."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from services.referrals.care import Care
from services.referrals.case_routing import CaseRouting
from services.referrals.cases import Cases
from services.referrals.commands import CommandRunner
from services.referrals.directory import Directory
from services.referrals.dispatch import Dispatcher
from services.referrals.notices import Notices
from services.referrals.patients import KnownPatients
from services.referrals.pool_projection import PoolProjection
from services.referrals.porters import Roster
from services.referrals.routing import Routing
from services.referrals.saga import BookingSaga
from services.referrals.settings import ReferralsSettings
from services.referrals.sla import SlaClock
from services.referrals.transport_access import TransportAccess
from services.referrals.transport_clock import TransportClock
from services.referrals.transport_figures import TransportBoard
from services.referrals.transport_links import TransportLinks
from services.referrals.transports import Transports
from services.referrals.triage import Triage
from services.referrals.worklists import Worklists
from shared.audit import AuditLog
from shared.idempotency import IdempotencyKeys
from shared.mongo import Database
from shared.service import Runtime

EXTRA = "referrals"  # the key of the built objects in ``Runtime.extras``


@dataclass(frozen=True)
class Referrals:
    db: Database
    settings: ReferralsSettings
    audit: AuditLog
    idempotency: IdempotencyKeys
    directory: Directory
    patients: KnownPatients
    pool: PoolProjection
    cases: Cases
    triage: Triage
    care: Care
    saga: BookingSaga
    sla: SlaClock
    worklists: Worklists
    notices: Notices
    roster: Roster
    dispatcher: Dispatcher
    transport_clock: TransportClock
    transports: Transports
    transport_links: TransportLinks
    transport_board: TransportBoard


def build(runtime: Runtime) -> Referrals:
    settings = runtime.settings
    assert isinstance(settings, ReferralsSettings)
    db, audit, outbox = runtime.db, runtime.audit, runtime.outbox
    directory = Directory(db=db, audit=audit)
    patients = KnownPatients(db)
    routing = Routing(db, directory, settings)
    case_routing = CaseRouting(db, routing, settings)
    cases = Cases(db, outbox, directory, routing, case_routing, patients, audit)
    runner = CommandRunner(db, outbox, cases, case_routing, audit)
    roster = Roster(db, audit)
    dispatcher = Dispatcher(db, outbox, roster, settings, audit)
    transport_clock = TransportClock(db, settings)
    idempotency = IdempotencyKeys(db, owner=runtime.replica_id)
    access = TransportAccess(db, patients)
    transports = Transports(
        db, outbox, dispatcher, transport_clock, access, idempotency, settings, audit
    )
    return Referrals(
        db=db,
        settings=settings,
        audit=audit,
        idempotency=idempotency,
        directory=directory,
        patients=patients,
        pool=PoolProjection(db),
        cases=cases,
        triage=Triage(runner, cases, case_routing),
        care=Care(runner, cases, case_routing),
        saga=BookingSaga(db),
        sla=SlaClock(db, case_routing),
        worklists=Worklists(db, audit),
        notices=Notices(db),
        roster=roster,
        dispatcher=dispatcher,
        transport_clock=transport_clock,
        transports=transports,
        transport_links=TransportLinks(db, transports),
        transport_board=TransportBoard(db, audit),
    )


async def on_start(runtime: Runtime) -> None:
    runtime.extras[EXTRA] = build(runtime)


def built(runtime: Runtime) -> Referrals:
    referrals: Referrals = runtime.extras[EXTRA]
    return referrals


def get_referrals(request: Request) -> Referrals:
    return built(request.app.state.runtime)

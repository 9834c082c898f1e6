"""The followup composition root: every object the routes and handlers use, built once in
the lifespan, in dependency order, with explicit constructor arguments."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from services.followup.call_list import CallList
from services.followup.complaint_reads import ComplaintReads
from services.followup.complaint_settings import ComplaintSettings
from services.followup.complaints import Complaints
from services.followup.discharges import Discharges
from services.followup.do_not_contact import DoNotContact
from services.followup.figures import Figures
from services.followup.intake import Intake
from services.followup.patients import KnownPatients
from services.followup.plans import Plans
from services.followup.questionnaire_catalog import QuestionnaireCatalog
from services.followup.questionnaires import Questionnaires
from services.followup.revisits import Revisits
from services.followup.risk_flags import RiskFlags
from services.followup.settings import FollowupSettings
from services.followup.surveys import Surveys
from services.followup.tasks import Tasks
from services.followup.templates import PlanTemplates
from shared.audit import AuditLog
from shared.crypto import FieldCipher
from shared.idempotency import IdempotencyKeys
from shared.mongo import Database
from shared.outbox import Outbox
from shared.service import Runtime

EXTRA = "followup"  # the key of the built objects in ``Runtime.extras``


@dataclass(frozen=True)
class Followup:
    db: Database
    outbox: Outbox
    settings: FollowupSettings
    audit: AuditLog
    idempotency: IdempotencyKeys
    cipher: FieldCipher
    patients: KnownPatients
    templates: PlanTemplates
    plans: Plans
    discharges: Discharges
    intake: Intake
    dnc: DoNotContact
    tasks: Tasks
    revisits: Revisits
    call_list: CallList
    surveys: Surveys
    figures: Figures
    questionnaires: Questionnaires
    risk_flags: RiskFlags
    complaint_settings: ComplaintSettings
    complaints: Complaints
    complaint_reads: ComplaintReads


def build(runtime: Runtime) -> Followup:
    settings = runtime.settings
    assert isinstance(settings, FollowupSettings)
    db, audit, outbox = runtime.db, runtime.audit, runtime.outbox
    cipher = FieldCipher.from_settings(settings.pii_encryption_keys, settings.pii_hash_key)
    patients = KnownPatients(db, cipher)
    templates = PlanTemplates(db, audit)
    plans = Plans(db, templates, audit, settings)
    discharges = Discharges(db, outbox, patients, plans, audit)
    dnc = DoNotContact(db, audit)
    revisits = Revisits(db, plans, settings)
    tasks = Tasks(db, outbox, plans, revisits, dnc, audit, settings)
    surveys = Surveys(db, outbox, patients, dnc, audit, settings)
    discharges.surveys = surveys
    risk_flags = RiskFlags(db, plans, revisits, audit)
    questionnaires = Questionnaires(
        db, outbox, QuestionnaireCatalog(db, audit), plans, risk_flags, patients, audit, settings
    )
    tasks.questionnaires = questionnaires
    complaint_settings = ComplaintSettings(db, audit)
    return Followup(
        db=db,
        outbox=outbox,
        settings=settings,
        audit=audit,
        idempotency=IdempotencyKeys(db, owner=runtime.replica_id),
        cipher=cipher,
        patients=patients,
        templates=templates,
        plans=plans,
        discharges=discharges,
        intake=Intake(db, outbox, cipher, discharges, plans, audit, settings),
        dnc=dnc,
        tasks=tasks,
        revisits=revisits,
        call_list=CallList(db, audit),
        surveys=surveys,
        figures=Figures(db, surveys, audit),
        questionnaires=questionnaires,
        risk_flags=risk_flags,
        complaint_settings=complaint_settings,
        complaints=Complaints(db, outbox, patients, complaint_settings, audit, settings),
        complaint_reads=ComplaintReads(db, patients, audit),
    )


async def on_start(runtime: Runtime) -> None:
    runtime.extras[EXTRA] = build(runtime)


def built(runtime: Runtime) -> Followup:
    followup: Followup = runtime.extras[EXTRA]
    return followup


def get_followup(request: Request) -> Followup:
    return built(request.app.state.runtime)

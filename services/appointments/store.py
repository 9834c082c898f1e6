"""The appointments service's collections and their indexes (it owns all of these)."""

from __future__ import annotations

import contextlib

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import OperationFailure

from shared.mongo import CollectionIndexes, Database

POLICIES = "booking_policies"
DEPARTMENTS = "departments"
RESOURCES = "resources"  # doctors and exam resources (CT, MRI, ...)
SCHEDULES = "schedules"
SLOTS = "slots"
APPOINTMENTS = "appointments"
PATIENTS = "patients"
PATIENT_VERIFICATIONS = "patient_verifications"  # proof before linking a patient
PATIENT_RECORDS = "patient_records"  # active counts, offences, bans
PENALTIES = "penalties"
WAITLIST = "waitlist"
COUNTERS = "counters"
REBOOKING_OFFERS = "rebooking_offers"  # priority rebooking after a cancelled session
REFERRAL_ASKS = "referral_asks"  # each referral booking ask once, by booking_request_id
REVISIT_ASKS = "revisit_asks"  # each follow-up revisit ask once, by revisit_request_id
WARDS = "wards"  # inpatient wards (from HIS), _id "<org>.<code>"
BEDS = "beds"  # their beds with a status (free, occupied, cleaning, reserved, blocked)
BED_HISTORY = "bed_history"  # every bed status change
BED_POLICIES = "bed_policies"  # per organization (_id: org_id): offer window, borrowing
ADMISSION_NOTICES = "admission_notices"  # 住院证 and the department's bed waiting list
BED_OFFERS = "bed_offers"  # a reserved bed offered to a patient until confirmed or expired
HOTLINE_CALLS = "hotline_calls"  # incoming hotline calls (CTI pops), _id: the telephony's id
CALL_DAYS = 7  # a call is kept this long (TTL), then dropped

ACTIVE = {"active": True}

INDEXES = [
    CollectionIndexes(POLICIES),
    CollectionIndexes(
        DEPARTMENTS,
        [
            IndexModel([("org_id", ASCENDING), ("code", ASCENDING)], unique=True, name="org_code"),
        ],
    ),
    CollectionIndexes(
        RESOURCES,
        [
            IndexModel([("org_id", ASCENDING), ("department_id", ASCENDING)], name="department"),
            IndexModel([("org_id", ASCENDING), ("code", ASCENDING)], unique=True, name="org_code"),
        ],
    ),
    CollectionIndexes(
        SCHEDULES,
        [
            IndexModel(
                [("resource_id", ASCENDING), ("clinic_date", ASCENDING), ("session", ASCENDING)],
                unique=True,
                name="resource_session",
            ),
            IndexModel(
                [("org_id", ASCENDING), ("department_id", ASCENDING), ("clinic_date", ASCENDING)],
                name="department_day",
            ),
        ],
    ),
    CollectionIndexes(
        SLOTS,
        [
            IndexModel(
                [("schedule_id", ASCENDING), ("number", ASCENDING)],
                unique=True,
                name="schedule_number",
            ),
            IndexModel(
                [("schedule_id", ASCENDING), ("status", ASCENDING), ("pool", ASCENDING)],
                name="schedule_open",
            ),
        ],
    ),
    CollectionIndexes(
        APPOINTMENTS,
        [
            # the last line of defence against double booking: one active booking per slot
            IndexModel(
                [("slot_id", ASCENDING)],
                unique=True,
                partialFilterExpression=ACTIVE,
                name="one_active_per_slot",
            ),
            IndexModel(
                [("patient_id", ASCENDING), ("schedule_id", ASCENDING)],
                unique=True,
                partialFilterExpression=ACTIVE,
                name="one_active_per_patient_session",
            ),
            IndexModel([("patient_id", ASCENDING), ("starts_at", DESCENDING)], name="patient"),
            IndexModel([("account_id", ASCENDING), ("starts_at", DESCENDING)], name="account"),
            IndexModel([("schedule_id", ASCENDING), ("status", ASCENDING)], name="schedule"),
            IndexModel([("referral_id", ASCENDING), ("status", ASCENDING)], name="referral"),
            # the dashboard's figures (figures.py): bookings made per day, sessions held
            IndexModel([("org_id", ASCENDING), ("booked_on", ASCENDING)], name="org_booked_on"),
            IndexModel([("org_id", ASCENDING), ("clinic_date", ASCENDING)], name="org_clinic_date"),
        ],
    ),
    CollectionIndexes(
        PATIENTS,
        [
            IndexModel([("national_id_hash", ASCENDING)], unique=True, name="national_id"),
            IndexModel([("account_ids", ASCENDING)], name="accounts"),
            # staff search (the hotline): by keyed phone hash (family members share a phone)
            # and by exact name
            IndexModel([("phone_hash", ASCENDING)], name="phone"),
            IndexModel([("name", ASCENDING)], name="name"),
        ],
    ),
    CollectionIndexes(
        PATIENT_VERIFICATIONS,
        [
            IndexModel([("account_id", ASCENDING), ("created_at", DESCENDING)], name="account"),
            # kept a day past expiry (the rate limit counts the last hour), then dropped
            IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=86400, name="expiry"),
        ],
    ),
    CollectionIndexes(PATIENT_RECORDS),
    CollectionIndexes(
        PENALTIES,
        [
            IndexModel([("patient_id", ASCENDING), ("at", DESCENDING)], name="patient"),
            # one open appeal per patient and organization, even when two requests race
            IndexModel(
                [("patient_id", ASCENDING), ("org_id", ASCENDING)],
                unique=True,
                partialFilterExpression={"open": True},
                name="one_open_appeal_per_org",
            ),
            IndexModel(
                [
                    ("kind", ASCENDING),
                    ("status", ASCENDING),
                    ("org_id", ASCENDING),
                    ("_id", ASCENDING),
                ],
                name="appeal_queue",
            ),
        ],
    ),
    CollectionIndexes(
        WAITLIST,
        [
            IndexModel(
                [("schedule_id", ASCENDING), ("status", ASCENDING), ("_id", ASCENDING)],
                name="queue",
            ),
            IndexModel(
                [("patient_id", ASCENDING), ("schedule_id", ASCENDING)],
                unique=True,
                partialFilterExpression=ACTIVE,
                name="once_per_schedule",
            ),
        ],
    ),
    CollectionIndexes(COUNTERS),
    CollectionIndexes(
        REBOOKING_OFFERS,
        [
            IndexModel(
                [("cancelled_appointment_id", ASCENDING)], unique=True, name="one_per_booking"
            ),
            IndexModel([("patient_id", ASCENDING), ("created_at", DESCENDING)], name="patient"),
        ],
    ),
    CollectionIndexes(
        REFERRAL_ASKS,  # _id: the ask's booking_request_id
        [IndexModel([("referral_id", ASCENDING), ("created_at", DESCENDING)], name="referral")],
    ),
    CollectionIndexes(
        REVISIT_ASKS,  # _id: the ask's revisit_request_id
        [IndexModel([("plan_id", ASCENDING), ("created_at", DESCENDING)], name="plan")],
    ),
    CollectionIndexes(
        WARDS, [IndexModel([("org_id", ASCENDING), ("department_id", ASCENDING)], name="dept")]
    ),
    CollectionIndexes(
        BEDS,
        [
            IndexModel(
                [("ward_id", ASCENDING), ("code", ASCENDING)], unique=True, name="ward_code"
            ),
            IndexModel([("org_id", ASCENDING), ("status", ASCENDING)], name="org_status"),
            IndexModel([("org_id", ASCENDING), ("patient_id", ASCENDING)], name="patient"),
        ],
    ),
    CollectionIndexes(
        BED_HISTORY, [IndexModel([("bed_id", ASCENDING), ("at", DESCENDING)], name="bed")]
    ),
    CollectionIndexes(BED_POLICIES),
    CollectionIndexes(
        ADMISSION_NOTICES,
        [
            # one active notice per episode, even when two requests race
            IndexModel(
                [("patient_id", ASCENDING), ("episode_id", ASCENDING)],
                unique=True,
                partialFilterExpression=ACTIVE,
                name="one_active_per_episode",
            ),
            IndexModel(
                [("org_id", ASCENDING), ("department_id", ASCENDING), ("status", ASCENDING)],
                name="line",
            ),
            IndexModel([("org_id", ASCENDING), ("admitted_at", DESCENDING)], name="admitted"),
            IndexModel([("patient_id", ASCENDING), ("issued_at", DESCENDING)], name="patient"),
        ],
    ),
    CollectionIndexes(
        BED_OFFERS,
        [
            IndexModel([("notice_id", ASCENDING), ("created_at", DESCENDING)], name="notice"),
            IndexModel([("org_id", ASCENDING), ("patient_id", ASCENDING)], name="patient"),
        ],
    ),
    CollectionIndexes(
        HOTLINE_CALLS,
        [
            IndexModel(
                [("received_at", ASCENDING)], expireAfterSeconds=CALL_DAYS * 86400, name="expiry"
            ),
            IndexModel([("org_id", ASCENDING), ("received_at", DESCENDING)], name="org"),
        ],
    ),
]

# indexes of earlier versions, dropped at start-up (after the indexes above exist)
RETIRED_INDEXES = [
    (PENALTIES, "one_open_appeal"),  # one per patient, before bans were per organization
]


async def drop_retired_indexes(db: Database) -> None:
    for collection, name in RETIRED_INDEXES:
        with contextlib.suppress(OperationFailure):  # never created, or gone
            await db[collection].drop_index(name)

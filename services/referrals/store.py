"""The referrals service's collections and their indexes (it owns all of these).

* ``organizations`` / ``relationships``: the alliance's directory (``directory.py``).
* ``referral_cases``: one document a case, its history and notes inside (``cases.py``).
* ``referral_offers``: each time a case was offered to an organization and how it
  answered (acceptance rate and time to accept, for routing and the figures).
* ``referral_notices``: what staff are told of changes (``notices.py``).
* ``known_patients``: appointments' real-name patients (ids and the accounts that manage
  them), projected from ``patient.registered`` / ``patient.unlinked``, and the
  organizations where they booked or checked in (``org_ids``).
* ``transports``: patient transports and escorts, their steps and history
  (``transports.py``); ``porters``: the roster of porters and ambulance crews (``porters.py``).
* ``referral_pool``: free referral-pool numbers per schedule, projected from appointments'
  schedule and booking events (``pool_projection.py``).
"""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, IndexModel

from shared.idempotency import INDEXES as IDEMPOTENCY_INDEXES
from shared.mongo import CollectionIndexes

ORGANIZATIONS = "organizations"
RELATIONSHIPS = "relationships"
CASES = "referral_cases"
POOL = "referral_pool"
OFFERS = "referral_offers"
PATIENTS = "known_patients"
NOTICES = "referral_notices"
TRANSPORTS = "transports"
PORTERS = "porters"

LIVE_STATUSES = ["draft", "requested", "accepted", "in-progress", "on-hold"]

INDEXES: list[CollectionIndexes] = [
    CollectionIndexes(
        ORGANIZATIONS,
        [
            IndexModel([("departments.specialties", ASCENDING)], name="by_specialty"),
            IndexModel([("region", ASCENDING), ("level", ASCENDING)], name="by_region_level"),
        ],
    ),
    CollectionIndexes(
        RELATIONSHIPS,
        [
            IndexModel(
                [("from_org_id", ASCENDING), ("direction", ASCENDING)], name="from_org_direction"
            ),
            IndexModel([("to_org_id", ASCENDING)], name="to_org"),
        ],
    ),
    CollectionIndexes(
        CASES,
        [
            # one live referral per patient and episode: a new one after rejection or closure
            IndexModel(
                [("patient_id", ASCENDING), ("episode_id", ASCENDING)],
                name="one_live_case_per_episode",
                unique=True,
                partialFilterExpression={"live": True},
            ),
            IndexModel(
                [("receiving_org_id", ASCENDING), ("status", ASCENDING), ("due_at", ASCENDING)],
                name="incoming_worklist",
            ),
            IndexModel(
                [("sending_org_id", ASCENDING), ("created_at", DESCENDING)],
                name="outgoing_list",
            ),
            IndexModel([("patient_id", ASCENDING), ("created_at", DESCENDING)], name="by_patient"),
            IndexModel([("booking.appointment_id", ASCENDING)], name="by_appointment"),
            IndexModel([("created_at", ASCENDING)], name="by_created"),
        ],
    ),
    CollectionIndexes(
        POOL,
        [
            IndexModel(
                [("org_id", ASCENDING), ("department_id", ASCENDING), ("clinic_date", ASCENDING)],
                name="by_department_date",
            ),
            IndexModel(
                [
                    ("org_id", ASCENDING),
                    ("resource_id", ASCENDING),
                    ("clinic_date", ASCENDING),
                    ("session", ASCENDING),
                ],
                name="by_session",
            ),
        ],
    ),
    CollectionIndexes(
        OFFERS,
        [
            IndexModel([("org_id", ASCENDING), ("offered_at", DESCENDING)], name="by_org"),
            IndexModel(
                [("org_id", ASCENDING), ("outcome", ASCENDING), ("answered_at", ASCENDING)],
                name="answered_by_org",
            ),
        ],
    ),
    CollectionIndexes(
        NOTICES,
        [
            IndexModel(
                [("org_id", ASCENDING), ("doctor_id", ASCENDING), ("created_at", DESCENDING)],
                name="by_audience",
            )
        ],
    ),
    CollectionIndexes(
        TRANSPORTS,
        [
            IndexModel(
                [("org_id", ASCENDING), ("state", ASCENDING), ("requested_at", ASCENDING)],
                name="dispatch_list",
            ),
            IndexModel([("porter_id", ASCENDING), ("state", ASCENDING)], name="by_porter"),
            IndexModel([("appointment_id", ASCENDING)], name="by_appointment", sparse=True),
            # one ambulance transfer per accepted referral (the trigger is idempotent)
            IndexModel(
                [("trigger_key", ASCENDING)],
                name="one_transfer_per_referral",
                unique=True,
                partialFilterExpression={"trigger_key": {"$type": "string"}},
            ),
            IndexModel(
                [("patient_id", ASCENDING), ("requested_at", DESCENDING)], name="by_patient"
            ),
        ],
    ),
    CollectionIndexes(
        PORTERS,
        [IndexModel([("org_id", ASCENDING), ("on_duty", ASCENDING)], name="on_duty_by_org")],
    ),
    IDEMPOTENCY_INDEXES,
]

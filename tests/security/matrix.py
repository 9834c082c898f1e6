"""The declared access of every route of every service (the authorization matrix).

A route an app serves that is not listed here fails the build: a new endpoint needs a
declared rule. Least-privilege product decisions taken here (and enforced in the routes):

* "My account" endpoints (my patients, my appointments, my rebooking offers, appeals,
  WeChat binding/consents) are for patient accounts only: a staff or service account owns
  no patients, and registering one under a staff account would make that account an
  "owner" that receives the patient's notifications. The inbox is the caller's own, for
  patient and staff accounts: staff receive alerts there (a follow-up risk flag for the
  responsible doctor), never a patient's messages.
* Booking commands for a patient (book, cancel, reschedule, waitlist join/leave/confirm,
  accept a rebooking offer) are for the patient's account, hotline agents and on-site
  nurses (``BOOKERS``). Doctors add extra numbers (加号); coordinators and the HIS act
  through events and session cancellation; admins manage master data and policy.
* Reading one appointment or waitlist entry, a patient's messages and notification
  preferences: the owner, every staff role (audited) and service callers. Changing the
  preferences: the owner and staff (audited), not service callers (unaudited, no use).
* Check-in: the owner, nurses, hotline agents and service callers (HIS kiosks).
"""

from __future__ import annotations

from shared.principal import Role
from tests.factories import make_national_id, make_phone
from tests.security.matrix_beds import BED_RULES
from tests.security.matrix_figures import FIGURES_RULES
from tests.security.matrix_followup import FOLLOWUP_RULES, F
from tests.security.matrix_hotline import HOTLINE_RULES
from tests.security.matrix_referrals import REFERRAL_RULES
from tests.security.matrix_rules import (
    ADMIN,
    ADMIN_OR_SERVICE,
    ALL,
    BOOKERS,
    PATIENT,
    PATIENT_OR_STAFF,
    SERVICE,
    STAFF,
    Public,
    Rule,
    health_rules,
    ops_rules,
)

A = "/v1/appointments"
IDENTITY_STAFF = ADMIN | {Role.NURSE, Role.AGENT}
STAFF_LINK = {
    "account_id": "matrix-linked-account",
    "patient": {"name": "柳叶", "national_id": make_national_id(seed=13), "phone": make_phone(13)},
    "method": "counter",
}
N = "/v1/notifications"
ORG_QUERY = {"org_id": "{org_id}"}
REASON = {"reason": "authorization matrix"}

APPOINTMENTS: list[Rule] = [
    *health_rules(),
    *ops_rules("appointments"),
    # catalog: any signed-in caller (patients search, staff and the HIS too)
    Rule("GET", f"{A}/departments", ALL, query=ORG_QUERY),
    Rule("GET", f"{A}/doctors", ALL, query=ORG_QUERY),
    Rule("GET", f"{A}/schedules", ALL, query=ORG_QUERY),
    Rule("GET", f"{A}/schedules/{{schedule_id}}/slots", ALL),
    # real-name patients of an account
    Rule("POST", f"{A}/patients", PATIENT, why="only patient accounts own patients"),
    Rule("GET", f"{A}/patients", PATIENT),
    Rule(
        "POST",
        f"{A}/patients/verifications/{{verification_id}}",
        PATIENT,
        owned=True,
        body={"code": "000000"},
        why="the texted code proves control of the patient's record",
    ),
    Rule(
        "DELETE",
        f"{A}/patients/{{patient_id}}",
        PATIENT,
        owned=True,
        allowed_ids={"patient_id": "disposable_patient_id"},
    ),
    Rule("POST", f"{A}/staff/patients/lookup", STAFF, query=REASON),
    Rule(
        "POST",
        f"{A}/staff/patients/{{patient_id}}/identity",
        IDENTITY_STAFF,
        owned=True,
        query=REASON,
        why="the full national ID and phone: ID checks at the desk, hotline call-backs",
    ),
    Rule(
        "POST",
        f"{A}/staff/patients/links",
        IDENTITY_STAFF,
        query=REASON,
        body=STAFF_LINK,
        why="a link the counter or hotline verified (the patient cannot take a texted code)",
    ),
    Rule("GET", f"{A}/staff/patients/{{patient_id}}/appointments", STAFF, owned=True, query=REASON),
    # bookings
    Rule(
        "POST",
        f"{A}/appointments",
        BOOKERS,
        owned=True,
        query=REASON,
        bola_body={"patient_id": "{patient_id}", "schedule_id": "{open_schedule_id}"},
    ),
    Rule("GET", f"{A}/appointments", PATIENT),
    Rule("GET", f"{A}/appointments/{{appointment_id}}", ALL, owned=True, query=REASON),
    Rule(
        "POST",
        f"{A}/appointments/{{appointment_id}}/cancel",
        BOOKERS,
        owned=True,
        query=REASON,
        bola_body=REASON,
    ),
    Rule(
        "POST",
        f"{A}/appointments/{{appointment_id}}/reschedule",
        BOOKERS,
        owned=True,
        query=REASON,
        bola_body={"schedule_id": "{open_schedule_id}"},
    ),
    Rule(
        "POST",
        f"{A}/appointments/{{appointment_id}}/check-in",
        frozenset({Role.PATIENT, Role.NURSE, Role.AGENT, Role.SERVICE}),
        owned=True,
    ),
    Rule(
        "POST",
        f"{A}/schedules/{{schedule_id}}/extra-numbers",
        frozenset({Role.DOCTOR, Role.NURSE, Role.AGENT}) | ADMIN,
        owned=True,
        bola_body={"patient_id": "{patient_id}", "reason": "matrix"},
    ),
    # a cancelled session (停诊) and priority rebooking
    Rule(
        "POST",
        f"{A}/admin/schedules/{{schedule_id}}/cancel",
        ADMIN | {Role.SERVICE, Role.COORDINATOR},
    ),
    Rule("GET", f"{A}/rebooking-offers", PATIENT),
    Rule(
        "POST",
        f"{A}/rebooking-offers/{{offer_id}}/accept",
        BOOKERS,
        owned=True,
        bola_body={"schedule_id": "{open_schedule_id}"},
    ),
    # penalties
    Rule(
        "GET",
        f"{A}/patients/{{patient_id}}/booking-status",
        PATIENT_OR_STAFF,
        owned=True,
        query=REASON,
    ),
    Rule(
        "POST",
        f"{A}/patients/{{patient_id}}/appeals",
        PATIENT,
        owned=True,
        bola_body={"reason": "matrix appeal"},
        why="only the patient's own account appeals",
    ),
    Rule("POST", f"{A}/appeals/{{appeal_id}}/decision", ADMIN | {Role.AGENT}),
    Rule(
        "GET",
        f"{A}/staff/appeals",
        ADMIN | {Role.AGENT},
        query=REASON,
        why="the staff who decide appeals; staff of an organization see its appeals only",
    ),
    Rule(
        "POST",
        f"{A}/patients/{{patient_id}}/ban-override",
        ADMIN,
        owned=True,
        bola_body={"reason": "matrix override"},
    ),
    # waitlist (候补)
    Rule(
        "POST",
        f"{A}/waitlist",
        BOOKERS,
        owned=True,
        query=REASON,
        bola_body={"patient_id": "{patient_id}", "schedule_id": "{full_schedule_id}"},
    ),
    Rule("GET", f"{A}/waitlist", PATIENT_OR_STAFF, why="staff pass ?patient_id= (audited)"),
    Rule("GET", f"{A}/waitlist/{{entry_id}}", ALL, owned=True, query=REASON),
    Rule(
        "DELETE",
        f"{A}/waitlist/{{entry_id}}",
        BOOKERS,
        owned=True,
        query=REASON,
        allowed_ids={"entry_id": "spare_entry_id"},
    ),
    Rule("POST", f"{A}/waitlist/{{entry_id}}/confirm", BOOKERS, owned=True),
    # waiting-room tickets: only the account that asked sees its ticket (404 for others)
    Rule("GET", f"{A}/tickets/{{ticket_id}}", BOOKERS, owned=True),
    Rule("GET", f"{A}/tickets/{{ticket_id}}/events", BOOKERS, owned=True),
    # master data and policy: admins and the HIS integration
    Rule("PUT", f"{A}/admin/departments", ADMIN_OR_SERVICE),
    Rule("PUT", f"{A}/admin/resources", ADMIN_OR_SERVICE),
    Rule("POST", f"{A}/admin/schedules", ADMIN_OR_SERVICE),
    Rule("GET", f"{A}/admin/policies/{{org_id}}", ADMIN_OR_SERVICE),
    # an invalid policy: the allowed callers' call must not replace the real one
    Rule(
        "PUT",
        f"{A}/admin/policies/{{org_id}}",
        ADMIN_OR_SERVICE,
        body={"max_patients_per_account": 0},
        bola_body={},  # a valid policy: only the organization can refuse another's admin
    ),
    # bed arrangement (住院床位): tests/security/matrix_beds.py
    *BED_RULES,
    *HOTLINE_RULES,  # the console's hotline: patient search, registration, call pops
    *FIGURES_RULES,  # the dashboard's booking figures
]

WECHAT_BAD_SIGNATURE = {"signature": "0" * 40, "timestamp": "1", "nonce": "n", "echostr": "e"}

NOTIFICATIONS: list[Rule] = [
    *health_rules(),
    *ops_rules("notifications"),
    # the caller's own inbox: patients' messages, staff's alerts (audience = "staff")
    Rule("GET", f"{N}/inbox", PATIENT_OR_STAFF),
    Rule("GET", f"{N}/inbox/unread-count", PATIENT_OR_STAFF),
    Rule("POST", f"{N}/inbox/read", PATIENT_OR_STAFF, body={"ids": []}),
    Rule("GET", f"{N}/inbox/stream", PATIENT_OR_STAFF, stream=True),
    Rule("POST", f"{N}/login-codes", SERVICE, why="the gateway asks for SMS login codes"),
    # a patient's message log and preferences: the owner, staff (audited), services
    Rule("GET", f"{N}/patients/{{patient_id}}/messages", ALL, owned=True, query=REASON),
    Rule(
        "POST",
        f"{N}/admin/messages/{{message_id}}/retry",
        ADMIN | {Role.AGENT},
        query=REASON,
        why="an agent resends a failed message for the caller (the console's message log)",
        allowed_ids={"message_id": "notification_message_id"},  # message_id: followup's
    ),
    Rule("GET", f"{N}/patients/{{patient_id}}/preferences", ALL, owned=True, query=REASON),
    Rule(
        "PUT",
        f"{N}/patients/{{patient_id}}/preferences",
        PATIENT_OR_STAFF,
        owned=True,
        query=REASON,
        why="a write: the owner or audited staff; service callers have no use for it",
    ),
    Rule(
        "PATCH",
        f"{N}/patients/{{patient_id}}/preferences",
        PATIENT_OR_STAFF,
        owned=True,
        query=REASON,
        why="a partial write: as PUT",
    ),
    Rule(
        "PUT",
        f"{N}/accounts/{{account_id}}/wechat",
        SERVICE,
        body={"openid": "oWx-matrix-bound"},
        why="the gateway binds the openid WeChat's code2session gave it; never a client",
    ),
    Rule("GET", f"{N}/me/wechat", PATIENT),
    Rule("POST", f"{N}/me/wechat/consents", PATIENT),
    Rule("GET", f"{N}/me/wechat/consents", PATIENT),
    # provider callbacks: no JWT, a shared token or signature of their own
    Rule(
        "POST",
        f"{N}/providers/aliyun/sms-receipts",
        public=Public.SIGNED,
        query={"token": "not-the-token"},
    ),
    Rule("GET", f"{N}/providers/wechat/events", public=Public.SIGNED, query=WECHAT_BAD_SIGNATURE),
    Rule("POST", f"{N}/providers/wechat/events", public=Public.SIGNED, query=WECHAT_BAD_SIGNATURE),
    # the local sandbox provider: operators and test harnesses
    Rule("POST", f"{N}/sandbox/receipts", ADMIN_OR_SERVICE),
    Rule("GET", f"{N}/sandbox/deliveries", ADMIN_OR_SERVICE, query=REASON),
    # templates: staff read, admins preview, publish and roll back
    Rule("GET", f"{N}/templates", STAFF),
    Rule("GET", f"{N}/templates/{{kind}}", STAFF),
    Rule("POST", f"{N}/templates/{{kind}}/versions", ADMIN),
    Rule("PUT", f"{N}/templates/{{kind}}/active", ADMIN),
    Rule("POST", f"{N}/templates/{{kind}}/preview", ADMIN),
    # staff contacts (how alerts reach a doctor): the HIS and admins of the staff
    # member's organization (an organization's admin: its own staff only)
    Rule(
        "PUT",
        f"{N}/admin/staff-contacts/{{staff_id}}",
        ADMIN_OR_SERVICE,
        body={"org_id": "{org_id}", "phone": "13800138000"},
        why="the HIS or an admin keeps the phone alerts go to (encrypted, shown masked)",
    ),
    Rule("GET", f"{N}/admin/staff-contacts/{{staff_id}}", ADMIN_OR_SERVICE),
    Rule("DELETE", f"{N}/admin/staff-contacts/{{staff_id}}", ADMIN_OR_SERVICE),
]

MATRIX: dict[str, list[Rule]] = {
    "appointments": APPOINTMENTS,
    "notifications": NOTIFICATIONS,
    "referrals": REFERRAL_RULES,
    "followup": FOLLOWUP_RULES,
}

# "My" collections: B's page must never show A's items; A's page shows the named one of
# A's (a control that the fixture data is there).
MY_COLLECTIONS: list[tuple[str, str, str]] = [
    ("appointments", f"{A}/patients", "patient_id"),
    ("appointments", f"{A}/appointments", "appointment_id"),
    ("appointments", f"{A}/waitlist", "entry_id"),
    ("appointments", f"{A}/rebooking-offers", "offer_id"),
    ("appointments", f"{A}/me/admission-notices", "notice_id"),
    ("notifications", f"{N}/inbox", "inbox_id"),
    ("referrals", "/v1/referrals/me/referrals", "referral_id"),
    ("followup", f"{F}/me/complaints", "complaint_id"),
    ("followup", f"{F}/me/surveys", "survey_id"),
    ("followup", f"{F}/me/questionnaires", "open_response_id"),
]

# Further calls by B with A's ids, beyond each owned route's own call.
BOLA_EXTRAS: list[tuple[str, str, str, dict[str, str]]] = [
    ("appointments", "GET", f"{A}/waitlist", {"patient_id": "{patient_id}"}),
    ("appointments", "GET", f"{A}/patients/{{patient_id}}/booking-status", ORG_QUERY),
    ("appointments", "GET", f"{A}/beds/figures", ORG_QUERY),
    ("notifications", "GET", f"{N}/patients/{{patient_id}}/messages", {"limit": "100"}),
    # an organization's complaints and survey results, asked for by A's organization's id
    ("followup", "GET", f"{F}/complaints", ORG_QUERY),
    ("followup", "GET", f"{F}/surveys/results", ORG_QUERY),
    ("followup", "GET", f"{F}/figures", ORG_QUERY),
]

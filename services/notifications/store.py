"""The notifications service's collections and their indexes (it owns all of these)."""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, IndexModel

from shared.mongo import CollectionIndexes

MESSAGES = "messages"  # one per source, kind and channel, with every attempt
DISPATCHES = "dispatches"  # one per source and kind: the channel plan, and the dedupe
INBOX = "inbox_items"  # in-app inbox items, per account ("inbox": the handled events)
RECIPIENTS = "recipients"  # per patient: the accounts that manage them, phone (encrypted)
ACCOUNTS = "accounts"  # per account: WeChat openid
PREFERENCES = "preferences"  # per patient
CONSENTS = "wechat_consents"  # per account and kind: one-time subscriptions left
CONSENT_LEDGER = "wechat_consent_ledger"  # every grant and use
TEMPLATES = "templates"  # stored template versions (message_kinds/ holds the built-in ones)
SANDBOX = "sandbox_deliveries"  # what the local sandbox provider "sent"
STAFF_CONTACTS = "staff_contacts"  # per staff id: org, phone (encrypted), WeChat openid

INDEXES = [
    CollectionIndexes(
        MESSAGES,
        [
            IndexModel([("dedupe", ASCENDING)], unique=True, name="dedupe"),
            IndexModel([("patient_id", ASCENDING), ("_id", DESCENDING)], name="patient_log"),
            IndexModel(
                [("provider", ASCENDING), ("provider_message_id", ASCENDING)],
                name="provider_message",
                partialFilterExpression={"provider_message_id": {"$type": "string"}},
            ),
            IndexModel([("status", ASCENDING), ("_id", ASCENDING)], name="status"),
        ],
    ),
    CollectionIndexes(
        INBOX,
        [
            IndexModel([("account_id", ASCENDING), ("_id", DESCENDING)], name="account_items"),
            IndexModel([("account_id", ASCENDING), ("read_at", ASCENDING)], name="account_unread"),
            IndexModel([("dedupe", ASCENDING)], unique=True, name="dedupe"),
        ],
    ),
    CollectionIndexes(RECIPIENTS, [IndexModel([("account_ids", ASCENDING)], name="accounts")]),
    CollectionIndexes(
        STAFF_CONTACTS, [IndexModel([("org_id", ASCENDING), ("_id", ASCENDING)], name="org")]
    ),
    CollectionIndexes(DISPATCHES),
    CollectionIndexes(ACCOUNTS),
    CollectionIndexes(PREFERENCES),
    CollectionIndexes(CONSENTS),
    CollectionIndexes(
        CONSENT_LEDGER, [IndexModel([("account_id", ASCENDING), ("at", DESCENDING)], name="acct")]
    ),
    CollectionIndexes(
        TEMPLATES,
        [IndexModel([("kind", ASCENDING), ("version", ASCENDING)], unique=True, name="version")],
    ),
    CollectionIndexes(
        SANDBOX,
        [
            IndexModel([("patient_id", ASCENDING), ("_id", ASCENDING)], name="patient"),
            IndexModel([("message_id", ASCENDING)], name="message"),
            IndexModel(
                [("send_key", ASCENDING)],
                name="send_key",
                unique=True,
                partialFilterExpression={"send_key": {"$type": "string"}},
            ),
        ],
    ),
]

"""The gateway's collections and their indexes (accounts; the audit log is shared.audit's)."""

from __future__ import annotations

from pymongo import IndexModel

from shared.mongo import CollectionIndexes

PATIENT_ACCOUNTS = "patient_accounts"
STAFF_ACCOUNTS = "staff_accounts"

INDEXES = [
    CollectionIndexes(
        PATIENT_ACCOUNTS,
        [
            IndexModel(
                [("phone_hash", 1)],
                unique=True,
                partialFilterExpression={"phone_hash": {"$type": "string"}},
            ),
            IndexModel(
                [("wechat_openid", 1)],
                unique=True,
                partialFilterExpression={"wechat_openid": {"$type": "string"}},
            ),
        ],
    ),
    CollectionIndexes(STAFF_ACCOUNTS, [IndexModel([("username", 1)], unique=True)]),
]

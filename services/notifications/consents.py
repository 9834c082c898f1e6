"""The ledger of WeChat one-time subscription consents.

WeChat lets a mini-program send one subscription message per consent the user gave for
that template (``wx.requestSubscribeMessage``). The mini-program reports each accepted
template here; every WeChat send spends one, and a send without one falls back to the next
channel. The balance and every grant or use are kept, so staff can see why a message went
by SMS instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from pymongo import ReturnDocument

from services.notifications.store import CONSENT_LEDGER, CONSENTS
from shared.ids import new_id
from shared.mongo import Database, Document, Session
from shared.outbox import Outbox, Tx


class Consents:
    def __init__(self, db: Database, outbox: Outbox, template_ids: Mapping[str, str]) -> None:
        self.outbox = outbox
        self.balances = db[CONSENTS]
        self.ledger = db[CONSENT_LEDGER]
        self.kind_of_template = {tid: kind for kind, tid in template_ids.items()}

    def kind_for(self, template: str, known_kinds: frozenset[str]) -> str | None:
        """Map what the mini-program reports (a WeChat template id, or a kind) to a kind."""
        if template in self.kind_of_template:
            return self.kind_of_template[template]
        return template if template in known_kinds else None

    async def record_results(
        self, account_id: str, results: Mapping[str, str], known_kinds: frozenset[str]
    ) -> None:
        """Grant one consent per accepted template of ``results``, in one transaction."""

        async def work(tx: Tx) -> None:
            for template, answer in results.items():
                kind = self.kind_for(template, known_kinds)
                if answer == "accept" and kind is not None:
                    await self.grant(tx.session, account_id, kind, template)

        await self.outbox.transaction(work)

    async def grant(self, session: Session, account_id: str, kind: str, template: str) -> int:
        now = datetime.now(UTC)
        doc = await self.balances.find_one_and_update(
            {"_id": f"{account_id}:{kind}"},
            {
                "$inc": {"balance": 1},
                "$set": {"account_id": account_id, "kind": kind, "updated_at": now},
            },
            upsert=True,
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        await self._note(session, account_id, kind, +1, "granted", template=template)
        return int(doc["balance"]) if doc else 1

    async def spend(self, session: Session, account_id: str, kind: str, message_id: str) -> bool:
        """Take one consent for ``kind``; False when none is left."""
        doc = await self.balances.find_one_and_update(
            {"_id": f"{account_id}:{kind}", "balance": {"$gt": 0}},
            {"$inc": {"balance": -1}, "$set": {"updated_at": datetime.now(UTC)}},
            session=session,
        )
        if doc is None:
            return False
        await self._note(session, account_id, kind, -1, "used", message_id=message_id)
        return True

    async def refused(self, session: Session, account_id: str, kind: str, message_id: str) -> None:
        """WeChat said the user has no subscription left (43101): our balance was wrong."""
        await self.balances.update_one(
            {"_id": f"{account_id}:{kind}"},
            {"$set": {"balance": 0, "updated_at": datetime.now(UTC)}},
            session=session,
        )
        await self._note(session, account_id, kind, 0, "refused_by_wechat", message_id=message_id)

    async def balances_of(self, account_id: str) -> dict[str, int]:
        docs = await self.balances.find({"account_id": account_id}).to_list()
        return {d["kind"]: int(d["balance"]) for d in docs}

    async def history(self, account_id: str, limit: int = 50) -> list[Document]:
        cursor = self.ledger.find({"account_id": account_id}, {"_id": 0}).sort("at", -1)
        return await cursor.limit(limit).to_list()

    async def _note(
        self,
        session: Session,
        account_id: str,
        kind: str,
        delta: int,
        reason: str,
        *,
        template: str | None = None,
        message_id: str | None = None,
    ) -> None:
        await self.ledger.insert_one(
            {
                "_id": new_id(),
                "account_id": account_id,
                "kind": kind,
                "delta": delta,
                "reason": reason,
                "template": template,
                "message_id": message_id,
                "at": datetime.now(UTC),
            },
            session=session,
        )

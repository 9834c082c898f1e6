"""The local sandbox provider: records each delivery in Mongo for staff and tests to read.

It is the default for every channel on the embedded stack. It writes outside the
delivery's transaction, like a real provider would receive the request. It honours the
request's key as an idempotency key (a unique index): a second send under a key that was
sent already returns the first result and delivers nothing; :meth:`lookup` finds a send by
its key. Addresses are kept masked only.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pymongo.errors import DuplicateKeyError

from services.notifications.domain.channels import Channel
from services.notifications.providers.base import (
    NEVER_SENT,
    Lookup,
    ProviderError,
    SendRequest,
    SendResult,
    SendStatus,
)
from services.notifications.store import SANDBOX
from shared.ids import new_id
from shared.mongo import Database, Document
from shared.privacy import mask_phone


def mask_address(channel: Channel, address: str) -> str:
    if channel == Channel.WECHAT:
        return f"{address[:4]}****{address[-4:]}" if len(address) > 8 else "****"
    return mask_phone(address)


class SandboxProvider:
    name = "sandbox"

    def __init__(
        self, db: Database, channel: Channel, *, auto_deliver: bool = True, failing: bool = False
    ) -> None:
        self.collection = db[SANDBOX]
        self.channel = channel
        self.auto_deliver = auto_deliver
        self.failing = failing  # fault injection: every send fails, retryably
        self.fail_next = 0  # fault injection: the next N sends fail, retryably

    async def send(self, request: SendRequest) -> SendResult:
        if self.failing or self.fail_next > 0:
            self.fail_next = max(0, self.fail_next - 1)
            raise ProviderError(
                self.name, "sandbox_unavailable", "injected failure", retryable=True
            )
        provider_message_id = new_id()
        try:
            await self.collection.insert_one(
                {
                    "_id": provider_message_id,
                    "send_key": request.key,
                    "message_id": request.message_id,
                    "attempt_id": request.attempt_id,
                    "channel": request.channel.value,
                    "kind": request.kind,
                    "patient_id": request.patient_id,
                    "address_masked": mask_address(request.channel, request.address),
                    "language": request.language,
                    "title": request.rendered.title,
                    "body": request.rendered.body,
                    "fields": request.rendered.fields,
                    "page": request.rendered.page,
                    "provider_template": request.provider_template,
                    "at": datetime.now(UTC),
                }
            )
        except DuplicateKeyError:  # sent under this key already: the first result, no delivery
            first = await self.collection.find_one({"send_key": request.key})
            if first is None:  # cannot be: the key was just found taken
                raise
            return self._result(first)
        return SendResult(self._status(), self.name, provider_message_id)

    async def lookup(self, request: SendRequest, since: datetime) -> Lookup:
        found = await self.collection.find_one({"send_key": request.key})
        return Lookup(known=True, result=self._result(found)) if found else NEVER_SENT

    def _result(self, doc: Document) -> SendResult:
        return SendResult(self._status(), self.name, str(doc["_id"]))

    def _status(self) -> SendStatus:
        return SendStatus.DELIVERED if self.auto_deliver else SendStatus.SENT

    async def aclose(self) -> None:
        return None

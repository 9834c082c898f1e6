"""The local sandbox provider: records each delivery in Mongo for staff and tests to read.

It is the default for every channel on the embedded stack. It writes outside the
delivery's transaction, like a real provider would receive the request, so a send that
happened twice would show twice. Addresses are kept masked only.
"""

from __future__ import annotations

from datetime import UTC, datetime

from services.notifications.domain.channels import Channel
from services.notifications.providers.base import (
    ProviderError,
    SendRequest,
    SendResult,
    SendStatus,
)
from services.notifications.store import SANDBOX
from shared.ids import new_id
from shared.mongo import Database
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
        await self.collection.insert_one(
            {
                "_id": provider_message_id,
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
        status = SendStatus.DELIVERED if self.auto_deliver else SendStatus.SENT
        return SendResult(status, self.name, provider_message_id)

    async def aclose(self) -> None:
        return None

"""What every delivery provider adapter offers: send one message, look up an earlier send,
read its receipts.

A provider adapter turns a rendered message into the provider's HTTP call and maps the
provider's answer onto :class:`SendResult` or :class:`ProviderError`. Adapters hold no
state that matters across restarts (an access token cache at most); whatever must survive
is recorded by the delivery code in Mongo.

Every send carries a key (:attr:`SendRequest.key`: the message id) that the provider
keeps with it, where it has a field for one. After a crash between a send and its record,
the delivery asks the provider about that key (:meth:`Provider.lookup`) before sending
again. What each provider offers:

* sandbox (ours): the key is an idempotency key, and it can be looked up;
* Aliyun SMS: the key travels as ``OutId``; ``SendSms`` is not idempotent, but
  ``QuerySendDetails`` (by phone and day) lists each send with its ``OutId`` and status;
* WeChat subscription messages: no caller reference, no idempotency, no query by message
  (only the ``subscribe_msg_sent_event`` push, by WeChat's own ``MsgID``): unknowable;
* voice: only the sandbox serves it today.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

import httpx

from services.notifications.domain.channels import Channel


class SendStatus(StrEnum):
    SENT = "sent"  # accepted by the provider; a receipt tells the outcome later
    DELIVERED = "delivered"  # the provider confirmed delivery at once


@dataclass(frozen=True)
class Rendered:
    """One message rendered for one channel (see ``templates``)."""

    title: str = ""  # inbox title
    body: str = ""  # inbox / SMS / voice text
    fields: dict[str, str] = field(default_factory=dict)  # WeChat data fields; SMS params
    page: str | None = None  # WeChat mini-program page to open


@dataclass(frozen=True)
class SendRequest:
    """Everything an adapter needs for one delivery attempt.

    ``address`` is the phone number (SMS, voice) or the WeChat openid, in clear: adapters
    never log it. ``message_id`` is stable across attempts; ``attempt_id`` is unique per
    attempt. :attr:`key` is what the provider keeps with the send (Aliyun ``OutId``, the
    sandbox's idempotency key): the message id, or ``idempotency_key`` when given (a
    redelivery that must really send again gets a key of its own).
    ``provider_template`` is the provider's own template code / id for this message kind.
    """

    message_id: str
    attempt_id: str
    channel: Channel
    address: str
    kind: str
    language: str
    rendered: Rendered
    provider_template: str | None = None
    patient_id: str | None = None
    idempotency_key: str = ""

    @property
    def key(self) -> str:
        return self.idempotency_key or self.message_id


@dataclass(frozen=True)
class SendResult:
    status: SendStatus
    provider: str
    provider_message_id: str | None = None


@dataclass(frozen=True)
class Receipt:
    """A provider's report on one message it accepted earlier."""

    provider: str
    provider_message_id: str
    delivered: bool
    error_code: str | None = None
    error_message: str | None = None
    reported_at: datetime | None = None


class ProviderError(Exception):
    """A send that did not go through.

    ``retryable`` errors (timeouts, throttling, 5xx, an expired access token) are tried
    again later on the same channel; the others (refused consent, invalid number, blocked
    user) fall back to the next channel at once. ``in_doubt``: the request may have
    reached the provider and been sent (its answer was lost: a read timeout, a dropped
    connection), so the delivery looks it up before sending again.
    """

    def __init__(
        self, provider: str, code: str, message: str, *, retryable: bool, in_doubt: bool = False
    ) -> None:
        super().__init__(f"{provider} {code}: {message}")
        self.provider = provider
        self.code = code
        self.message = message
        self.retryable = retryable
        self.in_doubt = in_doubt


def may_have_arrived(exc: Exception) -> bool:
    """Whether an httpx transport failure may have come after the request reached the
    provider: anything but a failure to connect."""
    return not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)


def template_not_configured(provider: str, kind: str) -> ProviderError:
    """The provider needs its own template code / id for this kind, and settings have none."""
    return ProviderError(
        provider,
        "template_not_configured",
        f"no {provider} template configured for kind {kind!r}",
        retryable=False,
    )


@dataclass(frozen=True)
class Lookup:
    """What a provider says about an earlier send under a request's key.

    ``known`` False: the provider offers no way to tell (:data:`UNKNOWABLE`). Else
    ``result`` is what became of it: a :class:`SendResult` (it went out), a
    :class:`ProviderError` (the provider took it and reports it failed), or ``None``
    (:data:`NEVER_SENT`: no send under that key, so sending now is safe).
    """

    known: bool
    result: SendResult | ProviderError | None = None


UNKNOWABLE = Lookup(known=False)
NEVER_SENT = Lookup(known=True)


class Provider(Protocol):
    """A delivery adapter for one channel."""

    name: str
    channel: Channel

    async def send(self, request: SendRequest) -> SendResult: ...

    async def lookup(self, request: SendRequest, since: datetime) -> Lookup:
        """What became of a send under ``request.key`` made at ``since`` or later; raises
        a retryable :class:`ProviderError` when the provider cannot be asked now."""
        ...

    async def aclose(self) -> None: ...

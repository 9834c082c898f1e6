"""One provider call of the delivery job, outside any transaction, and safe to repeat.

Before the call, the job records the attempt as begun (message ``sending``, with the
attempt id and the provider key) in a transaction of its own; after it, it records what
happened in another. A run that dies in between leaves the message ``sending``; the next
run (once the job's lease has expired) does not send blindly: it asks the provider about
the key first (:meth:`~services.notifications.providers.base.Provider.lookup`) and

* the provider has it: that answer is recorded, nothing is sent;
* the provider has no send under the key: it is sent now, under the same key;
* the provider cannot tell (WeChat): the message ends ``unknown``, not sent twice;
* the provider cannot be asked now: the message stays ``sending`` and is asked again later.

A send whose answer was lost on the way (a read timeout, a dropped connection: the provider
may have sent it) is treated the same way: the message stays ``sending``, and the next run
asks before sending again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from services.notifications.messages import Status
from services.notifications.providers.base import (
    Provider,
    ProviderError,
    SendRequest,
    SendResult,
)
from shared.mongo import Document

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Pending:
    """An attempt recorded as begun: what to send, and what the record needs afterwards."""

    msg: Document  # the message as it was when the attempt began
    request: SendRequest
    attempt_no: int
    since: datetime  # when the attempt began
    template_version: int
    consent_spent: bool
    recovering: bool  # an earlier run began this attempt and died before its record


@dataclass(frozen=True)
class Unresolved:
    """No provider answer to record: ``UNKNOWN`` (cannot be known), ``SENDING`` (ask again
    later, ``error`` says why not now), ``EXPIRED`` (never sent, and too late now)."""

    status: Status
    reason: str
    error: ProviderError | None = None


Outcome = SendResult | ProviderError | Unresolved


async def call_provider(provider: Provider, pending: Pending) -> Outcome:
    """Send, or (for an attempt an earlier run began) look up first and send only if the
    provider has no send under the key."""
    request = pending.request
    if pending.recovering:
        try:
            found = await provider.lookup(request, pending.since)
        except ProviderError as exc:
            return Unresolved(Status.SENDING, "lookup_failed", exc)
        except Exception as exc:  # an adapter bug: ask again later
            return Unresolved(Status.SENDING, "lookup_failed", _adapter_error(provider, exc))
        log.info(
            "notification.attempt_looked_up",
            attempt_id=request.attempt_id,
            known=found.known,
            found=found.result is not None,
        )
        if not found.known:
            return Unresolved(Status.UNKNOWN, "outcome_unknown")
        if found.result is not None:
            return found.result
        expires_at = pending.msg.get("expires_at")
        if expires_at is not None and datetime.now(UTC) >= expires_at:
            return Unresolved(Status.EXPIRED, "past_its_time")
    try:
        return await provider.send(request)
    except ProviderError as exc:
        if exc.in_doubt:  # it may have gone out: look it up before sending again
            return Unresolved(Status.SENDING, "answer_lost", exc)
        return exc
    except Exception as exc:  # an adapter bug must not lose the message: retry it
        return _adapter_error(provider, exc)


def _adapter_error(provider: Provider, exc: Exception) -> ProviderError:
    return ProviderError(
        provider.name, "adapter_error", f"{type(exc).__name__}: {exc}", retryable=True
    )

"""The console's live changes: ``GET /v1/console/changes?org_id=`` (server-sent events).

The managers' dashboard refetches its figures when something of its organization happened.
One Kafka consumer per gateway process (its own group id, reading from the latest offsets,
committing nothing) reads the topics of appointments, referrals and followup and fans each
event out to the in-memory subscribers of the organizations it concerns. A subscriber
gets ``event: changed`` ``data: {"domain": ..., "org_id": ...}``, at most one per domain
per ``coalesce_seconds`` (a burst becomes one message), and a comment heartbeat while idle.
Only the domain and the organization leave the gateway: nothing of the event itself.

Where an event names its organization (``data``), per event family:

* appointments, followup, beds, transports: ``org_id``;
* referrals: ``sending_org_id`` and ``receiving_org_id`` (both organizations see it), and
  ``rejected_org_id`` / ``escalated_org_id`` / ``author_org_id``; a booking ask's
  ``booking_request.org_id``; a transport's ``from_org_id`` / ``to_org_id``.

Every top-level field named ``org_id`` or ending in ``_org_id`` (and those one object
deep) counts, so a new event type of these families is covered without a change here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Iterable
from typing import Annotated, Any

import structlog
from aiokafka import AIOKafkaConsumer
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from services.gateway.routes.deps import Caller
from services.gateway.settings import GatewaySettings
from shared.kafka import ensure_topics, topic_name
from shared.principal import Principal
from shared.problems import Forbidden, Unprocessable, problem_responses_doc
from shared.scoping import may_see_org, other_org, sees_every_org

log = structlog.get_logger(__name__)

DOMAINS = ("appointments", "referrals", "followup")
UNASSIGNED_SECONDS = 15.0  # a consumer without partitions this long starts again


def orgs_of(data: Any) -> set[str]:
    """The organizations an event's ``data`` names (see the module's docstring)."""
    found: set[str] = set()
    if not isinstance(data, dict):
        return found
    for key, value in data.items():
        if isinstance(value, str) and value and (key == "org_id" or key.endswith("_org_id")):
            found.add(value)
        elif isinstance(value, dict):
            found |= {
                v
                for k, v in value.items()
                if isinstance(v, str) and v and (k == "org_id" or k.endswith("_org_id"))
            }
    return found


class Subscriber:
    """One open stream: the domains changed since its last message (at most three)."""

    def __init__(self, org_id: str) -> None:
        self.org_id = org_id
        self.pending: set[str] = set()
        self.wake = asyncio.Event()
        self.closed = False

    def notify(self, domain: str) -> None:
        self.pending.add(domain)
        self.wake.set()

    def close(self) -> None:
        self.closed = True
        self.wake.set()


class ConsoleChanges:
    """The process's consumer and its subscribers, by organization."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.topics = {topic_name(settings, d): d for d in DOMAINS}
        self.group_id = f"{settings.kafka_group_prefix}gateway.console.{uuid.uuid4().hex[:12]}"
        self.subscribers: dict[str, set[Subscriber]] = {}
        self.ready = asyncio.Event()  # assigned and positioned at the end of each partition
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    # --- subscribers -------------------------------------------------------------------

    def subscribe(self, org_id: str) -> Subscriber:
        subscriber = Subscriber(org_id)
        self.subscribers.setdefault(org_id, set()).add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        found = self.subscribers.get(subscriber.org_id)
        if found is not None:
            found.discard(subscriber)
            if not found:
                del self.subscribers[subscriber.org_id]

    def publish(self, domain: str, org_ids: Iterable[str]) -> None:
        for org_id in org_ids:
            for subscriber in self.subscribers.get(org_id, ()):
                subscriber.notify(domain)

    async def events(self, org_id: str) -> AsyncIterator[str]:
        """The stream's text: ``ready`` once subscribed (so a client, or the API fuzz run,
        knows the stream is live without waiting for a change), then ``changed`` events
        (coalesced per domain) and heartbeats; leaving unsubscribes."""
        subscriber = self.subscribe(org_id)
        loop = asyncio.get_running_loop()
        coalesce = self.settings.console_changes_coalesce_seconds
        heartbeat = self.settings.console_changes_heartbeat_seconds
        sent: dict[str, float] = {}
        last_write = loop.time()
        try:
            yield "retry: 3000\nevent: ready\ndata: {}\n\n"
            while not subscriber.closed:
                now = loop.time()
                due = [sent.get(d, now - coalesce) + coalesce for d in subscriber.pending]
                wait = min([last_write + heartbeat, *due]) - now
                if wait > 0:
                    subscriber.wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(subscriber.wake.wait(), wait)
                if subscriber.closed:
                    return
                now = loop.time()
                for domain in sorted(subscriber.pending):
                    if now - sent.get(domain, now - coalesce) >= coalesce:
                        subscriber.pending.discard(domain)
                        sent[domain] = last_write = now
                        data = json.dumps({"domain": domain, "org_id": subscriber.org_id})
                        yield f"event: changed\ndata: {data}\n\n"
                if now - last_write >= heartbeat:
                    last_write = now
                    yield ": heartbeat\n\n"
        finally:
            self.unsubscribe(subscriber)

    # --- the consumer --------------------------------------------------------------------

    def start(self) -> None:
        if self.settings.console_changes_enabled and self._task is None:
            self._task = asyncio.create_task(self._run(), name="console-changes")

    async def aclose(self) -> None:
        self._stopping.set()
        for subscribers in list(self.subscribers.values()):
            for subscriber in list(subscribers):
                subscriber.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        backoff = 0.5
        while not self._stopping.is_set():
            consumer: AIOKafkaConsumer | None = None
            try:
                await ensure_topics(
                    self.settings.kafka_bootstrap,
                    self.topics,
                    partitions=self.settings.kafka_partitions,
                    replication_factor=self.settings.kafka_replication_factor,
                )
                consumer = AIOKafkaConsumer(
                    *self.topics,
                    bootstrap_servers=self.settings.kafka_bootstrap,
                    group_id=self.group_id,
                    client_id="careloop-gateway-console",
                    enable_auto_commit=False,
                    auto_offset_reset="latest",
                    metadata_max_age_ms=5000,
                    session_timeout_ms=self.settings.kafka_session_timeout_ms,
                    heartbeat_interval_ms=self.settings.kafka_heartbeat_interval_ms,
                )
                await asyncio.wait_for(consumer.start(), 20)
                await self._consume(consumer)
                backoff = 0.5
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "console_changes.restart", error=str(exc), error_type=type(exc).__name__
                )
                self.ready.clear()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            finally:
                if consumer is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(consumer.stop())

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        loop = asyncio.get_running_loop()
        unassigned_since = loop.time()
        while not self._stopping.is_set():
            batches = await consumer.getmany(timeout_ms=500, max_records=500)
            if not consumer.assignment():
                if loop.time() - unassigned_since > UNASSIGNED_SECONDS:
                    # the broker may have lost the topics (memory storage): start again
                    raise RuntimeError("no partition assigned: recreating the topics")
                continue
            unassigned_since = loop.time()
            if not self.ready.is_set():
                for tp in consumer.assignment():
                    await consumer.position(tp)  # "latest" resolved: later events are seen
                self.ready.set()
                log.info("console_changes.ready", partitions=len(consumer.assignment()))
            for records in batches.values():
                for record in records:
                    self._handle(record.topic, record.value)

    def _handle(self, topic: str, value: bytes | None) -> None:
        domain = self.topics.get(topic)
        if domain is None or not value:
            return
        try:
            event = json.loads(value)
        except ValueError:
            return
        if isinstance(event, dict):
            self.publish(domain, orgs_of(event.get("data")))


# --- the route ---------------------------------------------------------------------------

router = APIRouter(prefix="/v1/console", tags=["console"])
OrgQuery = Annotated[
    str | None,
    Query(max_length=64, description="the organization; required of alliance admins"),
]


def changes_of(request: Request) -> ConsoleChanges:
    changes: ConsoleChanges = request.app.state.console_changes
    return changes


def watched_org(principal: Principal, org_id: str | None) -> str:
    """Staff only (403 ``forbidden_role``); their own organization by default; another
    organization they may not see: 403 ``forbidden_org``."""
    if not principal.is_staff:
        raise Forbidden(
            "forbidden_role", "The console's changes are for staff.", detail_zh="仅限工作人员"
        )
    org = org_id or principal.org_id
    if not org:
        if sees_every_org(principal):
            raise Unprocessable(
                "org_id_required", "name the organization: org_id", detail_zh="请指定机构"
            )
        raise other_org()
    if not may_see_org(principal, org):
        raise other_org()
    return org


@router.get(
    "/changes",
    summary="What changed in an organization, live (server-sent events)",
    description=(
        "`text/event-stream`: `event: ready` at once, then `event: changed` with "
        '`data: {"domain": "appointments" | '
        '"referrals" | "followup", "org_id": ...}` whenever an event of that organization '
        "is published (at most one per domain per second), and comment heartbeats while "
        "idle. Staff; alliance admins name the organization."
    ),
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **problem_responses_doc(403, 422)},
)
async def changes(
    request: Request, principal: Caller, org_id: OrgQuery = None
) -> StreamingResponse:
    org = watched_org(principal, org_id)
    log.info("console_changes.watched", org_id=org, actor_id=principal.subject)
    return StreamingResponse(
        changes_of(request).events(org),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )

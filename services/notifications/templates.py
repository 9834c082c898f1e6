"""Versioned templates: the message kinds' built-in version 0, and versions staff publish.

A stored version may override some languages and channels of a kind; the rest come from
the built-in template. Publishing renders the new version against the kind's sample first,
so a template that cannot render is refused with a problem, not discovered at send time.
If a stored version still fails at send time (an event without a field it uses), the
message goes out with the built-in template and the failure is logged and counted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from prometheus_client import Counter
from pymongo import DESCENDING

from services.notifications.domain.channels import Channel
from services.notifications.message_kinds import (
    LANGUAGES,
    ChannelTemplate,
    MessageKind,
    MessageKinds,
)
from services.notifications.providers.base import Rendered
from services.notifications.rendering import (
    OutputTooLarge,
    RenderError,
    TemplateTooSlow,
    render,
)
from services.notifications.store import TEMPLATES
from shared.mongo import Database, Document
from shared.outbox import Outbox, Tx
from shared.problems import NotFound, Unprocessable

log = structlog.get_logger(__name__)

Overrides = dict[str, dict[Channel, ChannelTemplate]]
# renders staff's templates away from the event loop (the preview worker), bounded
TrialRender = Callable[[ChannelTemplate, Mapping[str, Any]], Awaitable[Rendered]]


def unknown_kind(kind: str) -> NotFound:
    return NotFound("template_not_found", f"no message kind {kind!r}", detail_zh="没有该消息类型")


def render_problem(
    exc: RenderError, where: str = "", extra: Mapping[str, Any] | None = None
) -> Unprocessable:
    """The 422 problem for a template that failed: too slow, too large or broken."""
    prefix = f"{where}: " if where else ""
    if isinstance(exc, TemplateTooSlow):
        code, detail, zh = "template_too_slow", f"{prefix}{exc}", "模板渲染超时"
    elif isinstance(exc, OutputTooLarge):
        code, detail, zh = "template_output_too_large", f"{prefix}{exc}", "模板输出过大"
    else:
        code, detail = "template_render_error", f"{prefix}the template does not render: {exc}"
        zh = "模板渲染失败"
    return Unprocessable(code, detail, detail_zh=zh, extra=extra)


async def _render_here(template: ChannelTemplate, context: Mapping[str, Any]) -> Rendered:
    return render(template, context)


@dataclass(frozen=True)
class Resolved:
    rendered: Rendered
    version: int


class TemplateStore:
    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        message_kinds: MessageKinds,
        failures: Counter,
        trial: TrialRender = _render_here,
    ) -> None:
        self.collection = db[TEMPLATES]
        self.outbox = outbox
        self.message_kinds = message_kinds
        self.failures = failures
        self.trial = trial  # publishing renders each new template with the sample first

    def kind(self, name: str) -> MessageKind:
        kind = self.message_kinds.get(name)
        if kind is None:
            raise unknown_kind(name)
        return kind

    async def active_version(self, kind: str) -> tuple[int, Overrides]:
        doc = await self.collection.find_one({"kind": kind, "active": True})
        if doc is None:
            return 0, {}
        return int(doc["version"]), _overrides(doc["templates"])

    async def render(
        self, kind: MessageKind, language: str, channel: Channel, context: Mapping[str, Any]
    ) -> Resolved:
        """Render with the active version; fall back to the built-in one if that fails."""
        version, overrides = await self.active_version(kind.kind)
        template = overrides.get(language, {}).get(channel)
        if template is not None:
            try:
                return Resolved(render(template, context), version)
            except RenderError as exc:
                self.failures.labels(kind.kind, channel.value).inc()
                log.warning(
                    "template.render_failed_using_builtin",
                    kind=kind.kind,
                    channel=channel.value,
                    version=version,
                    error=str(exc),
                )
        return Resolved(render(kind.builtin(language, channel), context), 0)

    async def versions(self, kind: str) -> list[Document]:
        self.kind(kind)
        cursor = self.collection.find({"kind": kind}, {"_id": 0}).sort("version", DESCENDING)
        return await cursor.to_list()

    async def publish(
        self, kind_name: str, templates: Mapping[str, Mapping[str, Any]], *, by: str, note: str
    ) -> Document:
        kind = self.kind(kind_name)
        overrides = _parse_overrides(kind, templates)
        for language, channels in overrides.items():
            for channel, template in channels.items():
                try:
                    await self.trial(template, sample_context(kind, language))
                except RenderError as exc:
                    where = f"{language}/{channel.value} with the sample"
                    extra = {"language": language, "channel": channel.value}
                    raise render_problem(exc, where, extra) from exc

        async def work(tx: Tx) -> Document:
            last = await self.collection.find_one(
                {"kind": kind_name}, sort=[("version", DESCENDING)], session=tx.session
            )
            version = (int(last["version"]) if last else 0) + 1
            await self.collection.update_many(
                {"kind": kind_name, "active": True}, {"$set": {"active": False}}, session=tx.session
            )
            doc = {
                "_id": f"{kind_name}@{version}",
                "kind": kind_name,
                "version": version,
                "templates": _dump(overrides),
                "active": True,
                "note": note,
                "created_by": by,
                "created_at": datetime.now(UTC),
            }
            await self.collection.insert_one(doc, session=tx.session)
            return doc

        return await self.outbox.transaction(work)

    async def activate(self, kind_name: str, version: int) -> None:
        """Make ``version`` the active one; version 0 goes back to the built-in templates."""
        self.kind(kind_name)

        async def work(tx: Tx) -> None:
            if version and not await self.collection.find_one(
                {"kind": kind_name, "version": version}, session=tx.session
            ):
                raise NotFound("template_version_not_found", f"no version {version} of {kind_name}")
            await self.collection.update_many(
                {"kind": kind_name, "active": True}, {"$set": {"active": False}}, session=tx.session
            )
            if version:
                await self.collection.update_one(
                    {"kind": kind_name, "version": version},
                    {"$set": {"active": True}},
                    session=tx.session,
                )

        await self.outbox.transaction(work)


def sample_context(kind: MessageKind, language: str, tz: str = "Asia/Shanghai") -> dict[str, Any]:
    return {**kind.sample, "language": language, "tz": tz}


def builtin_view(kind: MessageKind) -> dict[str, dict[str, dict[str, Any]]]:
    return {
        language: {channel.value: t.to_mapping() for channel, t in channels.items()}
        for language, channels in kind.templates.items()
    }


def _parse_overrides(kind: MessageKind, raw: Mapping[str, Mapping[str, Any]]) -> Overrides:
    result: Overrides = {}
    for language, channels in raw.items():
        if language not in LANGUAGES:
            raise Unprocessable("template_language_unknown", f"unsupported language {language!r}")
        for name, body in channels.items():
            try:
                channel = Channel(name)
            except ValueError as exc:
                raise Unprocessable("channel_unknown", f"unknown channel {name!r}") from exc
            if channel not in kind.channels():
                raise Unprocessable(
                    "channel_not_used", f"{kind.kind} is not sent on {channel.value}"
                )
            if not isinstance(body, Mapping):
                raise Unprocessable("template_invalid", f"{language}/{name} must be an object")
            try:
                result.setdefault(language, {})[channel] = ChannelTemplate.from_mapping(body)
            except ValueError as exc:
                raise Unprocessable("template_invalid", f"{language}/{name}: {exc}") from exc
    if not result:
        raise Unprocessable("template_empty", "a version must hold at least one template")
    return result


def _overrides(raw: Mapping[str, Mapping[str, Any]]) -> Overrides:
    return {
        language: {Channel(c): ChannelTemplate.from_mapping(t) for c, t in channels.items()}
        for language, channels in raw.items()
    }


def _dump(overrides: Overrides) -> dict[str, dict[str, Any]]:
    return {
        language: {channel.value: t.to_mapping() for channel, t in channels.items()}
        for language, channels in overrides.items()
    }

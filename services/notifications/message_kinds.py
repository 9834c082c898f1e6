"""Message kinds: which event becomes which message, on which channels, in what words.

Every message kind lives in one TOML file under ``message_kinds/`` (see its ``README.md``):
the event type that triggers it, its urgency and whether patients may turn it off, its
push channels in fallback order, and its built-in templates per language and channel.
Adding an event type is adding one file.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.notifications.domain.channels import Channel

MESSAGE_KINDS_DIR = Path(__file__).with_name("message_kinds")
LANGUAGES = ("zh-CN", "en")
PUSH_CHANNELS = (Channel.WECHAT, Channel.SMS, Channel.VOICE)
AUDIENCES = ("patient", "staff")


class MessageKindError(ValueError):
    """A message kind file is malformed: found at start-up and in the unit tests."""


@dataclass(frozen=True)
class ChannelTemplate:
    """The built-in template of one kind for one channel and language (Jinja2 sources)."""

    title: str = ""
    body: str = ""
    fields: Mapping[str, str] = field(default_factory=dict)
    page: str = ""

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ChannelTemplate:
        unknown = set(data) - {"title", "body", "fields", "page"}
        if unknown:
            raise MessageKindError(f"unknown template keys {sorted(unknown)}")
        return cls(
            title=str(data.get("title", "")),
            body=str(data.get("body", "")),
            fields={str(k): str(v) for k, v in dict(data.get("fields", {})).items()},
            page=str(data.get("page", "")),
        )

    def to_mapping(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "body": self.body,
            "fields": dict(self.fields),
            "page": self.page,
        }


@dataclass(frozen=True)
class MessageKind:
    kind: str
    event: str  # CloudEvents type; "" when triggered in code (reminders, login codes)
    when: Mapping[str, Any]
    priority: int
    urgent: bool  # passes quiet hours
    mandatory: bool  # cannot be turned off in preferences
    inbox: bool  # also goes to the in-app inbox
    push: tuple[Channel, ...]  # push channels in fallback order
    expires: str  # a context field holding when the message stops being useful
    to_address: bool  # sent to an explicit address (login codes), not a known patient
    sample: Mapping[str, Any]
    templates: Mapping[str, Mapping[Channel, ChannelTemplate]]  # language -> channel -> template
    audience: str = "patient"  # "staff": a staff member (staff_alerts), never the patient
    staff_field: str = ""  # for staff kinds: the event data field naming the staff member

    @property
    def for_staff(self) -> bool:
        return self.audience == "staff"

    def matches(self, data: Mapping[str, Any]) -> bool:
        return all(data.get(key) == value for key, value in self.when.items())

    def channels(self) -> tuple[Channel, ...]:
        return ((Channel.INBOX,) if self.inbox else ()) + self.push

    def builtin(self, language: str, channel: Channel) -> ChannelTemplate:
        by_channel = self.templates.get(language) or self.templates[LANGUAGES[0]]
        return by_channel[channel]


def _kind_from(path: Path, raw: Mapping[str, Any]) -> MessageKind:
    allowed = {
        "kind",
        "event",
        "when",
        "priority",
        "urgent",
        "mandatory",
        "inbox",
        "push",
        "expires",
        "to_address",
        "sample",
        "templates",
        "audience",
        "staff_field",
    }
    unknown = set(raw) - allowed
    if unknown:
        raise MessageKindError(f"{path.name}: unknown keys {sorted(unknown)}")
    try:
        push = tuple(Channel(c) for c in raw.get("push", []))
    except ValueError as exc:
        raise MessageKindError(f"{path.name}: {exc}") from exc
    if any(c not in PUSH_CHANNELS for c in push) or len(set(push)) != len(push):
        raise MessageKindError(f"{path.name}: push must list distinct channels of {PUSH_CHANNELS}")
    kind = MessageKind(
        kind=str(raw["kind"]),
        event=str(raw.get("event", "")),
        when=dict(raw.get("when", {})),
        priority=int(raw.get("priority", 0)),
        urgent=bool(raw.get("urgent", False)),
        mandatory=bool(raw.get("mandatory", False)),
        inbox=bool(raw.get("inbox", True)),
        push=push,
        expires=str(raw.get("expires", "")),
        to_address=bool(raw.get("to_address", False)),
        sample=dict(raw.get("sample", {})),
        templates=_templates(path, raw.get("templates", {})),
        audience=str(raw.get("audience", "patient")),
        staff_field=str(raw.get("staff_field", "")),
    )
    _check_audience(path, kind)
    for language in LANGUAGES:
        missing = [c for c in kind.channels() if c not in kind.templates.get(language, {})]
        if missing:
            raise MessageKindError(f"{path.name}: no {language} template for {missing}")
    return kind


def _check_audience(path: Path, kind: MessageKind) -> None:
    if kind.audience not in AUDIENCES:
        raise MessageKindError(f"{path.name}: audience must be one of {AUDIENCES}")
    if kind.for_staff:
        if not kind.staff_field:
            raise MessageKindError(f"{path.name}: a staff audience needs staff_field")
        if kind.to_address:
            raise MessageKindError(f"{path.name}: a staff kind cannot be to_address")
    elif kind.staff_field:
        raise MessageKindError(f'{path.name}: staff_field is for audience = "staff" only')


def _templates(path: Path, raw: Mapping[str, Any]) -> dict[str, dict[Channel, ChannelTemplate]]:
    result: dict[str, dict[Channel, ChannelTemplate]] = {}
    for language, channels in raw.items():
        if language not in LANGUAGES:
            raise MessageKindError(f"{path.name}: unsupported language {language!r}")
        try:
            result[language] = {
                Channel(name): ChannelTemplate.from_mapping(body) for name, body in channels.items()
            }
        except (ValueError, MessageKindError) as exc:
            raise MessageKindError(f"{path.name}: {exc}") from exc
    return result


@dataclass(frozen=True)
class MessageKinds:
    kinds: Mapping[str, MessageKind]

    @classmethod
    def load(cls, directory: Path = MESSAGE_KINDS_DIR) -> MessageKinds:
        kinds: dict[str, MessageKind] = {}
        for path in sorted(directory.glob("*.toml")):
            try:
                raw = tomllib.loads(path.read_text(encoding="utf-8"))
            except tomllib.TOMLDecodeError as exc:
                raise MessageKindError(f"{path.name}: {exc}") from exc
            kind = _kind_from(path, raw)
            if kind.kind in kinds:
                raise MessageKindError(f"{path.name}: kind {kind.kind!r} defined twice")
            kinds[kind.kind] = kind
        return cls(kinds)

    def get(self, kind: str) -> MessageKind | None:
        return self.kinds.get(kind)

    def for_event(self, event_type: str, data: Mapping[str, Any]) -> MessageKind | None:
        """The kind an event becomes: the highest-priority kind whose ``when`` holds."""
        candidates = [k for k in self.kinds.values() if k.event and k.event == event_type]
        for kind in sorted(candidates, key=lambda k: -k.priority):
            if kind.matches(data):
                return kind
        return None

    def event_types(self) -> frozenset[str]:
        return frozenset(k.event for k in self.kinds.values() if k.event)

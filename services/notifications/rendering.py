"""Rendering templates in Jinja2's sandbox, with the filters patient messages need.

Templates come from the message kind files (built in) or from staff (stored versions), so
they run in a :class:`~jinja2.sandbox.SandboxedEnvironment` with ``StrictUndefined``: a
template may not reach into Python objects, and a missing variable is an error, not an
empty string.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from services.notifications.message_kinds import ChannelTemplate
from services.notifications.providers.base import Rendered

SESSION_NAMES = {
    "zh-CN": {"morning": "上午", "afternoon": "下午", "night": "夜间"},
    "en": {"morning": "morning", "afternoon": "afternoon", "night": "evening"},
}
WECHAT_THING_MAX = 20  # WeChat limits a "thing" field to 20 characters
MAX_BODY = 1000


class RenderError(ValueError):
    """A template that does not compile or does not render with the given context."""


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _make_environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)

    def local_time(value: Any, tz: str = "Asia/Shanghai") -> str:
        return _as_datetime(value).astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")

    def local_clock(value: Any, tz: str = "Asia/Shanghai") -> str:
        return _as_datetime(value).astimezone(ZoneInfo(tz)).strftime("%H:%M")

    def local_date(value: Any, tz: str = "Asia/Shanghai") -> str:
        if isinstance(value, datetime) or (isinstance(value, str) and "T" in value):
            return _as_datetime(value).astimezone(ZoneInfo(tz)).date().isoformat()
        return value.isoformat() if isinstance(value, date) else str(value)[:10]

    def session_name(value: Any, language: str = "zh-CN") -> str:
        names = SESSION_NAMES.get(language, SESSION_NAMES["zh-CN"])
        return names.get(str(value), str(value))

    env.filters.update(
        local_time=local_time,
        local_clock=local_clock,
        local_date=local_date,
        session_name=session_name,
    )
    return env


_ENV = _make_environment()


@lru_cache(maxsize=2048)
def _compile(source: str) -> Template:
    return _ENV.from_string(source)


def render_text(source: str, context: Mapping[str, Any]) -> str:
    if not source:
        return ""
    try:
        return _compile(source).render(**context).strip()
    except TemplateError as exc:
        raise RenderError(f"{type(exc).__name__}: {exc}") from exc
    except (TypeError, ValueError, KeyError, AttributeError) as exc:  # a filter's bad input
        raise RenderError(f"{type(exc).__name__}: {exc}") from exc


def render(template: ChannelTemplate, context: Mapping[str, Any]) -> Rendered:
    """Render every part of one channel's template; raises :class:`RenderError`."""
    fields = {
        name: _fit_field(name, render_text(source, context))
        for name, source in template.fields.items()
    }
    return Rendered(
        title=render_text(template.title, context)[:100],
        body=render_text(template.body, context)[:MAX_BODY],
        fields=fields,
        page=render_text(template.page, context) or None,
    )


def _fit_field(name: str, value: str) -> str:
    """WeChat rejects over-long ``thing`` values (errcode 47003): shorten them ourselves."""
    if name.startswith("thing") and len(value) > WECHAT_THING_MAX:
        return value[: WECHAT_THING_MAX - 1] + "…"
    return value

"""Templates render in Jinja2's sandbox, strictly, with the hospital's clock."""

from __future__ import annotations

import pytest

from services.notifications.message_kinds import ChannelTemplate
from services.notifications.rendering import RenderError, render, render_text


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ value.__dict__ }}",
    ],
)
def test_the_sandbox_refuses_reaching_into_python(source: str) -> None:
    with pytest.raises(RenderError):
        render_text(source, {"value": object()})


def test_a_missing_variable_is_an_error_not_an_empty_string() -> None:
    with pytest.raises(RenderError, match="undefined"):
        render_text("您好 {{ name }}", {})


def test_a_syntax_error_is_a_render_error() -> None:
    with pytest.raises(RenderError):
        render_text("{% if %}", {})


def test_times_are_shown_in_the_hospital_zone() -> None:
    context = {"at": "2026-11-25T00:30:00+00:00", "tz": "Asia/Shanghai"}
    assert render_text("{{ at | local_time(tz) }}", context) == "2026-11-25 08:30"
    assert render_text("{{ at | local_clock(tz) }}", context) == "08:30"
    late = {"at": "2026-11-25T17:00:00+00:00", "tz": "Asia/Shanghai"}
    assert render_text("{{ at | local_date(tz) }}", late) == "2026-11-26"
    assert render_text("{{ d | local_date }}", {"d": "2026-11-25"}) == "2026-11-25"


def test_session_names_per_language() -> None:
    assert render_text("{{ s | session_name('zh-CN') }}", {"s": "morning"}) == "上午"
    assert render_text("{{ s | session_name('en') }}", {"s": "afternoon"}) == "afternoon"
    assert render_text("{{ s | session_name('en') }}", {"s": "other"}) == "other"


def test_wechat_thing_fields_are_cut_to_twenty_characters() -> None:
    template = ChannelTemplate(fields={"thing1": "{{ text }}", "time2": "{{ text }}"})
    rendered = render(template, {"text": "一" * 30})
    assert rendered.fields["thing1"] == "一" * 19 + "…"
    assert len(rendered.fields["thing1"]) == 20
    assert rendered.fields["time2"] == "一" * 30  # only thing fields have the limit


def test_an_empty_page_is_none() -> None:
    assert render(ChannelTemplate(body="x"), {}).page is None

"""Every request body has a written schema name: no FastAPI-generated ``Body_<route>``.

``Body(embed=True)`` parameters make FastAPI invent a schema such as
``Body_mark_read_v1_notifications_inbox_read_post``; client generators turn that into a
class name nobody can read. Give such a body a pydantic model of its own.
"""

from __future__ import annotations

from tests.unit.openapi_apps import build_apps


def test_no_service_has_a_generated_body_schema() -> None:
    generated = {
        name: sorted(s for s in app.openapi()["components"]["schemas"] if s.startswith("Body_"))
        for name, app in build_apps().items()
    }
    assert generated == {name: [] for name in generated}

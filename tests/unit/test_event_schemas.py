"""Event payload schemas: generated from the models, committed, and enforced."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from shared.events import REGISTRY, Envelope, make_event
from shared.schema_export import SCHEMA_DIR, export, load_event_modules, render, schema_filename
from tests.support.events import ThingHappened

pytestmark = pytest.mark.unit


def test_committed_schemas_match_the_payload_models() -> None:
    load_event_modules()
    service_keys = {k for k in REGISTRY if not k.startswith("careloop.test.")}
    committed = {p.name for p in SCHEMA_DIR.glob("*.json")} if SCHEMA_DIR.exists() else set()
    assert committed == {schema_filename(k) for k in service_keys}, "run `make schemas`"
    for key in service_keys:
        expected = render(REGISTRY[key].model_json_schema(), key)
        assert (SCHEMA_DIR / schema_filename(key)).read_text() == expected, key


def test_a_published_payload_is_checked_against_its_schema(tmp_path: Path) -> None:
    export(tmp_path, prefix="careloop.test.")
    schema = json.loads((tmp_path / "careloop.test.thing_happened.v1.json").read_text())
    event = make_event(ThingHappened(n=3, note="ok"), source="t", subject="p1")
    jsonschema.validate(event.data, schema)
    broken = {**event.data, "n": "three"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_envelope_uses_cloudevents_names_and_round_trips() -> None:
    event = make_event(
        ThingHappened(n=1), source="appointments", subject="patient-9", correlation_id="req-1"
    )
    wire = json.loads(event.to_bytes())
    assert {
        "specversion",
        "id",
        "type",
        "source",
        "subject",
        "time",
        "dataschema",
        "correlationid",
        "causationid",
        "data",
    } <= set(wire)
    assert wire["type"] == "careloop.test.thing_happened"
    assert wire["dataschema"] == "careloop.test.thing_happened/1"
    assert Envelope.from_bytes(event.to_bytes()) == event
    tolerant = Envelope.model_validate({**wire, "newfield": 1, "data": {"n": 1, "extra": True}})
    assert tolerant.payload(ThingHappened).n == 1


def test_registering_two_models_under_one_type_is_refused() -> None:
    from shared.events import EventPayload, event_type

    with pytest.raises(ValueError, match="registered twice"):

        @event_type("test.thing_happened")
        class Other(EventPayload):
            x: int

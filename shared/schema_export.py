"""Generate each event type's JSON Schema from its payload model into ``schemas/events/``.

``make schemas`` runs this; a test fails when the committed files and the models disagree,
and consumers' tests validate published payloads against these files.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from pathlib import Path
from typing import Any

from shared.events import REGISTRY, json_schemas

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_DIR = ROOT / "schemas" / "events"
SERVICES = ("appointments", "referrals", "notifications", "followup")


def load_event_modules() -> None:
    """Import every service's ``events`` module so the registry holds all payloads."""
    for service in SERVICES:
        name = f"services.{service}.events"
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name)


def schema_filename(key: str) -> str:
    """``careloop.appointment.booked/1`` -> ``careloop.appointment.booked.v1.json``."""
    event_type, version = key.rsplit("/", 1)
    return f"{event_type}.v{version}.json"


def render(schema: dict[str, Any], key: str) -> str:
    document = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": key, **schema}
    return json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def export(target: Path = SCHEMA_DIR, *, prefix: str = "careloop.") -> list[Path]:
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for key, schema in json_schemas().items():
        if not key.startswith(prefix):
            continue
        path = target / schema_filename(key)
        path.write_text(render(schema, key))
        written.append(path)
    for stale in set(target.glob("*.json")) - set(written):
        stale.unlink()
    return written


def main() -> None:
    load_event_modules()
    paths = export()
    print(
        f"{len(paths)} event schemas in {SCHEMA_DIR.relative_to(ROOT)} ({len(REGISTRY)} registered)"
    )


if __name__ == "__main__":
    main()

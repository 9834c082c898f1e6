"""The built-in questionnaire definitions: one FHIR Questionnaire JSON file per key.

- ``post-pci-day7``: day 7 after a coronary stent; score = sum of ordinals (0-8).
- ``discharge-general``: a short check after any discharge; no score.
- ``satisfaction-outpatient`` / ``satisfaction-inpatient``: 5-point items (ordinals 1-5);
  score = their mean (1-5), see ``satisfaction_score`` / ``satisfaction_percent``.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from services.followup.domain.questionnaire import QuestionnaireDefinition, parse_definition

BUILT_IN = (
    "post-pci-day7",
    "discharge-general",
    "satisfaction-outpatient",
    "satisfaction-inpatient",
)


@cache
def load_builtin(key: str) -> QuestionnaireDefinition:
    """A built-in definition by its id (one of :data:`BUILT_IN`); ``KeyError`` otherwise."""
    if key not in BUILT_IN:
        raise KeyError(key)
    text = resources.files(__name__).joinpath(f"{key}.json").read_text(encoding="utf-8")
    return parse_definition(json.loads(text))


def load_all() -> dict[str, QuestionnaireDefinition]:
    """Every built-in definition, by id."""
    return {key: load_builtin(key) for key in BUILT_IN}

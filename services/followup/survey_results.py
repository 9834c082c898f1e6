"""Survey results per department, doctor or organization. Pure: no I/O.

Over the surveys *sent* in a period: ``sent`` (all of them), ``completed`` (those answered),
``response_rate`` (completed / sent, 0-1), ``mean_score`` (the mean of the completed
surveys' scores, 1-5) and ``percent`` (the mean as 0-100: ``(mean - 1) * 25``); the
figures of a group with no answer are ``None``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

GroupBy = Literal["department", "doctor", "org"]
GROUP_FIELDS: dict[str, str] = {
    "department": "department_id",
    "doctor": "doctor_id",
    "org": "org_id",
}


def summarize(surveys: Iterable[dict[str, Any]], group_by: GroupBy) -> list[dict[str, Any]]:
    """One row per group (sorted by its key; surveys without one under ``None``, last)."""
    field = GROUP_FIELDS[group_by]
    sent: dict[str | None, int] = {}
    scores: dict[str | None, list[float]] = {}
    for survey in surveys:
        key = survey.get(field)
        sent[key] = sent.get(key, 0) + 1
        scores.setdefault(key, [])
        if survey.get("status") == "completed" and survey.get("score") is not None:
            scores[key].append(float(survey["score"]))
    ordered = sorted(sent, key=lambda k: (k is None, k or ""))
    return [{"group": key, **figures(sent[key], scores[key])} for key in ordered]


def figures(sent: int, scores: list[float]) -> dict[str, Any]:
    mean = round(sum(scores) / len(scores), 2) if scores else None
    return {
        "sent": sent,
        "completed": len(scores),
        "response_rate": round(len(scores) / sent, 4) if sent else None,
        "mean_score": mean,
        "percent": round((mean - 1) * 25, 1) if mean is not None else None,
    }

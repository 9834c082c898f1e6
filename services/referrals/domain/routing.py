"""Routing a referral: hard filters, then a score, with an explanation a coordinator can read.

Hard filters (a candidate failing one is listed with the reason, never chosen):

* a relationship from the referring organization in the referral's direction, and levels
  that fit it (upward: a higher level; downward: lower; lateral: the same);
* a department offering the requested specialty;
* membership of an alliance the referring organization belongs to, and the same region
  (an upward referral may also leave the region for a tertiary, level-3 hospital);
* open for intake, under its daily capacity, and not one that already declined this case.

The score (each signal scaled to 0..1 among the candidates, weights from settings):
free referral-pool numbers in the next days, current load (fewer open cases is better),
past acceptance rate and past median time to accept (faster is better). A preferred
organization that passes the filters wins outright: the referring doctor chose it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.referrals.domain.directory import Direction, Organization, level_fits


@dataclass(frozen=True)
class Weights:
    pool: float
    load: float
    acceptance: float
    response: float


@dataclass(frozen=True)
class OrgFigures:
    """What the router knows of a candidate beyond the directory."""

    free_pool_numbers: int = 0
    open_cases: int = 0
    accepted_today: int = 0
    acceptance_rate: float | None = None  # None: no history yet
    median_minutes_to_accept: float | None = None


@dataclass(frozen=True)
class Candidate:
    org_id: str
    department_id: str | None
    score: float
    signals: dict[str, float]
    figures: dict[str, float | int | None]
    excluded: str | None = None  # why it cannot be chosen; None: eligible

    def to_document(self) -> dict[str, object]:
        return {
            "org_id": self.org_id,
            "department_id": self.department_id,
            "score": round(self.score, 4),
            "signals": {k: round(v, 4) for k, v in self.signals.items()},
            "figures": self.figures,
            "excluded": self.excluded,
        }


@dataclass(frozen=True)
class Ask:
    direction: Direction
    specialty: str
    preferred_org_id: str | None = None
    declined: frozenset[str] = field(default_factory=frozenset)


def exclusion(
    sender: Organization, target: Organization, ask: Ask, figures: OrgFigures
) -> str | None:
    """Why ``target`` cannot take the case (a short code), or ``None``."""
    if target.org_id == sender.org_id:
        return "same_organization"
    if not level_fits(ask.direction, sender.level, target.level):
        return "level_does_not_fit_direction"
    if not sender.shares_alliance(target):
        return "outside_alliance"
    leaves_region = target.region != sender.region
    if leaves_region and not (ask.direction is Direction.UPWARD and target.level == 3):
        return "outside_region"
    if target.department_for(ask.specialty) is None:
        return "no_department_for_specialty"
    if target.org_id in ask.declined:
        return "already_declined"
    if not target.intake.accepting:
        return "not_accepting"
    cap = target.intake.daily_capacity
    if cap is not None and figures.accepted_today >= cap:
        return "daily_capacity_reached"
    return None


def _scaled(values: dict[str, float], *, lower_is_better: bool) -> dict[str, float]:
    """Each value over the best among the candidates: 1 for the best, 0 for the worst."""
    if not values:
        return {}
    low, high = min(values.values()), max(values.values())
    if high == low:
        return dict.fromkeys(values, 1.0)
    span = high - low
    return {
        k: (high - v) / span if lower_is_better else (v - low) / span for k, v in values.items()
    }


def rank(
    sender: Organization,
    targets: list[Organization],
    ask: Ask,
    figures: dict[str, OrgFigures],
    weights: Weights,
) -> list[Candidate]:
    """Every target with its score, eligible ones first (best first), excluded ones after."""
    reasons = {
        t.org_id: exclusion(sender, t, ask, figures.get(t.org_id, OrgFigures())) for t in targets
    }
    eligible = [t for t in targets if reasons[t.org_id] is None]
    fig = {t.org_id: figures.get(t.org_id, OrgFigures()) for t in targets}
    pool = _scaled(
        {t.org_id: float(fig[t.org_id].free_pool_numbers) for t in eligible}, lower_is_better=False
    )
    load = _scaled(
        {t.org_id: float(fig[t.org_id].open_cases) for t in eligible}, lower_is_better=True
    )
    # no history yet: the middle of the scale, neither rewarded nor punished
    acceptance = {t.org_id: fig[t.org_id].acceptance_rate for t in eligible}
    response = _scaled(
        {
            t.org_id: m
            for t in eligible
            if (m := fig[t.org_id].median_minutes_to_accept) is not None
        },
        lower_is_better=True,
    )
    candidates: list[Candidate] = []
    for target in targets:
        f = fig[target.org_id]
        department = target.department_for(ask.specialty)
        figures_doc: dict[str, float | int | None] = {
            "free_pool_numbers": f.free_pool_numbers,
            "open_cases": f.open_cases,
            "accepted_today": f.accepted_today,
            "acceptance_rate": f.acceptance_rate,
            "median_minutes_to_accept": f.median_minutes_to_accept,
        }
        if reasons[target.org_id] is not None:
            candidates.append(
                Candidate(
                    target.org_id,
                    department.department_id if department else None,
                    0.0,
                    {},
                    figures_doc,
                    reasons[target.org_id],
                )
            )
            continue
        rate = acceptance[target.org_id]
        signals = {
            "pool": pool.get(target.org_id, 0.0),
            "load": load.get(target.org_id, 0.0),
            "acceptance": 0.5 if rate is None else rate,
            "response": response.get(target.org_id, 0.5),
        }
        score = (
            weights.pool * signals["pool"]
            + weights.load * signals["load"]
            + weights.acceptance * signals["acceptance"]
            + weights.response * signals["response"]
        )
        if target.org_id == ask.preferred_org_id:
            score += 1000.0  # the referring doctor's choice wins when it is possible
        assert department is not None
        candidates.append(
            Candidate(target.org_id, department.department_id, score, signals, figures_doc)
        )
    return sorted(candidates, key=lambda c: (c.excluded is not None, -c.score, c.org_id))


def explain(candidates: list[Candidate], ask: Ask) -> str:
    """Why the first candidate won, in one sentence a coordinator can read."""
    eligible = [c for c in candidates if c.excluded is None]
    if not eligible:
        reasons = ", ".join(f"{c.org_id}: {c.excluded}" for c in candidates) or "none related"
        return f"no organization can take this referral ({reasons})"
    winner = eligible[0]
    f = winner.figures
    rate = f["acceptance_rate"]
    median = f["median_minutes_to_accept"]
    facts = [
        f"{f['free_pool_numbers']} free referral numbers",
        f"{f['open_cases']} open cases",
        "no acceptance history yet" if rate is None else f"{float(rate):.0%} accepted",
    ]
    if median is not None:
        facts.append(f"median {float(median):.0f} min to accept")
    why = (
        "the referring doctor's preferred organization"
        if winner.org_id == ask.preferred_org_id
        else f"the best score {winner.score:.2f} of {len(eligible)} eligible"
    )
    runner_up = (
        f"; next: {eligible[1].org_id} ({eligible[1].score:.2f})" if len(eligible) > 1 else ""
    )
    return f"{winner.org_id} won as {why}: {', '.join(facts)}{runner_up}"

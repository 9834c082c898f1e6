"""Offences count per organization; legacy offences (no organization) count everywhere."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from services.appointments.domain.policy import DEFAULT_POLICY
from services.appointments.records import PatientRecords

NOW = datetime(2026, 12, 1, 8, tzinfo=UTC)


def records() -> PatientRecords:
    return PatientRecords.__new__(PatientRecords)  # the counting needs no database


def no_shows(org_id: str | None, *days: int) -> list[Any]:
    at = [NOW - timedelta(days=d) for d in days]
    return at if org_id is None else [{"at": t, "org_id": org_id} for t in at]


def test_offences_ban_only_at_their_organization() -> None:
    record = {"_id": "p1", "no_shows": no_shows("h1", 20, 10, 1), "late_cancels": []}
    r = records()
    assert r.banned_until(record, DEFAULT_POLICY, NOW, "h1") == NOW - timedelta(days=1) + timedelta(
        days=90
    )
    assert r.banned_until(record, DEFAULT_POLICY, NOW, "h2") is None
    assert r.offences_in_window(record, "no_shows", 90, NOW, "h2") == 0
    assert r.org_ids(record) == {"h1"}
    assert not r.has_untagged(record)


def test_offences_at_two_organizations_do_not_add_up() -> None:
    record = {"_id": "p1", "no_shows": no_shows("h1", 10, 1) + no_shows("h2", 5)}
    r = records()
    assert r.banned_until(record, DEFAULT_POLICY, NOW, "h1") is None  # 2 < 3
    assert r.offences_in_window(record, "no_shows", 90, NOW, "h1") == 2


def test_a_clearance_lifts_one_organizations_ban() -> None:
    record = {
        "_id": "p1",
        "no_shows": no_shows("h1", 20, 10, 1) + no_shows("h2", 20, 10, 1),
        "cleared": {"h2": NOW - timedelta(hours=1)},
    }
    r = records()
    assert r.banned_until(record, DEFAULT_POLICY, NOW, "h1") is not None
    assert r.banned_until(record, DEFAULT_POLICY, NOW, "h2") is None


def test_legacy_offences_count_everywhere_until_cleared() -> None:
    record = {"_id": "p1", "no_shows": no_shows(None, 20, 10, 1)}
    r = records()
    assert r.has_untagged(record)
    assert r.org_ids(record) == set()
    for org in ("h1", "h2"):
        assert r.banned_until(record, DEFAULT_POLICY, NOW, org) is not None
    record["cleared"] = {"h1": NOW}
    assert r.banned_until(record, DEFAULT_POLICY, NOW, "h1") is None
    assert r.banned_until(record, DEFAULT_POLICY, NOW, "h2") is not None
    record["cleared_at"] = NOW  # the old global clearance
    assert r.banned_until(record, DEFAULT_POLICY, NOW, "h2") is None

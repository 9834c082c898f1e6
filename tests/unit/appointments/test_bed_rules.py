"""Bed arrangement rules: fit (status, gender, isolation, monitoring, borrowing), order,
the estimated wait and the figures' arithmetic."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from services.appointments.domain import bed_rules
from services.appointments.domain.bed_rules import (
    BedFacts,
    BedKind,
    BedPolicy,
    BedStatus,
    Borrowing,
    GenderPolicy,
    NoticeFacts,
    Urgency,
)
from services.appointments.domain.errors import Conflict, Invalid

pytestmark = pytest.mark.unit
T0 = datetime(2026, 11, 20, 8, tzinfo=UTC)
NOTICE = NoticeFacts("n1", "CARD", "male", Urgency.ROUTINE, T0)
BED = BedFacts("b1", BedStatus.FREE, BedKind.STANDARD, "CARD", GenderPolicy.MIXED, False)
NO_BORROWING = BedPolicy()


def test_a_free_mixed_bed_of_the_department_fits() -> None:
    assert bed_rules.misfit(NOTICE, BED, NO_BORROWING) is None
    bed_rules.check_fit(NOTICE, BED, NO_BORROWING)


@pytest.mark.parametrize("status", [s for s in BedStatus if s is not BedStatus.FREE])
def test_only_a_free_bed_fits(status: BedStatus) -> None:
    with pytest.raises(Conflict) as refused:
        bed_rules.check_fit(NOTICE, replace(BED, status=status), NO_BORROWING)
    assert refused.value.code == "bed_not_free"


def test_the_ward_gender_policy_must_admit_the_patient() -> None:
    female_ward = replace(BED, gender_policy=GenderPolicy.FEMALE)
    with pytest.raises(Invalid) as refused:
        bed_rules.check_fit(NOTICE, female_ward, NO_BORROWING)
    assert refused.value.code == "gender_mismatch"
    assert bed_rules.misfit(replace(NOTICE, sex="female"), female_ward, NO_BORROWING) is None
    male_ward = replace(BED, gender_policy=GenderPolicy.MALE)
    assert bed_rules.misfit(NOTICE, male_ward, NO_BORROWING) is None


def test_isolation_and_monitoring_needs() -> None:
    isolated = replace(NOTICE, isolation=True)
    assert bed_rules.misfit(isolated, BED, NO_BORROWING) == "isolation_mismatch"
    assert bed_rules.misfit(isolated, replace(BED, isolation=True), NO_BORROWING) is None
    monitored = replace(NOTICE, monitoring=True)
    assert bed_rules.misfit(monitored, BED, NO_BORROWING) == "monitoring_mismatch"
    for kind in (BedKind.ICU, BedKind.MONITORED):
        assert bed_rules.misfit(monitored, replace(BED, kind=kind), NO_BORROWING) is None


def test_borrowing_needs_the_policy() -> None:
    surgery_bed = replace(BED, department_code="SURG")
    with pytest.raises(Invalid) as refused:
        bed_rules.check_fit(NOTICE, surgery_bed, NO_BORROWING)
    assert refused.value.code == "borrowing_not_allowed"
    policy = BedPolicy(borrowing=[Borrowing(borrower="CARD", lender="SURG")])
    assert bed_rules.misfit(NOTICE, surgery_bed, policy) is None
    assert bed_rules.is_borrowed(NOTICE, surgery_bed)
    # one direction only
    assert not bed_rules.may_borrow(policy, "SURG", "CARD")
    anyone = BedPolicy(borrowing=[Borrowing(borrower="*", lender="SURG")])
    assert bed_rules.may_borrow(anyone, "ORTH", "SURG")


def test_urgency_comes_first_then_the_longest_wait() -> None:
    old_routine = replace(NOTICE, id="a", issued_at=T0 - timedelta(days=5))
    new_urgent = replace(NOTICE, id="b", urgency=Urgency.URGENT, issued_at=T0)
    older_urgent = replace(new_urgent, id="c", issued_at=T0 - timedelta(hours=1))
    emergency = replace(NOTICE, id="d", urgency=Urgency.EMERGENCY, issued_at=T0 + timedelta(1))
    ranked = bed_rules.rank([old_routine, new_urgent, older_urgent, emergency])
    assert [n.id for n in ranked] == ["d", "c", "b", "a"]
    line = [old_routine, new_urgent, older_urgent, emergency]
    assert bed_rules.position_of(old_routine, line) == 4
    assert bed_rules.position_of(emergency, line) == 1


def test_candidates_for_a_bed_are_filtered_and_ranked() -> None:
    female = replace(NOTICE, id="f", sex="female", urgency=Urgency.EMERGENCY)
    isolated = replace(NOTICE, id="i", isolation=True, urgency=Urgency.URGENT)
    male_late = replace(NOTICE, id="m2", issued_at=T0 + timedelta(hours=2))
    male = replace(NOTICE, id="m1")
    male_ward_bed = replace(BED, gender_policy=GenderPolicy.MALE)
    found = bed_rules.candidates_for_bed(
        male_ward_bed, [female, isolated, male_late, male], NO_BORROWING
    )
    assert [n.id for n in found] == ["m1", "m2"]


def test_beds_for_a_notice_put_the_own_department_first() -> None:
    policy = BedPolicy(borrowing=[Borrowing(borrower="CARD", lender="SURG")])
    borrowed = replace(BED, id="a-surg", department_code="SURG")
    own = replace(BED, id="z-card")
    taken = replace(BED, id="b-taken", status=BedStatus.OCCUPIED)
    found = bed_rules.beds_for_notice(NOTICE, [borrowed, own, taken], policy)
    assert [b.id for b in found] == ["z-card", "a-surg"]


def test_the_estimated_wait_is_position_times_the_median_gap() -> None:
    admissions = [T0, T0 + timedelta(hours=10), T0 + timedelta(hours=14), T0 + timedelta(hours=40)]
    # gaps 10, 4, 26 hours: median 10
    assert bed_rules.estimated_wait(3, admissions) == timedelta(hours=30)
    assert bed_rules.estimated_wait(1, admissions[:1]) is None
    assert bed_rules.estimated_wait(0, admissions) is None


def test_figures_arithmetic() -> None:
    assert bed_rules.percentile([], 90) is None
    assert bed_rules.percentile([5.0], 90) == 5.0
    assert bed_rules.percentile([float(v) for v in range(1, 11)], 90) == 9.0
    assert bed_rules.average([1.0, 2.0, 6.0]) == 3.0
    assert bed_rules.occupancy(["occupied", "free", "blocked", "reserved"]) == pytest.approx(2 / 3)
    assert bed_rules.occupancy(["blocked"]) is None
    assert bed_rules.turnover(6, 3) == 2.0
    assert bed_rules.turnover(1, 0) is None


def test_the_policy_refuses_bad_values() -> None:
    with pytest.raises(ValidationError, match="offer_minutes"):
        BedPolicy(offer_minutes=0)
    with pytest.raises(ValidationError, match="borrower"):
        Borrowing(borrower="CARD;drop", lender="SURG")

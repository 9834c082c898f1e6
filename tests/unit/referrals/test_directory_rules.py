"""The alliance directory's rules: levels fit kinds and directions, relationships stay inside
an alliance, intake settings are sane."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from services.referrals.domain.directory import (
    Direction,
    IntakeSettings,
    Organization,
    OrganizationIn,
    OrgKind,
    Relationship,
    Urgency,
    apply,
    check_relationship,
    check_relationships,
    first_broken,
    index_organizations,
    index_relationships,
    level_fits,
    moves,
    relationship_id,
    structural_changes,
)
from shared.domain_errors import Invalid

pytestmark = pytest.mark.unit

KIND_OF_LEVEL = {3: "tertiary", 2: "county_hospital", 1: "township_center"}


def org(
    org_id: str, level: int, *, alliances: tuple[str, ...] = ("yigongti-1",), **more: Any
) -> Organization:
    fields: dict[str, Any] = {
        "org_id": org_id,
        "name": f"机构 {org_id}",
        "level": level,
        "kind": KIND_OF_LEVEL[level],
        "region": "330327",
        "alliance_ids": list(alliances),
        "departments": [
            {"department_id": f"{org_id}.CARD", "name": "心内科", "specialties": ["cardiology"]},
            {
                "department_id": f"{org_id}.REHAB",
                "name": "康复科",
                "specialties": ["rehabilitation"],
            },
        ],
        "contacts": [{"name": "王芳", "role": "coordinator", "office_phone": "0577-64701000"}],
        **more,
    }
    return Organization.model_validate(fields)


@pytest.mark.parametrize(
    ("direction", "from_level", "to_level", "fits"),
    [
        (Direction.UPWARD, 1, 2, True),
        (Direction.UPWARD, 1, 3, True),
        (Direction.UPWARD, 2, 2, False),
        (Direction.UPWARD, 3, 2, False),
        (Direction.DOWNWARD, 3, 1, True),
        (Direction.DOWNWARD, 2, 1, True),
        (Direction.DOWNWARD, 1, 1, False),
        (Direction.DOWNWARD, 1, 2, False),
        (Direction.LATERAL, 2, 2, True),
        (Direction.LATERAL, 1, 2, False),
        (Direction.LATERAL, 3, 2, False),
    ],
)
def test_level_fits_the_direction(
    direction: Direction, from_level: int, to_level: int, fits: bool
) -> None:
    assert level_fits(direction, from_level, to_level) is fits


def test_a_relationship_that_fits_passes() -> None:
    town, county = org("town1", 1), org("county1", 2)
    check_relationship(
        Relationship(from_org_id="town1", to_org_id="county1", direction=Direction.UPWARD),
        town,
        county,
    )
    check_relationship(
        Relationship(from_org_id="county1", to_org_id="town1", direction="downward"), county, town
    )


@pytest.mark.parametrize(
    ("from_org", "to_org", "direction", "code"),
    [
        (org("town1", 1), org("prov1", 3), Direction.DOWNWARD, "relationship_level_mismatch"),
        (org("county1", 2), org("town1", 1), Direction.LATERAL, "relationship_level_mismatch"),
        (org("county1", 2), org("county1", 2), Direction.LATERAL, "relationship_self"),
        (
            org("town1", 1),
            org("prov9", 3, alliances=("other",)),
            Direction.UPWARD,
            "relationship_outside_alliance",
        ),
    ],
)
def test_a_relationship_that_does_not_fit_is_invalid(
    from_org: Organization, to_org: Organization, direction: Direction, code: str
) -> None:
    rel = Relationship(from_org_id=from_org.org_id, to_org_id=to_org.org_id, direction=direction)
    with pytest.raises(Invalid) as raised:
        check_relationship(rel, from_org, to_org)
    assert raised.value.code == code
    assert raised.value.detail_zh


def test_relationship_ids_name_both_ends_and_the_direction() -> None:
    rel = Relationship(from_org_id="town1", to_org_id="county1", direction="upward")
    assert rel.key == relationship_id("town1", "county1", "upward") == "town1:county1:upward"
    assert rel.active


@pytest.mark.parametrize(
    ("kind", "level", "ok"),
    [
        (OrgKind.TERTIARY, 3, True),
        (OrgKind.TERTIARY, 2, False),
        (OrgKind.COUNTY_HOSPITAL, 2, True),
        (OrgKind.COUNTY_HOSPITAL, 3, True),
        (OrgKind.COUNTY_HOSPITAL, 1, False),
        (OrgKind.TOWNSHIP_CENTER, 1, True),
        (OrgKind.TOWNSHIP_CENTER, 2, False),
        (OrgKind.COMMUNITY_CENTER, 1, True),
        (OrgKind.COMMUNITY_CENTER, 3, False),
    ],
)
def test_the_kind_fixes_the_level(kind: OrgKind, level: int, ok: bool) -> None:
    fields = org("x1", 1).model_dump() | {"kind": kind, "level": level}
    if ok:
        assert OrganizationIn.model_validate(fields).level == level
    else:
        with pytest.raises(ValidationError, match="level"):
            OrganizationIn.model_validate(fields)


@pytest.mark.parametrize(
    "change",
    [
        {"alliance_ids": []},
        {"alliance_ids": ["Not An Id"]},
        {"org_id": "Bad Id"},
        {"level": 4},
        {"region": "3303"},
        {"departments": [{"department_id": "d1", "name": "a", "specialties": []}] * 2},
        {"departments": [{"department_id": "d1", "name": "a", "specialties": ["Cardiology"]}]},
        {"contacts": [{"name": "王芳", "role": "nurse"}]},
        {"contacts": [{"name": "王芳", "role": "other", "office_phone": "call me"}]},
    ],
)
def test_an_invalid_organization_is_refused(change: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        OrganizationIn.model_validate(org("x1", 1).model_dump() | change)


def test_departments_are_found_by_specialty_and_id() -> None:
    county = org("county1", 2)
    found = county.department_for("rehabilitation")
    assert found is not None
    assert found.department_id == "county1.REHAB"
    assert county.department_for("oncology") is None
    assert county.department("county1.CARD") is not None
    assert county.department("nowhere") is None
    assert county.specialties == {"cardiology", "rehabilitation"}


def test_alliances_are_shared_by_any_common_id() -> None:
    a = org("a1", 1, alliances=("yigongti-1", "zhuanke-2"))
    assert a.shares_alliance(org("b1", 2, alliances=("zhuanke-2",)))
    assert not a.shares_alliance(org("c1", 2, alliances=("other",)))


def test_intake_defaults_and_rules() -> None:
    intake = IntakeSettings()
    assert intake.accepting
    assert intake.daily_capacity is None
    assert (intake.hours_start, intake.hours_end, intake.timezone) == (
        "08:00",
        "17:30",
        "Asia/Shanghai",
    )
    assert intake.sla_for(Urgency.URGENT, 120) == 120
    custom = IntakeSettings(sla_minutes={Urgency.URGENT: 45})
    assert custom.sla_for(Urgency.URGENT, 120) == 45
    assert custom.sla_for(Urgency.ROUTINE, 1440) == 1440


@pytest.mark.parametrize(
    "fields",
    [
        {"daily_capacity": 0},
        {"hours_start": "8:00"},
        {"hours_start": "24:00"},
        {"hours_start": "17:30", "hours_end": "08:00"},
        {"hours_start": "08:00", "hours_end": "08:00"},
        {"timezone": "Asia/Nowhere"},
        {"sla_minutes": {"urgent": 0}},
        {"sla_minutes": {"routine": 10081}},
        {"sla_minutes": {"whenever": 30}},
    ],
)
def test_invalid_intake_settings_are_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        IntakeSettings.model_validate(fields)


def test_structural_changes_are_level_kind_region_and_alliances() -> None:
    county = org("county1", 2)
    same = OrganizationIn.model_validate(
        county.model_dump()
        | {"name": "新名字", "alliance_ids": list(reversed(county.alliance_ids))}
    )
    assert structural_changes(county, same) == []
    moved = OrganizationIn.model_validate(
        county.model_dump() | {"level": 3, "region": "330300", "alliance_ids": ["other"]}
    )
    assert structural_changes(county, moved) == ["level", "region", "alliance_ids"]


def test_an_upsert_without_intake_keeps_the_coordinators_settings() -> None:
    closed = IntakeSettings(accepting=False)
    county = org("county1", 2, intake=closed.model_dump(), version=4)
    item = OrganizationIn.model_validate(county.model_dump(exclude={"intake", "version"}))
    after = apply(county, item)
    assert after.intake == closed
    assert after.version == 4
    assert apply(None, item).intake == IntakeSettings()
    opened = OrganizationIn.model_validate(item.model_dump() | {"intake": {"accepting": True}})
    assert apply(county, opened).intake.accepting


def test_a_bulk_request_names_the_item_sent_twice() -> None:
    items = [OrganizationIn.model_validate(org(i, 1).model_dump()) for i in ("a1", "b1", "a1")]
    with pytest.raises(Invalid) as raised:
        index_organizations(items)
    assert (raised.value.code, raised.value.extra["index"]) == ("duplicate_organization", 2)
    assert index_organizations(items[:2]) == {"a1": 0, "b1": 1}
    up = Relationship(from_org_id="a1", to_org_id="b1", direction="upward")
    with pytest.raises(Invalid) as raised:
        index_relationships([up, up.model_copy(update={"active": False})])
    assert (raised.value.code, raised.value.extra["index"]) == ("duplicate_relationship", 1)


def test_relationships_in_bulk_name_the_first_bad_item() -> None:
    orgs = {o.org_id: o for o in (org("town1", 1), org("county1", 2))}
    good = Relationship(from_org_id="town1", to_org_id="county1", direction="upward")
    check_relationships([good], orgs)
    ghost = Relationship(from_org_id="town1", to_org_id="ghost", direction="upward")
    with pytest.raises(Invalid) as raised:
        check_relationships([good, ghost], orgs)
    assert raised.value.code == "unknown_organization"
    assert raised.value.extra == {"index": 1, "org_id": "ghost"}
    wrong = Relationship(from_org_id="county1", to_org_id="town1", direction="upward")
    with pytest.raises(Invalid) as raised:
        check_relationships([good, wrong], orgs)
    assert raised.value.code == "relationship_level_mismatch"
    assert raised.value.extra["index"] == 1


def test_a_level_change_is_checked_against_active_relationships() -> None:
    county = org("county1", 2)
    promoted = OrganizationIn.model_validate(county.model_dump() | {"level": 3})
    renamed = OrganizationIn.model_validate(county.model_dump() | {"name": "新名"})
    assert moves(county, promoted)
    assert not moves(county, renamed)
    up = Relationship(from_org_id="county1", to_org_id="prov1", direction="upward")
    orgs = {"county1": apply(county, promoted), "prov1": org("prov1", 3)}
    found = first_broken([up], orgs)
    assert found is not None
    assert found[1].code == "relationship_level_mismatch"
    assert first_broken([up.model_copy(update={"active": False})], orgs) is None
    assert first_broken([up], {"county1": county, "prov1": org("prov1", 3)}) is None

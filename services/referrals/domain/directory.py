"""The alliance's directory (医联体机构目录): organizations, their departments and intake
settings, and the referral relationships between them. Pure models and rules, no I/O.

An organization has a level (一级/二级/三级) that fits its kind; a relationship says that one
organization may refer patients to another in one direction, and only between organizations
of one alliance whose levels fit the direction (upward to a higher level, downward to a
lower one, lateral to the same level).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import time
from enum import StrEnum
from typing import Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, field_validator, model_validator

from shared.domain_errors import Invalid

ORG_ID = r"^[a-z0-9][a-z0-9_-]{0,63}$"  # as appointments' organization ids
ALLIANCE_ID = r"^[a-z0-9][a-z0-9_-]{0,63}$"
DEPARTMENT_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$"  # a HIS code, or appointments' "<org>.<code>"
SPECIALTY = r"^[a-z][a-z0-9_]{0,39}$"  # lower snake: cardiology, general_medicine
REGION = r"^[0-9]{6}$"  # GB/T 2260 division code: 330327 (a county), 330300 (a city)
HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
OFFICE_PHONE = r"^\+?[0-9][0-9 ()-]{2,22}[0-9](( ?(转|ext\.?|x) ?)[0-9]{1,6})?$"
MAX_SLA_MINUTES = 7 * 24 * 60
# fields only an alliance admin or the HIS may set; an organization's admin keeps them as they are
STRUCTURAL_FIELDS = ("level", "kind", "region", "alliance_ids")


class Direction(StrEnum):
    UPWARD = "upward"  # 上转: to a higher-level organization
    DOWNWARD = "downward"  # 下转: back to a lower-level one (rehabilitation, follow-up)
    LATERAL = "lateral"  # 平转: between organizations of one level


class OrgKind(StrEnum):
    TERTIARY = "tertiary"  # 三级医院
    COUNTY_HOSPITAL = "county_hospital"  # 县级医院
    TOWNSHIP_CENTER = "township_center"  # 乡镇卫生院
    COMMUNITY_CENTER = "community_center"  # 社区卫生服务中心


class Urgency(StrEnum):
    ROUTINE = "routine"
    URGENT = "urgent"
    EMERGENCY = "emergency"


LEVELS_OF_KIND: dict[OrgKind, frozenset[int]] = {
    OrgKind.TERTIARY: frozenset({3}),
    OrgKind.COUNTY_HOSPITAL: frozenset({2, 3}),
    OrgKind.TOWNSHIP_CENTER: frozenset({1}),
    OrgKind.COMMUNITY_CENTER: frozenset({1}),
}


class Department(BaseModel):
    department_id: str = Field(pattern=DEPARTMENT_ID)
    name: str = Field(min_length=1, max_length=60)
    specialties: list[str] = Field(default_factory=list, max_length=40)

    @field_validator("specialties")
    @classmethod
    def _specialty_codes(cls, value: list[str]) -> list[str]:
        bad = [s for s in value if not re.match(SPECIALTY, s)]
        if bad:
            raise ValueError("specialties are lower snake codes such as 'cardiology'")
        return list(dict.fromkeys(value))


class Contact(BaseModel):
    """Someone to call about referrals. ``office_phone`` is an office line: shown to staff
    only, and never logged."""

    name: str = Field(min_length=1, max_length=40)
    role: Literal["coordinator", "admin", "doctor", "other"]
    title: str | None = Field(None, max_length=40)
    office_phone: str | None = Field(None, pattern=OFFICE_PHONE)


class IntakeSettings(BaseModel):
    """Whether and when an organization takes referrals in (its coordinators' daily job)."""

    accepting: bool = True
    daily_capacity: int | None = Field(None, ge=1, le=100_000)  # None: no cap
    hours_start: str = Field("08:00", pattern=HHMM)
    hours_end: str = Field("17:30", pattern=HHMM)
    timezone: str = "Asia/Shanghai"
    # per-urgency overrides of the acceptance deadline (the service's defaults otherwise)
    sla_minutes: dict[Urgency, int] = Field(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("sla_minutes")
    @classmethod
    def _sla_range(cls, value: dict[Urgency, int]) -> dict[Urgency, int]:
        for urgency, minutes in value.items():
            if not 1 <= minutes <= MAX_SLA_MINUTES:
                raise ValueError(f"sla_minutes[{urgency}] must be 1..{MAX_SLA_MINUTES}")
        return value

    @model_validator(mode="after")
    def _hours_in_order(self) -> Self:
        if self.opens >= self.closes:
            raise ValueError("hours_start must be before hours_end")
        return self

    @property
    def opens(self) -> time:
        return time.fromisoformat(self.hours_start)

    @property
    def closes(self) -> time:
        return time.fromisoformat(self.hours_end)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def sla_for(self, urgency: Urgency, default: float) -> float:
        """The acceptance deadline in minutes: this organization's override, else ``default``."""
        return self.sla_minutes.get(urgency, default)


class _OrganizationFields(BaseModel):
    org_id: str = Field(pattern=ORG_ID)
    name: str = Field(min_length=1, max_length=80)
    level: int = Field(ge=1, le=3)  # 一级/二级/三级
    kind: OrgKind
    region: str = Field(pattern=REGION)
    alliance_ids: list[str] = Field(min_length=1, max_length=20)
    departments: list[Department] = Field(default_factory=list, max_length=300)
    contacts: list[Contact] = Field(default_factory=list, max_length=50)

    @field_validator("alliance_ids")
    @classmethod
    def _alliance_ids(cls, value: list[str]) -> list[str]:
        if any(not re.match(ALLIANCE_ID, a) for a in value):
            raise ValueError("alliance ids are lower-case codes such as 'yigongti-1'")
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        check_kind_level(self.kind, self.level)
        seen: set[str] = set()
        for department in self.departments:
            if department.department_id in seen:
                raise ValueError(f"department_id {department.department_id!r} is used twice")
            seen.add(department.department_id)
        return self


class OrganizationIn(_OrganizationFields):
    """An organization as the HIS or an alliance admin sends it. ``intake`` left out keeps
    the settings the organization's coordinators made (defaults for a new organization)."""

    intake: IntakeSettings | None = None


class Organization(_OrganizationFields):
    intake: IntakeSettings = Field(default_factory=IntakeSettings)
    version: int = Field(0, ge=0)

    def department_for(self, specialty: str) -> Department | None:
        """The first department that offers ``specialty``."""
        return next((d for d in self.departments if specialty in d.specialties), None)

    def department(self, department_id: str) -> Department | None:
        return next((d for d in self.departments if d.department_id == department_id), None)

    def shares_alliance(self, other: Organization) -> bool:
        return bool(set(self.alliance_ids) & set(other.alliance_ids))

    @property
    def specialties(self) -> set[str]:
        return {s for d in self.departments for s in d.specialties}


class Relationship(BaseModel):
    """``from_org_id`` may refer patients to ``to_org_id`` in ``direction``."""

    from_org_id: str = Field(pattern=ORG_ID)
    to_org_id: str = Field(pattern=ORG_ID)
    direction: Direction
    active: bool = True

    @property
    def key(self) -> str:
        return relationship_id(self.from_org_id, self.to_org_id, self.direction)


def relationship_id(from_org_id: str, to_org_id: str, direction: Direction | str) -> str:
    return f"{from_org_id}:{to_org_id}:{Direction(direction).value}"


def check_kind_level(kind: OrgKind, level: int) -> None:
    """A ValueError (a field error at the edge) when the level does not fit the kind."""
    if level not in LEVELS_OF_KIND[kind]:
        allowed = "/".join(str(x) for x in sorted(LEVELS_OF_KIND[kind]))
        raise ValueError(f"a {kind.value} is of level {allowed}, not {level}")


def level_fits(direction: Direction, from_level: int, to_level: int) -> bool:
    if direction is Direction.UPWARD:
        return to_level > from_level
    if direction is Direction.DOWNWARD:
        return to_level < from_level
    return to_level == from_level


def check_relationship(rel: Relationship, from_org: Organization, to_org: Organization) -> None:
    """422 unless ``rel`` may hold between these two organizations."""
    where = {"from_org_id": rel.from_org_id, "to_org_id": rel.to_org_id}
    if rel.from_org_id == rel.to_org_id:
        raise Invalid(
            "relationship_self",
            "an organization does not refer patients to itself",
            detail_zh="不能向本机构转诊",
            extra=where,
        )
    if not from_org.shares_alliance(to_org):
        raise Invalid(
            "relationship_outside_alliance",
            f"{rel.from_org_id} and {rel.to_org_id} belong to no common alliance",
            detail_zh="两家机构不在同一医联体内",
            extra=where,
        )
    if not level_fits(rel.direction, from_org.level, to_org.level):
        raise Invalid(
            "relationship_level_mismatch",
            f"a {rel.direction.value} referral cannot go from level {from_org.level} "
            f"to level {to_org.level}",
            detail_zh="转诊方向与机构级别不符",
            extra={**where, "direction": rel.direction.value},
        )


def structural_changes(existing: Organization, item: OrganizationIn) -> list[str]:
    """The fields only an alliance admin or the HIS may change that ``item`` changes."""
    changed = []
    for field in STRUCTURAL_FIELDS:
        old, new = getattr(existing, field), getattr(item, field)
        if (set(old) != set(new)) if field == "alliance_ids" else old != new:
            changed.append(field)
    return changed


def apply(existing: Organization | None, item: OrganizationIn) -> Organization:
    """The organization after ``item`` is saved (its version not yet counted up)."""
    intake = item.intake or (existing.intake if existing else IntakeSettings())
    fields = item.model_dump(exclude={"intake"})
    return Organization(**fields, intake=intake, version=existing.version if existing else 0)


def moves(existing: Organization, item: OrganizationIn) -> bool:
    """Does ``item`` change what relationships are checked against (level, alliances)?"""
    return bool({"level", "alliance_ids"} & set(structural_changes(existing, item)))


def first_broken(
    rels: Iterable[Relationship], orgs: Mapping[str, Organization]
) -> tuple[Relationship, Invalid] | None:
    """The first active relationship that no longer holds between ``orgs``, and why."""
    for rel in rels:
        if not rel.active or rel.from_org_id not in orgs or rel.to_org_id not in orgs:
            continue
        try:
            check_relationship(rel, orgs[rel.from_org_id], orgs[rel.to_org_id])
        except Invalid as broken:
            return rel, broken
    return None


def index_organizations(items: list[OrganizationIn]) -> dict[str, int]:
    """Each organization's index in a bulk request; 422 for one sent twice."""
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        if item.org_id in seen:
            raise Invalid(
                "duplicate_organization",
                f"item {index} repeats organization {item.org_id} (item {seen[item.org_id]})",
                detail_zh="同一机构在请求中出现了两次",
                extra={"index": index, "org_id": item.org_id},
            )
        seen[item.org_id] = index
    return seen


def index_relationships(items: list[Relationship]) -> dict[str, int]:
    """Each relationship's index in a bulk request; 422 for one sent twice."""
    seen: dict[str, int] = {}
    for index, rel in enumerate(items):
        if rel.key in seen:
            raise Invalid(
                "duplicate_relationship",
                f"item {index} repeats relationship {rel.key}",
                detail_zh="同一转诊关系在请求中出现了两次",
                extra={"index": index, "relationship": rel.key},
            )
        seen[rel.key] = index
    return seen


def check_relationships(items: list[Relationship], orgs: Mapping[str, Organization]) -> None:
    """422 naming the first item that joins an unknown organization or does not fit."""
    for index, rel in enumerate(items):
        for org_id in (rel.from_org_id, rel.to_org_id):
            if org_id not in orgs:
                raise Invalid(
                    "unknown_organization",
                    f"item {index} names organization {org_id}, which is not in the directory",
                    detail_zh="医联体目录中没有该机构",
                    extra={"index": index, "org_id": org_id},
                )
        try:
            check_relationship(rel, orgs[rel.from_org_id], orgs[rel.to_org_id])
        except Invalid as wrong:
            wrong.extra["index"] = index
            raise

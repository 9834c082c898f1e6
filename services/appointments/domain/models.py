"""The appointment domain's vocabulary."""

from __future__ import annotations

from datetime import time
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, WithJsonSchema


def _wall_clock(value: time) -> time:
    if value.tzinfo is not None:
        raise ValueError("a local wall-clock time takes no UTC offset")
    return value


# A time of day on the hospital's clock (its zone is the org policy's), e.g. "07:00".
# Documented by a pattern: JSON Schema's "time" format is RFC 3339's, which needs an offset.
LocalTime = Annotated[
    time,
    AfterValidator(_wall_clock),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,6})?)?$",
            "description": "local wall-clock time, HH:MM[:SS], no UTC offset",
        }
    ),
]


# An organization id, everywhere one comes in (bodies, paths, query parameters): lower-case
# letters, digits, "_" and "-", starting with a letter or digit. It becomes part of ids
# ("h1.CARD") and of Mongo field paths, so nothing else may pass.
ORG_ID = r"^[a-z0-9][a-z0-9_-]{0,63}$"


class Session(StrEnum):
    MORNING = "morning"
    AFTERNOON = "afternoon"
    NIGHT = "night"


class ClinicType(StrEnum):
    GENERAL = "general"
    EXPERT = "expert"
    SPECIAL = "special_needs"


class ResourceKind(StrEnum):
    DOCTOR = "doctor"
    EXAM = "exam"


class Pool(StrEnum):
    PUBLIC = "public"
    REFERRAL = "referral"
    HOTLINE = "hotline"
    ONSITE = "onsite"


class Channel(StrEnum):
    """Where a booking came from; each channel may draw on its own pool and the public one."""

    APP = "app"
    HOTLINE = "hotline"
    ONSITE = "onsite"
    REFERRAL = "referral"


class SlotStatus(StrEnum):
    OPEN = "open"
    BOOKED = "booked"
    HELD = "held"  # offered to a waitlisted patient
    CANCELLED = "cancelled"  # the session was cancelled (停诊)


class AppointmentStatus(StrEnum):
    BOOKED = "booked"
    CHECKED_IN = "checked_in"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"
    RESCHEDULED = "rescheduled"  # replaced by a new appointment

    @property
    def active(self) -> bool:
        return self in (AppointmentStatus.BOOKED, AppointmentStatus.CHECKED_IN)


CHANNEL_POOLS: dict[Channel, tuple[Pool, ...]] = {
    Channel.APP: (Pool.PUBLIC,),
    Channel.HOTLINE: (Pool.HOTLINE, Pool.PUBLIC),
    Channel.ONSITE: (Pool.ONSITE, Pool.PUBLIC),
    Channel.REFERRAL: (Pool.REFERRAL, Pool.PUBLIC),
}

"""Per-patient notification preferences: language, push channels, quiet hours.

Updates use optimistic concurrency: each stored document has a ``version``; a PUT with
``If-Match`` must name the current one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field, field_validator

from services.notifications.catalog import LANGUAGES
from services.notifications.domain.rules import Preferences, QuietHours
from services.notifications.providers.base import Channel
from services.notifications.store import PREFERENCES
from shared.mongo import Database, Document, Session
from shared.problems import Conflict

CLOCK = r"^([01]\d|2[0-3]):[0-5]\d$"


class QuietHoursIn(BaseModel):
    start: str = Field(pattern=CLOCK, examples=["22:00"])
    end: str = Field(pattern=CLOCK, examples=["07:00"])


class PreferencesIn(BaseModel):
    language: str = Field("zh-CN", description="zh-CN or en")
    channels: dict[Channel, bool] = Field(
        default_factory=dict, description="push channels on/off; the inbox is always on"
    )
    quiet_hours: QuietHoursIn | None = Field(
        None, description="null turns quiet hours off; urgent messages always pass"
    )

    @field_validator("language")
    @classmethod
    def _known_language(cls, value: str) -> str:
        if value not in LANGUAGES:
            raise ValueError(f"language must be one of {', '.join(LANGUAGES)}")
        return value

    @field_validator("channels")
    @classmethod
    def _push_only(cls, value: dict[Channel, bool]) -> dict[Channel, bool]:
        if value.get(Channel.INBOX) is False:
            raise ValueError("the in-app inbox cannot be turned off")
        return value


class PreferencesOut(PreferencesIn):
    patient_id: str
    version: int
    mandatory_note: str = "clinic cancellations and login codes are always sent"


def to_domain(doc: Document | None, default: Preferences) -> Preferences:
    if doc is None:
        return default
    quiet = doc.get("quiet_hours")
    return Preferences(
        language=doc.get("language", default.language),
        disabled=frozenset(Channel(c) for c, on in doc.get("channels", {}).items() if not on),
        quiet_hours=QuietHours.parse(quiet["start"], quiet["end"]) if quiet else None,
    )


class PreferenceStore:
    def __init__(self, db: Database, default: Preferences) -> None:
        self.collection = db[PREFERENCES]
        self.default = default

    async def for_patient(self, patient_id: str, session: Session | None = None) -> Preferences:
        doc = await self.collection.find_one({"_id": patient_id}, session=session)
        return to_domain(doc, self.default)

    async def view(self, patient_id: str) -> PreferencesOut:
        doc = await self.collection.find_one({"_id": patient_id})
        if doc is None:
            quiet = self.default.quiet_hours
            return PreferencesOut(
                patient_id=patient_id,
                version=0,
                language=self.default.language,
                channels={c: True for c in (Channel.WECHAT, Channel.SMS, Channel.VOICE)},
                quiet_hours=QuietHoursIn(
                    start=quiet.start.strftime("%H:%M"), end=quiet.end.strftime("%H:%M")
                )
                if quiet
                else None,
            )
        return _out(doc)

    async def update(
        self, patient_id: str, data: PreferencesIn, *, expected_version: int | None, by: str
    ) -> PreferencesOut:
        current = await self.collection.find_one({"_id": patient_id})
        version = current["version"] if current else 0
        if expected_version is not None and expected_version != version:
            raise Conflict(
                "version_mismatch",
                f"preferences are at version {version}, not {expected_version}",
                detail_zh="偏好设置已被修改，请刷新后重试",
                extra={"current_version": version},
            )
        fields: dict[str, Any] = {
            **data.model_dump(mode="json"),
            "version": version + 1,
            "updated_at": datetime.now(UTC),
            "updated_by": by,
        }
        result = await self.collection.update_one(
            {"_id": patient_id, "version": version} if current else {"_id": patient_id},
            {"$set": fields},
            upsert=current is None,
        )
        if current is not None and result.matched_count == 0:
            raise Conflict("version_mismatch", "preferences changed meanwhile; retry")
        return _out({"_id": patient_id, **fields})


def _out(doc: Document) -> PreferencesOut:
    return PreferencesOut(
        patient_id=doc["_id"],
        version=doc["version"],
        language=doc["language"],
        channels=doc.get("channels", {}),
        quiet_hours=doc.get("quiet_hours"),
    )

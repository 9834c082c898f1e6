"""Per-patient notification preferences: language, push channels, quiet hours.

Updates use optimistic concurrency: each stored document has a ``version``; a PUT or PATCH
with ``If-Match`` must name the current one. PUT replaces the whole document (a channel left
out is on again, quiet hours left out are off); PATCH changes only the fields it names and,
in ``channels``, only the channels it names. Both answer with the full effective preferences
(every push channel with its state). ``quiet_hours: null`` means none; a start equal to its
end is refused (it could mean "never" or "all day").
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field, field_validator, model_validator
from pymongo.errors import DuplicateKeyError

from services.notifications.domain.channels import Channel
from services.notifications.domain.rules import Preferences, QuietHours
from services.notifications.message_kinds import LANGUAGES
from services.notifications.store import PREFERENCES
from shared.mongo import Database, Document, Session
from shared.problems import Conflict

CLOCK = r"^([01]\d|2[0-3]):[0-5]\d$"
PUSH_CHANNELS = (Channel.WECHAT, Channel.SMS, Channel.VOICE)
_PATCH_ATTEMPTS = 3  # a PATCH without If-Match re-reads and merges again after a race


class QuietHoursIn(BaseModel):
    """Quiet hours in hospital time; across midnight when ``end`` is before ``start``."""

    start: str = Field(pattern=CLOCK, examples=["22:00"])
    end: str = Field(pattern=CLOCK, examples=["07:00"])

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHoursIn:
        if self.start == self.end:
            raise ValueError("start and end must differ; send quiet_hours: null for none")
        return self


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


class PreferencesPatch(BaseModel):
    """Only the fields given change; in ``channels`` only the channels given change.
    ``quiet_hours: null`` turns quiet hours off; leaving it out keeps them."""

    language: str | None = Field(None, description="zh-CN or en")
    channels: dict[Channel, bool] = Field(
        default_factory=dict, description="the push channels to turn on or off"
    )
    quiet_hours: QuietHoursIn | None = Field(
        None, description="null turns quiet hours off; left out, they stay as they are"
    )

    @field_validator("language")
    @classmethod
    def _known_language(cls, value: str | None) -> str | None:
        return None if value is None else PreferencesIn._known_language(value)

    @field_validator("channels")
    @classmethod
    def _push_only(cls, value: dict[Channel, bool]) -> dict[Channel, bool]:
        return PreferencesIn._push_only(value)

    def merged(self, current: PreferencesIn) -> PreferencesIn:
        """``current`` with this patch applied."""
        quiet = self.quiet_hours if "quiet_hours" in self.model_fields_set else current.quiet_hours
        return PreferencesIn(
            language=self.language or current.language,
            channels={**current.channels, **self.channels},
            quiet_hours=quiet,
        )


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
                channels=dict.fromkeys(PUSH_CHANNELS, True),
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

    async def patch(
        self, patient_id: str, data: PreferencesPatch, *, expected_version: int | None, by: str
    ) -> PreferencesOut:
        """Merge ``data`` into the current preferences (the defaults when none are stored).

        With ``expected_version`` a concurrent change is a 409; without it, the merge is
        re-done on the newer version (a few times) so that no change is lost."""
        attempts = 1 if expected_version is not None else _PATCH_ATTEMPTS
        for attempt in range(attempts):
            current = await self.view(patient_id)
            if expected_version is not None and expected_version != current.version:
                break  # update() raises version_mismatch with the current version
            try:
                return await self.update(
                    patient_id, data.merged(current), expected_version=current.version, by=by
                )
            except (Conflict, DuplicateKeyError):
                if attempt + 1 == attempts:
                    raise
        return await self.update(
            patient_id, data.merged(current), expected_version=expected_version, by=by
        )


def _out(doc: Document) -> PreferencesOut:
    """The effective preferences: every push channel, on unless turned off."""
    channels = {**dict.fromkeys(PUSH_CHANNELS, True), **doc.get("channels", {})}
    quiet = doc.get("quiet_hours")
    if quiet and quiet.get("start") == quiet.get("end"):
        quiet = None  # stored before equal start and end were refused: they meant none
    return PreferencesOut(
        patient_id=doc["_id"],
        version=doc["version"],
        language=doc["language"],
        channels=channels,
        quiet_hours=quiet,
    )

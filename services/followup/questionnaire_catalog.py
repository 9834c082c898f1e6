"""Questionnaire definitions, versioned: the built-ins of ``questionnaire_library`` and what
admins write. A change is a new version; a response keeps the version it was sent with.

A definition is stored once per version (``_id`` ``{key}|{version}``) with its key (the
FHIR id, else the last segment of its url), its canonical url, status and JSON. Plan steps
name a questionnaire by key or url. The built-ins are inserted at start-up when absent
(idempotent across replicas).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import structlog
from pymongo.errors import DuplicateKeyError

from services.followup.domain.questionnaire import QuestionnaireDefinition, parse_definition
from services.followup.fhir import CARELOOP
from services.followup.questionnaire_library import load_all
from services.followup.store import QUESTIONNAIRES
from shared.audit import AuditLog
from shared.domain_errors import Conflict, Invalid, NotFound
from shared.mongo import Database, Document, Session
from shared.principal import Principal

log = structlog.get_logger(__name__)

BUILT_IN_AUTHOR = "builtin"


def questionnaire_not_found(key: str) -> NotFound:
    return NotFound("questionnaire_not_found", f"no questionnaire {key!r}", detail_zh="问卷不存在")


def key_of(definition: QuestionnaireDefinition) -> str:
    """The short key: the FHIR id, else the last segment of the url."""
    if definition.id:
        return definition.id
    return str(definition.url).rstrip("/").rsplit("/", 1)[-1]


def url_of(definition: QuestionnaireDefinition) -> str:
    return definition.url or f"{CARELOOP}/Questionnaire/{definition.id}"


def definition_view(doc: Document) -> dict[str, Any]:
    keys = ("key", "url", "version", "status", "title", "created_by", "created_at")
    return {**{k: doc.get(k) for k in keys}, "definition": doc["definition"]}


class QuestionnaireCatalog:
    def __init__(self, db: Database, audit: AuditLog) -> None:
        self.db = db
        self.audit = audit
        self._parsed: dict[str, QuestionnaireDefinition] = {}  # by _id: versions never change

    # --- start-up --------------------------------------------------------------------------

    async def seed_builtins(self) -> int:
        """Insert the built-in definitions that are absent; returns how many were added."""
        added = 0
        for definition in load_all().values():
            doc = self._document(definition, definition.version, BUILT_IN_AUTHOR)
            try:
                result = await self.db[QUESTIONNAIRES].update_one(
                    {"_id": doc["_id"]}, {"$setOnInsert": doc}, upsert=True
                )
            except DuplicateKeyError:  # another replica inserted it at the same moment
                continue
            added += result.upserted_id is not None
        log.info("followup.questionnaires.seeded", added=added)
        return added

    # --- reading ---------------------------------------------------------------------------

    def parsed(self, doc: Document) -> QuestionnaireDefinition:
        """The definition of a stored version (cached: a version never changes)."""
        found = self._parsed.get(doc["_id"])
        if found is None:
            found = parse_definition(doc["definition"])
            self._parsed[doc["_id"]] = found
        return found

    async def find(
        self,
        key: str,
        version: int | None = None,
        *,
        active_only: bool = False,
        session: Session | None = None,
    ) -> Document | None:
        """A stored version by key or url: ``version``, else the latest (active) one."""
        query: dict[str, Any] = {"$or": [{"key": key}, {"url": key}]}
        if version is not None:
            query["version"] = version
        if active_only:
            query["status"] = "active"
        return await self.db[QUESTIONNAIRES].find_one(
            query, sort=[("version", -1)], session=session
        )

    async def get(self, key: str, version: int | None = None) -> Document:
        doc = await self.find(key, version)
        if doc is None:
            raise questionnaire_not_found(key)
        return doc

    async def list_latest(self) -> list[Document]:
        """The latest version of every questionnaire, by key."""
        latest: dict[str, Document] = {}
        async for doc in self.db[QUESTIONNAIRES].find({}, sort=[("version", -1)]):
            latest.setdefault(doc["key"], doc)
        return sorted(latest.values(), key=lambda d: d["key"])

    # --- writing (admins) ------------------------------------------------------------------

    async def create(self, principal: Principal, body: Mapping[str, Any]) -> Document:
        """Version 1 of a new questionnaire (409 ``questionnaire_exists`` if the key is taken)."""
        definition = parse_definition(body)
        key = key_of(definition)
        if await self.find(key) is not None:
            raise Conflict(
                "questionnaire_exists",
                f"questionnaire {key!r} exists: revise it instead",
                detail_zh="问卷已存在，请修订",
            )
        return await self._insert(principal, definition, 1, "questionnaire.create")

    async def revise(
        self, principal: Principal, key: str, body: Mapping[str, Any], if_version: int
    ) -> Document:
        """A new version; ``if_version`` must be the latest (else 409 ``version_conflict``)."""
        latest = await self.get(key)
        definition = parse_definition(body)
        if key_of(definition) != latest["key"]:
            raise Invalid(
                "questionnaire_key_mismatch",
                f"the definition's id/url names {key_of(definition)!r}, not {latest['key']!r}",
                detail_zh="问卷标识与修订对象不一致",
            )
        if latest["version"] != if_version:
            raise _version_conflict(f"the questionnaire is at version {latest['version']}")
        return await self._insert(principal, definition, if_version + 1, "questionnaire.revise")

    async def _insert(
        self, principal: Principal, definition: QuestionnaireDefinition, version: int, action: str
    ) -> Document:
        doc = self._document(definition, version, principal.subject)
        try:
            await self.db[QUESTIONNAIRES].insert_one(doc)
        except DuplicateKeyError as exc:  # another admin saved this version first
            raise _version_conflict("the questionnaire changed meanwhile") from exc
        await self.audit.record(
            principal, action, patient_id=None, resource=f"questionnaire:{doc['_id']}"
        )
        log.info("followup.questionnaire.saved", key=doc["key"], version=version)
        return doc

    @staticmethod
    def _document(definition: QuestionnaireDefinition, version: int, author: str) -> Document:
        stored = definition.model_copy(update={"version": version})
        key = key_of(stored)
        return {
            "_id": f"{key}|{version}",
            "key": key,
            "url": url_of(stored),
            "version": version,
            "status": stored.status,
            "title": stored.title,
            "definition": stored.model_dump(mode="json", exclude_none=True),
            "created_by": author,
            "created_at": datetime.now(UTC),
        }


def _version_conflict(detail: str) -> Conflict:
    return Conflict("version_conflict", detail, detail_zh="问卷已被他人修改，请刷新后重试")

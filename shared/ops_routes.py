"""Operator endpoints every service has: dead letters, the outbox backlog, PII re-encryption."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from shared.auth import require_roles
from shared.crypto import FieldCipher
from shared.dead_letters import list_dead_letters, replay_dead_letter
from shared.pii_rotation import EncryptedField, RotationReport, rotate_audited
from shared.principal import Principal, Role
from shared.problems import NotFound

AdminPrincipal = Annotated[Principal, Depends(require_roles(Role.ADMIN))]


def ops_router(service: str, encrypted_fields: list[EncryptedField] | None = None) -> APIRouter:
    router = APIRouter(prefix=f"/v1/{service}/ops", tags=["operations"])

    @router.get("/dead-letters", summary="Dead letters waiting for an operator")
    async def dead_letters(
        request: Request,
        _: AdminPrincipal,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        after: str | None = None,
    ) -> dict[str, Any]:
        runtime = request.app.state.runtime
        items = await list_dead_letters(runtime.db, limit=limit, after_id=after)
        for item in items:
            item["id"] = item.pop("_id")
        next_cursor = items[-1]["id"] if len(items) == limit else None
        return {"items": items, "next": next_cursor}

    @router.post(
        "/dead-letters/{dead_letter_id}/replay",
        status_code=202,
        summary="Publish a dead letter again to its topic",
    )
    async def replay(request: Request, dead_letter_id: str, _: AdminPrincipal) -> dict[str, str]:
        runtime = request.app.state.runtime
        if not await replay_dead_letter(runtime.outbox, dead_letter_id):
            raise NotFound(
                "dead_letter_not_found", f"no dead letter {dead_letter_id} is waiting for replay"
            )
        return {"status": "replaying", "id": dead_letter_id}

    @router.get("/outbox", summary="Outbox backlog")
    async def outbox(request: Request, _: AdminPrincipal) -> dict[str, int]:
        runtime = request.app.state.runtime
        return {"pending": await runtime.outbox.pending_count()}

    @router.post(
        "/pii/rotate",
        summary="Re-encrypt personal data under the active PII key (call until remaining is 0)",
    )
    async def rotate_pii(
        request: Request,
        admin: AdminPrincipal,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    ) -> RotationReport:
        runtime = request.app.state.runtime
        settings = runtime.settings
        if not encrypted_fields:
            return RotationReport(active_key="", fields=[], remaining=0)
        cipher = FieldCipher.from_settings(settings.pii_encryption_keys, settings.pii_hash_key)
        return await rotate_audited(
            runtime.db, cipher, encrypted_fields, audit=runtime.audit, admin=admin, limit=limit
        )

    return router

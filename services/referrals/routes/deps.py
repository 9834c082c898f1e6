"""Dependencies shared by the referrals routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header

from services.referrals.bootstrap import Referrals, get_referrals
from shared.auth import current_principal
from shared.principal import Principal

PREFIX = "/v1/referrals"
Ctx = Annotated[Referrals, Depends(get_referrals)]
Caller = Annotated[Principal, Depends(current_principal)]
IfMatch = Annotated[str | None, Header(alias="If-Match")]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]

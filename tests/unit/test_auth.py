"""JWT verification, algorithm-confusion defences and the FastAPI auth dependencies."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import jwt
import pytest
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from fastapi import Depends, FastAPI

from shared.auth import (
    CurrentPrincipal,
    OptionalPrincipal,
    TokenMinter,
    TokenVerifier,
    ensure_patient_access,
    from_settings,
    generate_ed25519_keypair,
    require_roles,
)
from shared.principal import Principal, Role
from shared.problems import Problem, Unauthorized, install_problem_handlers
from shared.settings import ServiceSettings

pytestmark = pytest.mark.unit

ISSUER = "careloop-gateway"
AUDIENCE = "careloop"
PRIVATE_PEM, PUBLIC_PEM = generate_ed25519_keypair()
MINTER = TokenMinter(PRIVATE_PEM, issuer=ISSUER, audience=AUDIENCE, key_id="k1")
ALL_ALGS = ["EdDSA", "RS256", "ES256"]


def verifier(**kwargs: Any) -> TokenVerifier:
    return TokenVerifier(
        PUBLIC_PEM, issuer=ISSUER, audience=AUDIENCE, algorithms=ALL_ALGS, **kwargs
    )


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_parts(alg: str) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "attacker",
        "roles": ["admin"],
        "jti": "j1",
        "iat": now,
        "exp": now + 600,
    }
    header = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    return f"{header}.{b64(json.dumps(claims).encode())}"


def rejected(token: str, code: str = "token_invalid", v: TokenVerifier | None = None) -> Problem:
    with pytest.raises(Unauthorized) as info:
        (v or verifier()).verify(token)
    assert info.value.code == code
    assert info.value.status == 401
    assert info.value.headers is not None
    assert info.value.headers["WWW-Authenticate"].startswith("Bearer")
    return info.value


def test_round_trip_maps_claims() -> None:
    token = MINTER.mint("acct-1", [Role.PATIENT], org_id="h1", patient_ids=["p1", "p2"])
    principal = verifier().verify(token)
    assert principal.subject == "acct-1"
    assert principal.roles == frozenset({Role.PATIENT})
    assert principal.org_id == "h1"
    assert principal.patient_ids == frozenset({"p1", "p2"})
    assert principal.token_id
    assert verifier().algorithms == ["EdDSA"]  # narrowed to what an Ed25519 key verifies


def test_each_token_has_fresh_jti_and_kid() -> None:
    a, b = MINTER.mint("s", [Role.AGENT]), MINTER.mint("s", [Role.AGENT])
    assert verifier().verify(a).token_id != verifier().verify(b).token_id
    assert json.loads(base64.urlsafe_b64decode(a.split(".")[0] + "=="))["kid"] == "k1"


def test_expired_token() -> None:
    token = MINTER.mint("s", [Role.AGENT], issued_at=int(time.time()) - 3600, ttl_seconds=60)
    rejected(token, "token_expired")


def test_leeway_accepts_just_expired() -> None:
    token = MINTER.mint("s", [Role.AGENT], issued_at=int(time.time()) - 65, ttl_seconds=60)
    assert verifier(leeway_seconds=30).verify(token).subject == "s"


def test_wrong_audience_and_issuer() -> None:
    other_aud = TokenMinter(PRIVATE_PEM, issuer=ISSUER, audience="elsewhere")
    other_iss = TokenMinter(PRIVATE_PEM, issuer="evil", audience=AUDIENCE)
    rejected(other_aud.mint("s", [Role.AGENT]))
    rejected(other_iss.mint("s", [Role.AGENT]))


def test_other_key_and_tampered_signature() -> None:
    other_private, _ = generate_ed25519_keypair()
    rejected(TokenMinter(other_private, issuer=ISSUER, audience=AUDIENCE).mint("s", [Role.ADMIN]))
    token = MINTER.mint("s", [Role.PATIENT])
    head, payload, sig = token.split(".")
    flipped = ("A" if sig[0] != "A" else "B") + sig[1:]
    rejected(f"{head}.{payload}.{flipped}")
    # same signature on an escalated payload
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["roles"] = ["admin"]
    rejected(f"{head}.{b64(json.dumps(claims).encode())}.{sig}")


def test_alg_none_rejected_even_if_configured() -> None:
    v = TokenVerifier(PUBLIC_PEM, issuer=ISSUER, audience=AUDIENCE, algorithms=["none", "EdDSA"])
    assert v.algorithms == ["EdDSA"]
    rejected(unsigned_parts("none") + ".", v=v)


def test_hs256_confusion_with_public_key_rejected() -> None:
    v = TokenVerifier(PUBLIC_PEM, issuer=ISSUER, audience=AUDIENCE, algorithms=["HS256", "EdDSA"])
    assert "HS256" not in v.algorithms
    signing_input = unsigned_parts("HS256")
    mac = hmac.new(PUBLIC_PEM.encode(), signing_input.encode(), hashlib.sha256).digest()
    rejected(f"{signing_input}.{b64(mac)}", v=v)


def test_only_symmetric_algorithms_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="asymmetric"):
        TokenVerifier(PUBLIC_PEM, issuer=ISSUER, audience=AUDIENCE, algorithms=["HS256", "none"])
    with pytest.raises(ValueError, match="does not fit"):
        TokenMinter(PRIVATE_PEM, issuer=ISSUER, audience=AUDIENCE, algorithm="HS256")


def test_rsa_key_narrows_to_rsa_algorithms() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    priv = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    pub = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    v = TokenVerifier(pub, issuer=ISSUER, audience=AUDIENCE, algorithms=ALL_ALGS)
    assert v.algorithms == ["RS256"]
    token = TokenMinter(priv, issuer=ISSUER, audience=AUDIENCE, algorithm="RS256").mint(
        "s", [Role.DOCTOR]
    )
    assert v.verify(token).roles == frozenset({Role.DOCTOR})
    rejected(MINTER.mint("s", [Role.DOCTOR]), v=v)  # EdDSA token against an RSA key


def test_unknown_or_missing_roles_and_claims() -> None:
    rejected(MINTER.mint("s", []))  # a token must carry at least one role
    with pytest.raises(ValueError, match="superuser"):
        MINTER.mint("s", ["superuser"])
    # forge tokens with the real key, bypassing the minter's own checks
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "s", "jti": "j", "iat": now, "exp": now + 60}
    key = serialization.load_pem_private_key(PRIVATE_PEM.encode(), password=None)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    rejected(jwt.encode({**claims, "roles": ["superuser"]}, key, algorithm="EdDSA"))
    rejected(jwt.encode({**claims, "roles": "admin"}, key, algorithm="EdDSA"))
    no_jti = {k: v for k, v in claims.items() if k != "jti"}
    rejected(jwt.encode({**no_jti, "roles": ["agent"]}, key, algorithm="EdDSA"))
    assert verifier().verify(jwt.encode({**claims, "roles": ["agent"]}, key, algorithm="EdDSA"))
    rejected("not-a-jwt")
    rejected("", "token_missing")


def test_minter_refuses_to_override_registered_claims() -> None:
    with pytest.raises(ValueError, match="override"):
        MINTER.mint("s", [Role.AGENT], extra={"roles": ["admin"]})


async def test_revocation_hook() -> None:
    revoked: set[str] = set()
    seen: list[str] = []

    async def is_revoked(jti: str) -> bool:
        seen.append(jti)
        return jti in revoked

    v = verifier(is_revoked=is_revoked)
    token = MINTER.mint("s", [Role.NURSE])
    principal = await v.verify_async(token)
    assert seen == [principal.token_id]
    assert principal.token_id is not None
    revoked.add(principal.token_id)
    with pytest.raises(Unauthorized) as info:
        await v.verify_async(token)
    assert info.value.code == "token_invalid"
    assert v.verify(token).subject == "s"  # the sync path does not consult the hook


async def test_revocation_hook_failure_fails_closed() -> None:
    async def broken(jti: str) -> bool:
        raise ConnectionError("redis down")

    with pytest.raises(Problem) as info:
        await verifier(is_revoked=broken).verify_async(MINTER.mint("s", [Role.NURSE]))
    assert info.value.status == 503
    assert info.value.code == "auth_unavailable"


def test_from_settings(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="JWT_PUBLIC_KEY"):
        from_settings(ServiceSettings())
    key_file = tmp_path / "jwt.pem"
    key_file.write_text(PUBLIC_PEM)
    v = from_settings(ServiceSettings(jwt_public_key_file=str(key_file)))
    assert v.verify(MINTER.mint("s", [Role.ADMIN])).roles == frozenset({Role.ADMIN})
    one_line = PUBLIC_PEM.strip().replace("\n", "\\n")
    v = from_settings(ServiceSettings(jwt_public_key=one_line))
    assert v.verify(MINTER.mint("s", [Role.ADMIN])).subject == "s"


def test_ensure_patient_access() -> None:
    patient = Principal(subject="a", roles=frozenset({Role.PATIENT}), patient_ids=frozenset({"p1"}))
    ensure_patient_access(patient, "p1")
    with pytest.raises(Problem) as info:
        ensure_patient_access(patient, "p2")
    assert (info.value.status, info.value.code) == (403, "forbidden_patient")
    ensure_patient_access(Principal(subject="d", roles=frozenset({Role.DOCTOR})), "p2")


# --- FastAPI dependencies ------------------------------------------------------------------


def build_app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.state.token_verifier = verifier()

    @app.get("/v1/patients/{patient_id}")
    async def read_patient(patient_id: str, principal: CurrentPrincipal) -> dict[str, Any]:
        ensure_patient_access(principal, patient_id)
        ctx = structlog.contextvars.get_contextvars()
        return {
            "patient_id": patient_id,
            "actor": ctx.get("actor_id"),
            "role": ctx.get("actor_role"),
        }

    @app.post("/v1/schedules")
    async def edit_schedule(
        principal: Annotated[Principal, Depends(require_roles(Role.COORDINATOR, Role.ADMIN))],
    ) -> dict[str, str]:
        return {"by": principal.subject}

    @app.get("/v1/whoami")
    async def whoami(principal: OptionalPrincipal) -> dict[str, Any]:
        return {"subject": principal.subject if principal else None}

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c
    structlog.contextvars.clear_contextvars()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_missing_header_is_401_problem(client: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Basic dXNlcjpwdw=="}, {"Authorization": "Bearer "}):
        resp = await client.get("/v1/patients/p1", headers=headers)
        assert resp.status_code == 401
        assert resp.headers["content-type"] == "application/problem+json"
        assert resp.headers["www-authenticate"] == "Bearer"
        assert resp.json()["code"] == "token_missing"


async def test_invalid_and_expired_tokens_are_401(client: httpx.AsyncClient) -> None:
    resp = await client.get("/v1/patients/p1", headers=bearer("garbage"))
    assert (resp.status_code, resp.json()["code"]) == (401, "token_invalid")
    assert resp.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    old = MINTER.mint("a", [Role.PATIENT], issued_at=int(time.time()) - 7200)
    resp = await client.get("/v1/patients/p1", headers=bearer(old))
    assert (resp.status_code, resp.json()["code"]) == (401, "token_expired")


async def test_patient_sees_only_own_records(client: httpx.AsyncClient) -> None:
    token = MINTER.mint("acct-1", [Role.PATIENT], patient_ids=["p1"])
    ok = await client.get("/v1/patients/p1", headers=bearer(token))
    assert ok.status_code == 200
    assert ok.json() == {"patient_id": "p1", "actor": "acct-1", "role": "patient"}
    denied = await client.get("/v1/patients/p2", headers=bearer(token))
    assert denied.status_code == 403
    assert denied.json()["code"] == "forbidden_patient"


async def test_staff_may_read_any_patient(client: httpx.AsyncClient) -> None:
    token = MINTER.mint("dr-1", [Role.DOCTOR, Role.NURSE])
    resp = await client.get("/v1/patients/p2", headers=bearer(token))
    assert resp.status_code == 200
    assert resp.json()["role"] == "doctor"


async def test_require_roles(client: httpx.AsyncClient) -> None:
    nurse = await client.post("/v1/schedules", headers=bearer(MINTER.mint("n", [Role.NURSE])))
    assert nurse.status_code == 403
    assert nurse.json()["code"] == "forbidden_role"
    coord = await client.post("/v1/schedules", headers=bearer(MINTER.mint("c", [Role.COORDINATOR])))
    assert coord.status_code == 200
    assert coord.json() == {"by": "c"}
    anonymous = await client.post("/v1/schedules")
    assert anonymous.status_code == 401
    with pytest.raises(ValueError, match="at least one role"):
        require_roles()


async def test_optional_principal(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/whoami")).json() == {"subject": None}
    resp = await client.get("/v1/whoami", headers=bearer(MINTER.mint("x", [Role.AGENT])))
    assert resp.json() == {"subject": "x"}
    assert (await client.get("/v1/whoami", headers=bearer("garbage"))).status_code == 401


def test_openapi_declares_bearer_scheme() -> None:
    spec = build_app().openapi()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["HTTPBearer"]["scheme"] == "bearer"
    assert spec["paths"]["/v1/schedules"]["post"]["security"] == [{"HTTPBearer": []}]

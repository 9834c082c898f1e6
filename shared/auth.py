"""JWT verification and authorization dependencies (docs/architecture.md §8).

The gateway issues short-lived access tokens signed with an asymmetric key; every
service verifies them again with the public key (``TokenVerifier``, kept on
``app.state.token_verifier``) and enforces roles and patient ownership itself.

Claims: ``sub`` (account id), ``roles`` (list of :class:`Role` values), ``org``
(optional organisation), ``pids`` (patients a patient account may act for), ``jti``
(token id, used for revocation), plus the registered ``iss``/``aud``/``iat``/``exp``.

Only asymmetric algorithms are ever accepted: ``none`` and ``HS*`` are dropped from
any configured list, and the list is narrowed to what the key type can verify, so a
token "signed" with the public key as an HMAC secret (algorithm confusion) fails.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any

import jwt
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.principal import Principal, Role
from shared.problems import Forbidden, ServiceUnavailable, Unauthorized
from shared.settings import ServiceSettings

_log = structlog.get_logger("careloop.auth")

RevocationCheck = Callable[[str], Awaitable[bool]]
# a token's logout and its account's ended logins: None (live), "revoked" or "ended"
# (shared.revocation.TokenRevocations.check)
TokenCheck = Callable[[Principal], Awaitable[str | None]]
_REQUIRED_CLAIMS = ["exp", "iat", "sub", "iss", "aud", "jti"]
_RESERVED_CLAIMS = frozenset(
    {"iss", "aud", "sub", "iat", "nbf", "exp", "jti", "roles", "org", "pids"}
)
_MAX_TOKEN_LENGTH = 8192
_RSA_ALGS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_ED_KEYS = (
    ed25519.Ed25519PublicKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PublicKey,
    ed448.Ed448PrivateKey,
)
_EC_ALGS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512", "secp256k1": "ES256K"}


def _is_forbidden_alg(alg: str) -> bool:
    return alg.lower() == "none" or alg.upper().startswith("HS")


def _algs_for_key(key: object) -> frozenset[str]:
    """The asymmetric JWS algorithms that can be verified/signed with ``key``."""
    if isinstance(key, _ED_KEYS):
        return frozenset({"EdDSA"})
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        if key.key_size < 2048:
            raise ValueError("RSA keys must be at least 2048 bits")
        return _RSA_ALGS
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        alg = _EC_ALGS.get(key.curve.name)
        return frozenset({alg} if alg else ())
    return frozenset()


def auth_unavailable() -> ServiceUnavailable:
    """503: whether a token was logged out or its login ended cannot be read (fail closed)."""
    return ServiceUnavailable(
        "auth_unavailable",
        "Sign-in cannot be checked right now. Please try again shortly.",
        retry_after=1,
        detail_zh="暂时无法验证登录状态，请稍后再试。",
    )


def _invalid(reason: str) -> Unauthorized:
    _log.info("token_rejected", reason=reason)
    return Unauthorized(
        "token_invalid",
        "The access token is invalid. Please sign in again.",
        bearer_error="invalid_token",
        detail_zh="登录凭证无效，请重新登录。",
    )


class TokenVerifier:
    """Verifies gateway-issued access tokens and maps them to a :class:`Principal`."""

    def __init__(
        self,
        public_key_pem: str,
        *,
        issuer: str,
        audience: str,
        algorithms: list[str],
        leeway_seconds: int = 10,
        is_revoked: RevocationCheck | None = None,
        token_check: TokenCheck | None = None,
    ) -> None:
        key = serialization.load_pem_public_key(public_key_pem.encode())
        allowed = [a for a in algorithms if not _is_forbidden_alg(a) and a in _algs_for_key(key)]
        if not allowed:
            raise ValueError(
                f"none of the algorithms {algorithms} is asymmetric and fits the "
                f"{type(key).__name__} public key"
            )
        self._key = key
        self._algorithms = allowed
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway_seconds
        self._is_revoked = is_revoked
        self._token_check = token_check

    @property
    def algorithms(self) -> list[str]:
        return list(self._algorithms)

    def verify(self, token: str) -> Principal:
        """Check signature and claims; raise ``Unauthorized`` (401 problem) otherwise."""
        if not token:
            raise Unauthorized("token_missing", "An access token is required.")
        if len(token) > _MAX_TOKEN_LENGTH:
            raise _invalid("too_long")
        try:
            alg = jwt.get_unverified_header(token).get("alg")
        except jwt.InvalidTokenError as exc:
            raise _invalid("malformed") from exc
        if not isinstance(alg, str) or alg not in self._algorithms:
            raise _invalid(f"algorithm_not_allowed:{str(alg)[:16]}")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key,  # type: ignore[arg-type]  # a cryptography key object is accepted
                algorithms=self._algorithms,
                issuer=self._issuer,
                audience=self._audience,
                leeway=self._leeway,
                options={"require": _REQUIRED_CLAIMS, "strict_aud": True},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized(
                "token_expired",
                "The access token has expired. Please sign in again.",
                bearer_error="invalid_token",
                detail_zh="登录已过期，请重新登录。",
            ) from exc
        except jwt.InvalidTokenError as exc:
            raise _invalid(type(exc).__name__) from exc
        return self._principal(claims)

    async def verify_async(self, token: str) -> Principal:
        """:meth:`verify`, then the revocation hooks: the token logged out or its login
        ended is a 401; a hook that fails is a 503 ``auth_unavailable`` (fail closed)."""
        principal = self.verify(token)
        if principal.token_id is None:
            return principal
        try:
            revoked = self._is_revoked is not None and await self._is_revoked(principal.token_id)
            state = (
                None if revoked or self._token_check is None else await self._token_check(principal)
            )
        except Exception as exc:
            _log.warning("revocation_check_failed", error=type(exc).__name__)
            raise auth_unavailable() from exc
        if revoked or state == "revoked":
            raise _invalid("revoked")
        if state is not None:
            _log.info("token_rejected", reason=state)
            raise Unauthorized(
                "token_revoked",
                "this session has ended; please sign in again",
                bearer_error="invalid_token",
                detail_zh="登录已失效，请重新登录。",
            )
        return principal

    @staticmethod
    def _principal(claims: Mapping[str, Any]) -> Principal:
        sub, jti, org = claims.get("sub"), claims.get("jti"), claims.get("org")
        raw_roles, pids = claims.get("roles"), claims.get("pids", [])
        if not isinstance(sub, str) or not sub or not isinstance(jti, str):
            raise _invalid("bad_sub_or_jti")
        if not isinstance(raw_roles, list) or not raw_roles:
            raise _invalid("roles_missing")
        try:
            roles = frozenset(Role(r) for r in raw_roles)
        except ValueError as exc:
            raise _invalid("unknown_role") from exc
        if not isinstance(pids, list) or not all(isinstance(p, str) for p in pids):
            raise _invalid("bad_pids")
        if org is not None and not isinstance(org, str):
            raise _invalid("bad_org")
        iat = claims.get("iat")
        return Principal(
            subject=sub,
            roles=roles,
            org_id=org,
            patient_ids=frozenset(pids),
            token_id=jti,
            issued_at=iat if isinstance(iat, int) else None,
        )


def read_pem(inline: str, file: str | None, *, missing: str) -> str:
    """A PEM key given inline (an env var, possibly squeezed onto one line) or as a file."""
    pem = inline.strip()
    if not pem and file:
        pem = Path(file).read_text(encoding="utf-8")
    if not pem:
        raise ValueError(missing)
    if "\\n" in pem and "\n" not in pem:  # PEM squeezed onto one line in an env var
        pem = pem.replace("\\n", "\n")
    return pem


def from_settings(
    settings: ServiceSettings,
    *,
    is_revoked: RevocationCheck | None = None,
    token_check: TokenCheck | None = None,
) -> TokenVerifier:
    """Build the verifier from ``jwt_public_key`` (PEM) or ``jwt_public_key_file``."""
    pem = read_pem(
        settings.jwt_public_key,
        settings.jwt_public_key_file,
        missing="no JWT public key configured: set CARELOOP_<SERVICE>_JWT_PUBLIC_KEY (PEM) "
        "or CARELOOP_<SERVICE>_JWT_PUBLIC_KEY_FILE",
    )
    return TokenVerifier(
        pem,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        algorithms=list(settings.jwt_algorithms),
        is_revoked=is_revoked,
        token_check=token_check,
    )


# --- FastAPI dependencies --------------------------------------------------------------

# Only documents the scheme in OpenAPI; the header is parsed below so that a missing or
# non-Bearer header gives our 401 problem rather than FastAPI's default error.
bearer_scheme = HTTPBearer(auto_error=False, bearerFormat="JWT")


def _bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def _authenticate(request: Request, token: str) -> Principal:
    verifier = getattr(request.app.state, "token_verifier", None)
    if not isinstance(verifier, TokenVerifier):
        raise RuntimeError("app.state.token_verifier is not set up")
    principal = await verifier.verify_async(token)
    request.state.principal = principal
    structlog.contextvars.bind_contextvars(
        actor_id=principal.subject, actor_role=principal.primary_role
    )
    return principal


async def current_principal(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)] = None,
) -> Principal:
    """The verified caller; 401 problem (``token_missing``/``token_invalid``/...) otherwise."""
    token = _bearer_token(request)
    if token is None:
        raise Unauthorized("token_missing", "An access token is required.", detail_zh="请先登录。")
    return await _authenticate(request, token)


async def optional_principal(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)] = None,
) -> Principal | None:
    """``None`` without a token; a token that is present must still be valid (else 401)."""
    token = _bearer_token(request)
    return None if token is None else await _authenticate(request, token)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
OptionalPrincipal = Annotated[Principal | None, Depends(optional_principal)]


def require_roles(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency returning the principal if it holds any of ``roles``, else 403."""
    if not roles:
        raise ValueError("require_roles needs at least one role")
    wanted = ", ".join(r.value for r in roles)

    async def dependency(principal: CurrentPrincipal) -> Principal:
        if not principal.has_any(*roles):
            raise Forbidden(
                "forbidden_role",
                f"This action requires one of the roles: {wanted}.",
                detail_zh="您没有执行此操作的权限。",
            )
        return principal

    return dependency


def ensure_patient_access(principal: Principal, patient_id: str) -> None:
    """403 ``forbidden_patient`` unless ``principal`` may act for ``patient_id``.

    This is the object-level check of OWASP API1:2023 (Broken Object Level
    Authorization): call it for every patient id taken from a path, query or body,
    before touching data. We answer 403 rather than 404 on purpose: patient ids are
    opaque random ids, so the status leaks nothing useful, and a distinct code makes
    denials easy to audit and alert on.
    """
    if not principal.may_access_patient(patient_id):
        _log.warning("patient_access_denied", actor_id=principal.subject, patient_id=patient_id)
        raise Forbidden(
            "forbidden_patient",
            "You may not access this patient's records.",
            detail_zh="您无权查看该就诊人的信息。",
        )


# --- Issuing (the gateway; tests) --------------------------------------------------------


class TokenMinter:
    """Signs access tokens with an asymmetric private key."""

    def __init__(
        self,
        private_key_pem: str,
        *,
        issuer: str,
        audience: str,
        algorithm: str = "EdDSA",
        key_id: str | None = None,
    ) -> None:
        key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
        if _is_forbidden_alg(algorithm) or algorithm not in _algs_for_key(key):
            raise ValueError(f"algorithm {algorithm!r} does not fit a {type(key).__name__}")
        self._key = key
        self._issuer = issuer
        self._audience = audience
        self._algorithm = algorithm
        self._key_id = key_id

    def mint(
        self,
        subject: str,
        roles: Iterable[Role | str],
        *,
        org_id: str | None = None,
        patient_ids: Iterable[str] = (),
        ttl_seconds: int = 900,
        extra: Mapping[str, Any] | None = None,
        issued_at: int | None = None,
    ) -> str:
        """A signed token with a fresh ``jti``; ``issued_at`` (epoch s) is for tests."""
        if clash := _RESERVED_CLAIMS & set(extra or {}):
            raise ValueError(f"extra claims may not override {sorted(clash)}")
        now = int(time.time()) if issued_at is None else issued_at
        claims: dict[str, Any] = {
            **(extra or {}),
            "iss": self._issuer,
            "aud": self._audience,
            "sub": subject,
            "roles": sorted(Role(r).value for r in roles),
            "pids": sorted(set(patient_ids)),
            "jti": str(uuid.uuid4()),
            "iat": now,
            "nbf": now,
            "exp": now + ttl_seconds,
        }
        if org_id is not None:
            claims["org"] = org_id
        headers = {"kid": self._key_id} if self._key_id else None
        return jwt.encode(claims, self._key, algorithm=self._algorithm, headers=headers)  # type: ignore[arg-type]


def generate_ed25519_keypair() -> tuple[str, str]:
    """A fresh Ed25519 key pair as (private PKCS#8 PEM, public SubjectPublicKeyInfo PEM)."""
    private = ed25519.Ed25519PrivateKey.generate()
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem.decode(), public_pem.decode()

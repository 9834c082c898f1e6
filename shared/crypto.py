"""Field encryption at rest (AES-256-GCM) and keyed lookup hashes (HMAC-SHA256),
docs/architecture.md §8.

Tokens look like ``v2.<kid>.<b64url nonce>.<b64url ciphertext+tag>``. The associated data
binds a token to its field (``context``) and to its record (``record_id``, e.g. the
patient's id): a token copied into another record, or another field, fails to decrypt.
``v1`` tokens (made before the record binding; bound to the field only) still decrypt and
count as needing rotation, which re-encrypts them as ``v2`` (``shared/pii_rotation.py``).

The key id picks the decryption key, so keys rotate: add a new key first in the settings,
old tokens still decrypt, and :meth:`FieldCipher.needs_rotation` finds the ones to
re-encrypt.

Lookup hashes use one key per kind of value (``phone``, ``national_id``), derived from the
configured hash key with HKDF and the kind as label, so equal strings of different kinds
hash apart. Hashes made before (HMAC under the hash key itself) are
:meth:`FieldCipher.legacy_lookup_hash`; :meth:`FieldCipher.lookup_hashes` gives both for
lookups during the upgrade, and the rotation rewrites stored ones. The hash key does not
rotate by key id: changing it means re-hashing every stored value from its plaintext.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import unicodedata

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from shared.privacy import normalize_national_id

__all__ = [
    "LOOKUP_KINDS",
    "DecryptionError",
    "FieldCipher",
    "generate_key",
    "split_hash_key_label",
]

_VERSION = "v2"  # AAD: version, key id, context, record id
_LEGACY_VERSION = "v1"  # AAD: version, key id, context (before the record binding)
# each kind has its own derived hash key (verification_code: keyed hashes of texted codes)
LOOKUP_KINDS = ("phone", "national_id", "verification_code")
_HKDF_INFO = b"careloop lookup hash\x00"
_KEY_BYTES = 32
_NONCE_BYTES = 12
_MIN_HASH_KEY_BYTES = 32
_KID_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")
_KEYGEN_HINT = (
    'generate one with: python -c "from shared.crypto import generate_key; print(generate_key())"'
)


class DecryptionError(ValueError):
    """A token is malformed, uses an unknown key, or fails authentication."""


def generate_key() -> str:
    """A fresh random 32-byte key, base64url without padding (for dev setup and rotation)."""
    return _b64encode(os.urandom(_KEY_BYTES))


def split_hash_key_label(spec: str) -> tuple[str, str]:
    """``"label:base64urlkey"`` or ``"base64urlkey"`` -> (label, key); a label only marks the
    key (``dev``: the devstack's, refused in production), base64url has no colon."""
    label, sep, encoded = spec.strip().rpartition(":")
    return (label.strip(), encoded.strip()) if sep else ("", spec.strip())


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    """Strict base64url (padding optional); raises ``binascii.Error`` on stray characters."""
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


def _aad(version: str, kid: str, context: str, record_id: str) -> bytes:
    if version == _LEGACY_VERSION:
        return f"{_LEGACY_VERSION}\x00{kid}\x00{context}".encode()
    if "\x00" in context or "\x00" in record_id:
        raise ValueError("context and record_id may not contain NUL")
    return f"{_VERSION}\x00{kid}\x00{context}\x00{record_id}".encode()


def _derive(hash_key: bytes, kind: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO + kind.encode())
    return hkdf.derive(hash_key)


def _normalize(value: str, kind: str | None) -> str:
    """NFKC folding and stripping spaces; a national ID also upper-cases its ``x``."""
    if kind == "national_id":
        return normalize_national_id(value)
    return unicodedata.normalize("NFKC", value).strip()


class FieldCipher:
    """Encrypts string fields and computes lookup hashes; safe to share between tasks."""

    def __init__(self, keys: dict[str, bytes], hash_key: bytes) -> None:
        if not keys:
            raise ValueError("FieldCipher needs at least one encryption key")
        for kid, key in keys.items():
            if _KID_RE.fullmatch(kid) is None:
                raise ValueError(f"bad key id {kid!r}: use 1-32 characters of [A-Za-z0-9_-]")
            if len(key) != _KEY_BYTES:
                raise ValueError(f"key {kid!r} must be {_KEY_BYTES} bytes, got {len(key)}")
        if len(hash_key) < _MIN_HASH_KEY_BYTES:
            raise ValueError(f"hash key must be at least {_MIN_HASH_KEY_BYTES} bytes")
        if any(hmac.compare_digest(hash_key, key) for key in keys.values()):
            raise ValueError("the hash key must differ from every encryption key")
        self._aeads = {kid: AESGCM(key) for kid, key in keys.items()}
        self._active_kid = next(iter(keys))
        self._hash_key = hash_key
        self._kind_keys = {kind: _derive(hash_key, kind) for kind in LOOKUP_KINDS}

    @property
    def active_kid(self) -> str:
        return self._active_kid

    @classmethod
    def from_settings(cls, keys_spec: str, hash_key_b64: str) -> FieldCipher:
        """Build from ``"kid:base64urlkey,kid2:base64urlkey"`` and a base64url hash key
        (optionally labelled: ``"dev:base64urlkey"``)."""
        keys: dict[str, bytes] = {}
        for position, raw_entry in enumerate(keys_spec.split(","), start=1):
            entry = raw_entry.strip()
            if not entry:
                continue
            kid, sep, encoded = (part.strip() for part in entry.partition(":"))
            if not sep or not kid or not encoded:
                # never echo the entry: without a colon it is the key itself
                raise ValueError(
                    f"pii_encryption_keys entry {position}: expected 'kid:base64urlkey'"
                )
            if kid in keys:
                raise ValueError(f"pii_encryption_keys: duplicate key id {kid!r}")
            keys[kid] = _decode_setting(f"pii_encryption_keys[{kid}]", encoded)
        if not keys:
            raise ValueError(f"pii_encryption_keys is empty; {_KEYGEN_HINT}")
        encoded_hash_key = split_hash_key_label(hash_key_b64)[1]
        if not encoded_hash_key:
            raise ValueError(f"pii_hash_key is empty; {_KEYGEN_HINT}")
        return cls(keys, _decode_setting("pii_hash_key", encoded_hash_key))

    def encrypt(self, plaintext: str, *, context: str = "", record_id: str = "") -> str:
        """Encrypt with the active key; ``context`` (the field) and ``record_id`` (the record
        it is stored in; empty: any) are bound as associated data."""
        kid = self._active_kid
        nonce = os.urandom(_NONCE_BYTES)
        aad = _aad(_VERSION, kid, context, record_id)
        sealed = self._aeads[kid].encrypt(nonce, plaintext.encode(), aad)
        return f"{_VERSION}.{kid}.{_b64encode(nonce)}.{_b64encode(sealed)}"

    def decrypt(self, token: str, *, context: str = "", record_id: str = "") -> str:
        """Decrypt a token made by :meth:`encrypt` with the same ``context`` and
        ``record_id`` (a ``v1`` token is bound to its context only)."""
        version, kid, nonce, sealed = self._parse(token)
        try:
            aad = _aad(version, kid, context, record_id)
            plaintext = self._aeads[kid].decrypt(nonce, sealed, aad)
        except (InvalidTag, ValueError):
            raise DecryptionError(f"token with key {kid!r} failed authentication") from None
        return plaintext.decode()

    def needs_rotation(self, token: str) -> bool:
        """True if the token is a ``v1`` one or under a key other than the active one.

        The key id need not be known here; a malformed token raises :class:`DecryptionError`.
        """
        version, kid = _split(token)[:2]
        return version != _VERSION or kid != self._active_kid

    def reencrypt(self, token: str, *, context: str = "", record_id: str = "") -> str:
        """Re-encrypt (as ``v2``, with the active key) if needed; else the token unchanged."""
        if not self.needs_rotation(token):
            return token
        plaintext = self.decrypt(token, context=context, record_id=record_id)
        return self.encrypt(plaintext, context=context, record_id=record_id)

    def lookup_hash(self, value: str, *, kind: str) -> str:
        """Hex HMAC-SHA256 of the normalized value under the key of its ``kind``
        (:data:`LOOKUP_KINDS`): the same string hashes apart as a phone and as an ID."""
        if kind not in self._kind_keys:
            raise ValueError(f"unknown lookup hash kind {kind!r}; one of {LOOKUP_KINDS}")
        normalized = _normalize(value, kind).encode()
        return hmac.new(self._kind_keys[kind], normalized, hashlib.sha256).hexdigest()

    def lookup_hash_national_id(self, value: str) -> str:
        """Lookup hash of a national ID in its normalized form (``x`` and ``X`` hash alike)."""
        return self.lookup_hash(value, kind="national_id")

    def legacy_lookup_hash(self, value: str, *, kind: str) -> str:
        """The hash stored before per-kind keys: HMAC under the hash key itself."""
        normalized = _normalize(value, kind).encode()
        return hmac.new(self._hash_key, normalized, hashlib.sha256).hexdigest()

    def lookup_hashes(self, value: str, *, kind: str) -> list[str]:
        """The current hash, then the legacy one: a lookup during the upgrade matches
        records the rotation has not re-hashed yet (``{"$in": cipher.lookup_hashes(...)}``)."""
        return [self.lookup_hash(value, kind=kind), self.legacy_lookup_hash(value, kind=kind)]

    def _parse(self, token: str) -> tuple[str, str, bytes, bytes]:
        version, kid, nonce_b64, sealed_b64 = _split(token)
        if kid not in self._aeads:
            raise DecryptionError(f"unknown key id {kid!r}")
        try:
            nonce, sealed = _b64decode(nonce_b64), _b64decode(sealed_b64)
        except (binascii.Error, ValueError):
            raise DecryptionError("token is not valid base64url") from None
        if len(nonce) != _NONCE_BYTES or len(sealed) < 16:
            raise DecryptionError("token has a bad nonce or ciphertext length")
        return version, kid, nonce, sealed


def _split(token: str) -> list[str]:
    parts = token.split(".")
    if len(parts) != 4 or parts[0] not in (_VERSION, _LEGACY_VERSION) or not parts[1]:
        raise DecryptionError("not a v1/v2 field token")
    return parts


def _decode_setting(name: str, encoded: str) -> bytes:
    try:
        return _b64decode(encoded)
    except (binascii.Error, ValueError):
        raise ValueError(f"{name} is not valid base64url; {_KEYGEN_HINT}") from None

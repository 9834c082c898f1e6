"""Field encryption at rest (AES-256-GCM) and keyed lookup hashes (HMAC-SHA256),
docs/architecture.md §8.

Tokens look like ``v1.<kid>.<b64url nonce>.<b64url ciphertext+tag>``. The key id picks the
decryption key, so keys rotate: add a new key first in the settings, old tokens still decrypt,
and :meth:`FieldCipher.needs_rotation` finds the ones to re-encrypt. The lookup hash key does
not rotate this way: changing it means re-hashing every stored value from its plaintext.
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
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.privacy import normalize_national_id

__all__ = ["DecryptionError", "FieldCipher", "generate_key", "split_hash_key_label"]

_VERSION = "v1"
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


def _aad(kid: str, context: str) -> bytes:
    return f"{_VERSION}\x00{kid}\x00{context}".encode()


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

    def encrypt(self, plaintext: str, *, context: str = "") -> str:
        """Encrypt with the active key; ``context`` (e.g. the field name) is bound as AAD."""
        kid = self._active_kid
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aeads[kid].encrypt(nonce, plaintext.encode(), _aad(kid, context))
        return f"{_VERSION}.{kid}.{_b64encode(nonce)}.{_b64encode(sealed)}"

    def decrypt(self, token: str, *, context: str = "") -> str:
        """Decrypt a token made by :meth:`encrypt` with the same ``context``."""
        kid, nonce, sealed = self._parse(token)
        try:
            plaintext = self._aeads[kid].decrypt(nonce, sealed, _aad(kid, context))
        except InvalidTag:
            raise DecryptionError(f"token with key {kid!r} failed authentication") from None
        return plaintext.decode()

    def needs_rotation(self, token: str) -> bool:
        """True if the token was encrypted with a key other than the active one.

        The key id need not be known here; a malformed token raises :class:`DecryptionError`.
        """
        return _split(token)[1] != self._active_kid

    def reencrypt(self, token: str, *, context: str = "") -> str:
        """Re-encrypt with the active key if needed; otherwise return the token unchanged."""
        if not self.needs_rotation(token):
            return token
        return self.encrypt(self.decrypt(token, context=context), context=context)

    def lookup_hash(self, value: str) -> str:
        """Hex HMAC-SHA256 of the value after NFKC folding and stripping spaces."""
        normalized = unicodedata.normalize("NFKC", value).strip()
        return hmac.new(self._hash_key, normalized.encode(), hashlib.sha256).hexdigest()

    def lookup_hash_national_id(self, value: str) -> str:
        """Lookup hash of a national ID in its normalized form (``x`` and ``X`` hash alike)."""
        return self.lookup_hash(normalize_national_id(value))

    def _parse(self, token: str) -> tuple[str, bytes, bytes]:
        _, kid, nonce_b64, sealed_b64 = _split(token)
        if kid not in self._aeads:
            raise DecryptionError(f"unknown key id {kid!r}")
        try:
            nonce, sealed = _b64decode(nonce_b64), _b64decode(sealed_b64)
        except (binascii.Error, ValueError):
            raise DecryptionError("token is not valid base64url") from None
        if len(nonce) != _NONCE_BYTES or len(sealed) < 16:
            raise DecryptionError("token has a bad nonce or ciphertext length")
        return kid, nonce, sealed


def _split(token: str) -> list[str]:
    parts = token.split(".")
    if len(parts) != 4 or parts[0] != _VERSION or not parts[1]:
        raise DecryptionError("not a v1 field token")
    return parts


def _decode_setting(name: str, encoded: str) -> bytes:
    try:
        return _b64decode(encoded)
    except (binascii.Error, ValueError):
        raise ValueError(f"{name} is not valid base64url; {_KEYGEN_HINT}") from None

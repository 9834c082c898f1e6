"""WeChat message push in safe mode (安全模式): the ``msg_signature`` and the AES envelope.

In safe mode WeChat POSTs an envelope (XML or JSON) whose ``Encrypt`` field holds the
message, and puts ``msg_signature``, ``timestamp`` and ``nonce`` in the query:

* ``msg_signature`` = hex sha1 of ``token``, ``timestamp``, ``nonce`` and ``Encrypt``
  sorted as strings and joined, so the signature covers the body;
* ``Encrypt`` is base64 of AES-256-CBC with the key ``base64(EncodingAESKey + "=")``
  (43 characters → 32 bytes), IV = the key's first 16 bytes, PKCS#7 padding to 32-byte
  blocks, over ``16 random bytes + 4-byte big-endian length + message + appid``.

:func:`open_envelope` checks all of that and the appid, and returns the message as a
mapping (the decrypted message is XML or JSON too). Every failure is a
:class:`SafeModeError` with a stable ``code``; none says more than that to the caller.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
import struct
import xml.etree.ElementTree as ET  # DTDs are refused before parsing (see _xml)
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = [
    "AES_KEY_LENGTH",
    "SafeModeError",
    "aes_key",
    "encrypted_field",
    "message_fields",
    "msg_signature",
    "open_envelope",
    "verify_msg_signature",
]

AES_KEY_LENGTH = 43  # characters of an EncodingAESKey
PAD_BLOCK = 32  # WeChat pads to 32 bytes (not AES's 16)
_RANDOM, _LENGTH = 16, 4


class SafeModeError(ValueError):
    """A safe-mode push that is malformed, forged or not for this app."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def aes_key(encoding_aes_key: str) -> bytes:
    """The 32-byte AES key of a 43-character EncodingAESKey; a malformed one is an error."""
    if len(encoding_aes_key) != AES_KEY_LENGTH:
        raise SafeModeError("aes_key_invalid")
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SafeModeError("aes_key_invalid") from exc
    if len(key) != 32:
        raise SafeModeError("aes_key_invalid")
    return key


def msg_signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    joined = "".join(sorted((token, timestamp, nonce, encrypt))).encode()
    return hashlib.sha1(joined).hexdigest()  # noqa: S324 - the push protocol's hash


def verify_msg_signature(
    token: str, signature: str, timestamp: str, nonce: str, encrypt: str
) -> bool:
    if not token or not signature or not encrypt:
        return False
    expected = msg_signature(token, timestamp, nonce, encrypt)
    return secrets.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))


def decrypt(key: bytes, encrypt: str, app_id: str) -> bytes:
    """The message inside ``Encrypt``; the appid at its end must be ``app_id``."""
    try:
        data = base64.b64decode(encrypt, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SafeModeError("encrypt_invalid") from exc
    if not data or len(data) % 16:
        raise SafeModeError("encrypt_invalid")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    padded = decryptor.update(data) + decryptor.finalize()
    pad = padded[-1]
    if not 1 <= pad <= PAD_BLOCK or padded[-pad:] != bytes([pad]) * pad:
        raise SafeModeError("encrypt_invalid")
    plain = padded[:-pad]
    if len(plain) < _RANDOM + _LENGTH:
        raise SafeModeError("encrypt_invalid")
    (length,) = struct.unpack(">I", plain[_RANDOM : _RANDOM + _LENGTH])
    start = _RANDOM + _LENGTH
    if start + length > len(plain):
        raise SafeModeError("encrypt_invalid")
    received_app_id = plain[start + length :]
    if not app_id or not secrets.compare_digest(received_app_id, app_id.encode()):
        raise SafeModeError("app_id_mismatch")
    return plain[start : start + length]


def encrypted_field(raw: bytes) -> str:
    """The ``Encrypt`` field of a safe-mode envelope (XML or JSON)."""
    fields = message_fields(raw)
    encrypt = fields.get("Encrypt")
    if not isinstance(encrypt, str) or not encrypt.strip():
        raise SafeModeError("encrypt_missing")
    return encrypt.strip()


def open_envelope(
    raw: bytes,
    *,
    token: str,
    encoding_aes_key: str,
    app_id: str,
    signature: str,
    timestamp: str,
    nonce: str,
) -> dict[str, Any]:
    """Check the envelope's ``msg_signature`` and appid; the decrypted message's fields."""
    key = aes_key(encoding_aes_key)
    encrypt = encrypted_field(raw)
    if not verify_msg_signature(token, signature, timestamp, nonce, encrypt):
        raise SafeModeError("signature_invalid")
    return message_fields(decrypt(key, encrypt, app_id))


def message_fields(raw: bytes) -> dict[str, Any]:
    """A JSON object, or an XML document as nested mappings (repeated tags become lists)."""
    text = raw.strip()
    if text.startswith(b"<"):
        return _xml(text)
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise SafeModeError("body_invalid") from exc
    if not isinstance(body, dict):
        raise SafeModeError("body_invalid")
    return body


def _xml(text: bytes) -> dict[str, Any]:
    # No DTDs at all: no entity expansion, no external entities (expat ≥ 2.4 also caps
    # amplification, and the callers bound the input's size).
    if b"<!" in text.replace(b"<![CDATA[", b""):
        raise SafeModeError("body_invalid")
    try:
        root = ET.fromstring(text)  # noqa: S314 - DTDs refused above, input bounded
    except ET.ParseError as exc:
        raise SafeModeError("body_invalid") from exc
    value = _element(root)
    return value if isinstance(value, dict) else {}


def _element(element: ET.Element) -> dict[str, Any] | str:
    children = list(element)
    if not children:
        return (element.text or "").strip()
    fields: dict[str, Any] = {}
    for child in children:
        value = _element(child)
        previous = fields.get(child.tag)
        if previous is None:
            fields[child.tag] = value
        elif isinstance(previous, list):
            previous.append(value)
        else:
            fields[child.tag] = [previous, value]
    return fields

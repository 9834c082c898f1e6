"""WeChat's side of a safe-mode (安全模式) message push, written from the protocol's text and
independent of the service's code: an encrypted envelope and its signed query.

AES key = base64-decode(EncodingAESKey + "="), IV = key[:16], AES-256-CBC, PKCS#7 padding
to 32-byte blocks over 16 random bytes + 4-byte big-endian length + message + appid;
msg_signature = sha1 of token, timestamp, nonce and the ciphertext sorted and joined.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import time

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

TOKEN = "wx-callback-token"
ENCODING_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # 43 characters
APP_ID = "wx5c3a8e1f4d2b7a90"


def encrypt(message: bytes, *, key: str = ENCODING_AES_KEY, app_id: str = APP_ID) -> str:
    aes_key = base64.b64decode(key + "=")
    assert len(aes_key) == 32
    plain = os.urandom(16) + len(message).to_bytes(4, "big") + message + app_id.encode()
    pad = 32 - len(plain) % 32
    plain += bytes([pad]) * pad
    encryptor = Cipher(algorithms.AES(aes_key), modes.CBC(aes_key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()


def signature(token: str, timestamp: str, nonce: str, ciphertext: str) -> str:
    joined = "".join(sorted([token, timestamp, nonce, ciphertext]))
    return hashlib.sha1(joined.encode()).hexdigest()  # noqa: S324 - the protocol's hash


def push(
    message: bytes,
    *,
    token: str = TOKEN,
    key: str = ENCODING_AES_KEY,
    app_id: str = APP_ID,
    timestamp: int | None = None,
    nonce: str | None = None,
    xml: bool = False,
) -> tuple[dict[str, str], bytes]:
    """The query and body of one push of ``message`` (the decrypted XML or JSON)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or secrets.token_hex(5)
    ciphertext = encrypt(message, key=key, app_id=app_id)
    query = {
        "signature": hashlib.sha1("".join(sorted([token, ts, nonce])).encode()).hexdigest(),  # noqa: S324
        "timestamp": ts,
        "nonce": nonce,
        "encrypt_type": "aes",
        "msg_signature": signature(token, ts, nonce, ciphertext),
    }
    if xml:
        body = (
            f"<xml><ToUserName><![CDATA[gh_123]]></ToUserName>"
            f"<Encrypt><![CDATA[{ciphertext}]]></Encrypt></xml>"
        ).encode()
    else:
        body = json.dumps({"ToUserName": "gh_123", "Encrypt": ciphertext}).encode()
    return query, body


def sent_event_json(msg_id: str, error_code: str = "0", openid: str = "o7esq5PHRGBQ") -> bytes:
    event = {
        "ToUserName": "gh_123",
        "FromUserName": openid,
        "CreateTime": int(time.time()),
        "MsgType": "event",
        "Event": "subscribe_msg_sent_event",
        "List": {
            "TemplateId": "tpl-booked-1",
            "MsgID": msg_id,
            "ErrorCode": error_code,
            "ErrorStatus": "success" if error_code == "0" else "fail",
        },
    }
    return json.dumps(event).encode()


def sent_event_xml(msg_id: str, error_code: str = "0") -> bytes:
    return (
        "<xml><ToUserName><![CDATA[gh_123]]></ToUserName>"
        "<FromUserName><![CDATA[o7esq5PHRGBQ]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime>"
        "<MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[subscribe_msg_sent_event]]></Event>"
        "<SubscribeMsgSentEvent><List>"
        "<TemplateId><![CDATA[tpl-booked-1]]></TemplateId>"
        f"<MsgID>{msg_id}</MsgID><ErrorCode>{error_code}</ErrorCode>"
        "<ErrorStatus><![CDATA[success]]></ErrorStatus>"
        "</List></SubscribeMsgSentEvent></xml>"
    ).encode()

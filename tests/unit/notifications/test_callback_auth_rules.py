"""Pure rules of callback authentication: WeChat's safe-mode envelope, Aliyun's receipt
token, the timestamp window and a callback's source address."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from redis.asyncio import Redis
from starlette.requests import Request

from services.notifications.callbacks import CallbackGuard
from services.notifications.providers import aliyun_sms, wechat
from services.notifications.providers.wechat_crypto import SafeModeError, aes_key, open_envelope
from shared.problems import Forbidden, Unauthorized
from tests.integration.notifications import safe_mode

NOW = 1_796_000_000


def opened(query: dict[str, str], body: bytes, **overrides: str) -> dict[str, object]:
    values = {
        "token": safe_mode.TOKEN,
        "encoding_aes_key": safe_mode.ENCODING_AES_KEY,
        "app_id": safe_mode.APP_ID,
        "signature": query["msg_signature"],
        "timestamp": query["timestamp"],
        "nonce": query["nonce"],
        **overrides,
    }
    return open_envelope(body, **values)


@pytest.mark.parametrize("xml", [False, True])
def test_a_safe_mode_push_opens_to_its_receipts(xml: bool) -> None:
    message = safe_mode.sent_event_xml("42") if xml else safe_mode.sent_event_json("42")
    query, body = safe_mode.push(message, xml=xml)
    [receipt] = wechat.parse_sent_event(opened(query, body))
    assert (receipt.provider, receipt.provider_message_id, receipt.delivered) == (
        "wechat",
        "42",
        True,
    )


def test_several_xml_items_are_a_list() -> None:
    item = "<List><MsgID>{}</MsgID><ErrorCode>0</ErrorCode></List>"
    xml = (
        "<xml><Event>subscribe_msg_sent_event</Event><SubscribeMsgSentEvent>"
        f"{item.format(1)}{item.format(2)}</SubscribeMsgSentEvent></xml>"
    ).encode()
    query, body = safe_mode.push(xml)
    receipts = wechat.parse_sent_event(opened(query, body))
    assert [r.provider_message_id for r in receipts] == ["1", "2"]


@pytest.mark.parametrize(
    ("push_args", "open_args", "code"),
    [
        ({"token": "other"}, {}, "signature_invalid"),
        ({}, {"token": "other"}, "signature_invalid"),
        ({}, {"timestamp": "1"}, "signature_invalid"),  # the timestamp is signed
        ({}, {"nonce": "other"}, "signature_invalid"),
        ({"key": "Z" * 43}, {}, "encrypt_invalid"),
        ({"app_id": "wx-other"}, {}, "app_id_mismatch"),
        ({}, {"app_id": ""}, "app_id_mismatch"),
        ({}, {"encoding_aes_key": "short"}, "aes_key_invalid"),
    ],
)
def test_safe_mode_refusals(
    push_args: dict[str, str], open_args: dict[str, str], code: str
) -> None:
    query, body = safe_mode.push(safe_mode.sent_event_json("42"), **push_args)  # type: ignore[arg-type]
    with pytest.raises(SafeModeError) as refused:
        opened(query, body, **open_args)
    assert refused.value.code == code


def test_a_body_with_a_doctype_is_refused_before_parsing() -> None:
    bomb = b'<!DOCTYPE x [<!ENTITY a "aaaa">]><xml><Encrypt>&a;</Encrypt></xml>'
    query, _ = safe_mode.push(b"{}")
    with pytest.raises(SafeModeError) as refused:
        opened(query, bomb)
    assert refused.value.code == "body_invalid"


@pytest.mark.parametrize("body", [b"", b"[]", b"{}", b'{"Encrypt": 5}', b"<xml></xml>", b"<x"])
def test_an_envelope_without_encrypt_is_refused(body: bytes) -> None:
    query, _ = safe_mode.push(b"{}")
    with pytest.raises(SafeModeError) as refused:
        opened(query, body)
    assert refused.value.code in ("body_invalid", "encrypt_missing")


def test_the_aes_key_is_43_base64_characters() -> None:
    assert len(aes_key(safe_mode.ENCODING_AES_KEY)) == 32
    for bad in ("", "a" * 42, "a" * 44, "!" * 43):
        with pytest.raises(SafeModeError):
            aes_key(bad)


def test_aliyun_receipt_token_is_an_hmac_of_the_secret() -> None:
    expected = hmac.new(
        b"s3cret", b"careloop/notifications/aliyun-sms-receipts/v1", hashlib.sha256
    ).hexdigest()
    assert aliyun_sms.receipt_token("s3cret") == expected
    assert aliyun_sms.verify_receipt_token("s3cret", expected) is True
    assert aliyun_sms.verify_receipt_token("s3cret", "s3cret") is False  # not the secret itself
    assert aliyun_sms.verify_receipt_token("s3cret", expected.upper()) is False
    assert aliyun_sms.verify_receipt_token("s3cret", None) is False
    assert aliyun_sms.verify_receipt_token("", aliyun_sms.receipt_token("")) is False
    assert aliyun_sms.verify_receipt_token("s3cret", "秘密") is False


def guard(**kwargs: object) -> CallbackGuard:
    # Redis is never reached by these rules (the client connects on first use)
    return CallbackGuard(Redis(), "t:", window_seconds=300, clock=lambda: NOW, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("offset", [0, 300, -300])
def test_timestamps_within_the_window_pass(offset: int) -> None:
    guard().check_timestamp(str(NOW + offset))


@pytest.mark.parametrize("timestamp", [str(NOW - 301), str(NOW + 301), "", "x", "-5", "1" * 20])
def test_timestamps_outside_the_window_are_refused(timestamp: str) -> None:
    with pytest.raises(Unauthorized):
        guard().check_timestamp(timestamp)


def request(peer: str, forwarded: str | None = None) -> Request:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers}
    return Request({**scope, "client": (peer, 1234), "query_string": b""})


def test_forwarded_for_counts_only_from_a_trusted_proxy() -> None:
    plain = guard(allowed_networks=["10.0.0.0/8"])
    assert plain.source_address(request("192.0.2.1", "10.1.1.1")) == "192.0.2.1"
    with pytest.raises(Forbidden):
        plain.check_source(request("192.0.2.1", "10.1.1.1"))
    plain.check_source(request("10.9.9.9"))

    behind = guard(allowed_networks=["10.0.0.0/8"], trusted_proxies=["172.16.0.0/12"])
    assert behind.source_address(request("172.16.0.5", "1.2.3.4, 10.1.1.1")) == "10.1.1.1"
    assert behind.source_address(request("172.16.0.5", "10.1.1.1, 1.2.3.4")) == "1.2.3.4"
    assert behind.source_address(request("172.16.0.5", "10.1.1.1, 172.16.0.9")) == "10.1.1.1"
    behind.check_source(request("172.16.0.5", "10.1.1.1"))
    with pytest.raises(Forbidden):
        behind.check_source(request("172.16.0.5", "10.1.1.1, 1.2.3.4"))
    guard().check_source(request("203.0.113.9"))  # no allowlist: any address


def test_ipv4_mapped_addresses_match_ipv4_networks() -> None:
    guard(allowed_networks=["10.0.0.0/8"]).check_source(request("::ffff:10.0.0.1"))

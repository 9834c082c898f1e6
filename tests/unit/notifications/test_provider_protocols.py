"""Pure protocol rules of the Aliyun SMS and WeChat adapters: signing, error tables, receipts."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.notifications.providers import aliyun_sms, wechat
from services.notifications.providers.base import Receipt
from tests.support.provider_servers import aliyun_signature

pytestmark = pytest.mark.unit

# The worked example of Aliyun's SMS "HTTP protocol and signature" page (SendSms, testSecret).
DOC_PARAMS = {
    "AccessKeyId": "testId",
    "Action": "SendSms",
    "Format": "XML",
    "OutId": "123",
    "PhoneNumbers": "15300000001",
    "RegionId": "cn-hangzhou",
    "SignName": "阿里云短信测试专用",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
    "SignatureVersion": "1.0",
    "TemplateCode": "SMS_71390007",
    "TemplateParam": '{"customer":"test"}',
    "Timestamp": "2017-07-12T02:42:19Z",
    "Version": "2017-05-25",
}
DOC_STRING_TO_SIGN = (
    "GET&%2F&AccessKeyId%3DtestId%26Action%3DSendSms%26Format%3DXML%26OutId%3D123"
    "%26PhoneNumbers%3D15300000001%26RegionId%3Dcn-hangzhou%26SignName%3D"
    "%25E9%2598%25BF%25E9%2587%258C%25E4%25BA%2591%25E7%259F%25AD%25E4%25BF%25A1"
    "%25E6%25B5%258B%25E8%25AF%2595%25E4%25B8%2593%25E7%2594%25A8"
    "%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D45e25e9b-0a6f-4070-8c85-2956eda1b466"
    "%26SignatureVersion%3D1.0%26TemplateCode%3DSMS_71390007"
    "%26TemplateParam%3D%257B%2522customer%2522%253A%2522test%2522%257D"
    "%26Timestamp%3D2017-07-12T02%253A42%253A19Z%26Version%3D2017-05-25"
)
DOC_SIGNATURE = "zJDF+Lrzhj/ThnlvIToysFRq6t4="


# --- Aliyun signing -------------------------------------------------------------------------


def test_aliyun_string_to_sign_matches_the_documented_example() -> None:
    assert aliyun_sms.string_to_sign("GET", DOC_PARAMS) == DOC_STRING_TO_SIGN


def test_aliyun_signature_matches_the_documented_example() -> None:
    assert aliyun_sms.sign("GET", DOC_PARAMS, "testSecret") == DOC_SIGNATURE


def test_aliyun_signature_ignores_a_signature_parameter_and_depends_on_method_and_key() -> None:
    with_signature = {**DOC_PARAMS, "Signature": "whatever"}
    assert aliyun_sms.sign("GET", with_signature, "testSecret") == DOC_SIGNATURE
    assert aliyun_sms.sign("POST", DOC_PARAMS, "testSecret") != DOC_SIGNATURE
    assert aliyun_sms.sign("GET", DOC_PARAMS, "otherSecret") != DOC_SIGNATURE


def test_test_server_signature_agrees_with_the_documented_example() -> None:
    assert aliyun_signature("GET", DOC_PARAMS, "testSecret") == DOC_SIGNATURE


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        ("a b", "a%20b"),
        ("a*b", "a%2Ab"),
        ("a~b", "a~b"),
        ("a+b", "a%2Bb"),
        ("-_.", "-_."),
        ("/:=&", "%2F%3A%3D%26"),
        ("中", "%E4%B8%AD"),
    ],
)
def test_aliyun_percent_encoding_follows_rfc3986(raw: str, encoded: str) -> None:
    assert aliyun_sms.percent_encode(raw) == encoded


# --- Aliyun error table ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status", "retryable"),
    [
        ("isv.BUSINESS_LIMIT_CONTROL", 200, True),
        ("isv.DAY_LIMIT_CONTROL", 200, True),
        ("Throttling.User", 400, True),
        ("SignatureNonceUsed", 400, True),
        ("isp.SYSTEM_ERROR", 200, True),
        ("InternalError", 500, True),
        ("isv.MOBILE_NUMBER_ILLEGAL", 200, False),
        ("isv.TEMPLATE_MISSING_PARAMETERS", 200, False),
        ("isv.SMS_TEMPLATE_ILLEGAL", 200, False),
        ("isv.SMS_SIGNATURE_ILLEGAL", 200, False),
        ("isv.INVALID_PARAMETERS", 200, False),
        ("isv.BLACK_KEY_CONTROL_LIMIT", 200, False),
        ("isv.AMOUNT_NOT_ENOUGH", 200, False),
        ("isp.RAM_PERMISSION_DENY", 200, False),
        ("InvalidAccessKeyId.NotFound", 404, False),
        ("SignatureDoesNotMatch", 400, False),
        ("SignatureDoesNotMatch", 500, False),  # a known permanent code beats the status
        ("Some.UnknownCode", 400, False),
        ("Some.UnknownCode", 503, True),
        ("Some.UnknownCode", 429, True),
    ],
)
def test_aliyun_error_codes_map_to_retryable_or_not(
    code: str, status: int, retryable: bool
) -> None:
    assert aliyun_sms.is_retryable(code, status) is retryable


def test_aliyun_error_tables_do_not_overlap() -> None:
    assert not aliyun_sms.RETRYABLE_CODES & aliyun_sms.PERMANENT_CODES


# --- Aliyun receipts ------------------------------------------------------------------------

CHINA = timezone(timedelta(hours=8))


def report(**overrides: object) -> dict[str, object]:
    item: dict[str, object] = {
        "phone_number": "13812345678",
        "send_time": "2017-01-01 00:00:00",
        "report_time": "2017-01-01 00:00:05",
        "success": True,
        "err_code": "DELIVERED",
        "err_msg": "用户接收成功",
        "sms_size": "1",
        "biz_id": "12345^0",
        "out_id": "attempt-1",
    }
    item.update(overrides)
    return item


def test_aliyun_receipt_of_a_delivered_message() -> None:
    assert aliyun_sms.parse_receipts([report()]) == [
        Receipt(
            provider="aliyun",
            provider_message_id="12345^0",
            delivered=True,
            reported_at=datetime(2017, 1, 1, 0, 0, 5, tzinfo=CHINA),
        )
    ]


def test_aliyun_receipt_of_an_undelivered_message_carries_the_error() -> None:
    failed = report(success=False, err_code="MK:0001", err_msg="空号", biz_id="777^0")
    (receipt,) = aliyun_sms.parse_receipts([failed])
    assert receipt.provider_message_id == "777^0"
    assert receipt.delivered is False
    assert (receipt.error_code, receipt.error_message) == ("MK:0001", "空号")


def test_aliyun_receipts_skip_malformed_items_and_keep_the_rest() -> None:
    body = [
        report(biz_id="1^0"),
        "not an object",
        None,
        report(biz_id=None),
        report(biz_id=""),
        report(biz_id=True),
        report(success="maybe"),
        report(success=None),
        {"biz_id": "2^0"},
        report(biz_id="3^0", success="false", report_time="yesterday"),
    ]
    receipts = aliyun_sms.parse_receipts(body)
    assert [(r.provider_message_id, r.delivered) for r in receipts] == [
        ("1^0", True),
        ("3^0", False),
    ]
    assert receipts[1].reported_at is None


@pytest.mark.parametrize("body", [None, "[]", 42, {"biz_id": None}, [], b"[{}]", {}])
def test_aliyun_receipts_of_malformed_bodies_are_empty(body: object) -> None:
    assert aliyun_sms.parse_receipts(body) == []


# --- WeChat ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("errcode", "retryable"),
    [
        (43101, False),
        (40003, False),
        (47003, False),
        (40037, False),
        (41030, False),
        (40125, False),
        (-1, True),
        (45009, True),
        (45047, True),
        (43108, True),
        (40001, True),  # still refused after a token refresh
        (99999, False),
    ],
)
def test_wechat_errcodes_map_to_retryable_or_not(errcode: int, retryable: bool) -> None:
    assert wechat.is_retryable(errcode) is retryable


@pytest.mark.parametrize(
    ("language", "lang"),
    [("zh-CN", "zh_CN"), ("zh", "zh_CN"), ("en", "en_US"), ("en-US", "en_US"), ("EN_gb", "en_US")],
)
def test_wechat_language_codes(language: str, lang: str) -> None:
    assert wechat.language_code(language) == lang


def push_signature(token: str, timestamp: str, nonce: str) -> str:
    joined = "".join(sorted([token, timestamp, nonce])).encode()
    return hashlib.sha1(joined).hexdigest()  # noqa: S324 - the push protocol's hash


def test_wechat_push_signature_verifies() -> None:
    good = push_signature("careloop-token", "1714000000", "123456")
    assert wechat.verify_signature("careloop-token", good, "1714000000", "123456") is True


@pytest.mark.parametrize(
    ("token", "signature", "timestamp", "nonce"),
    [
        ("careloop-token", push_signature("other", "1714000000", "123456"), "1714000000", "123456"),
        ("careloop-token", push_signature("careloop-token", "1", "123456"), "1714000000", "123456"),
        ("careloop-token", push_signature("careloop-token", "1714000000", "9"), "1714000000", "1"),
        ("careloop-token", "", "1714000000", "123456"),
        ("careloop-token", "签名", "1714000000", "123456"),
        ("", push_signature("", "1714000000", "123456"), "1714000000", "123456"),
        ("careloop-token", None, "1714000000", "123456"),
    ],
)
def test_wechat_push_signature_rejects(
    token: str, signature: str, timestamp: str, nonce: str
) -> None:
    assert wechat.verify_signature(token, signature, timestamp, nonce) is False


def sent_event(items: object, **overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "ToUserName": "gh_123456789abc",
        "FromUserName": "o7esq5PHRGBQYmeNyfG064wEFVpQ",
        "CreateTime": "1620963428",
        "MsgType": "event",
        "Event": "subscribe_msg_sent_event",
        "List": items,
    }
    body.update(overrides)
    return body


OK_ITEM = {
    "TemplateId": "tpl",
    "MsgID": "1864323726461255680",
    "ErrorCode": "0",
    "ErrorStatus": "success",
}
FAILED_ITEM = {
    "TemplateId": "tpl",
    "MsgID": 1864323726461255681,
    "ErrorCode": 10005,
    "ErrorStatus": "fail:user refuse to accept the msg",
}


def test_wechat_sent_event_with_one_item_as_an_object() -> None:
    assert wechat.parse_sent_event(sent_event(OK_ITEM)) == [
        Receipt(
            provider="wechat",
            provider_message_id="1864323726461255680",
            delivered=True,
            reported_at=datetime.fromtimestamp(1620963428, UTC),
        )
    ]


def test_wechat_sent_event_with_a_list_keeps_failures_and_skips_malformed_items() -> None:
    body = sent_event(
        [OK_ITEM, FAILED_ITEM, {"MsgID": "x", "ErrorCode": 0}, "junk", {}], CreateTime=1
    )
    ok, failed = wechat.parse_sent_event(body)
    assert (ok.provider_message_id, ok.delivered, ok.error_code) == (
        "1864323726461255680",
        True,
        None,
    )
    assert failed.provider_message_id == "1864323726461255681"
    assert failed.delivered is False
    assert failed.error_code == "10005"
    assert failed.error_message == "fail:user refuse to accept the msg"


def test_wechat_sent_event_in_the_xml_shaped_nesting() -> None:
    body = sent_event(None)
    del body["List"]
    body["SubscribeMsgSentEvent"] = {"List": [OK_ITEM]}
    assert [r.provider_message_id for r in wechat.parse_sent_event(body)] == ["1864323726461255680"]


@pytest.mark.parametrize(
    "body",
    [
        None,
        "subscribe_msg_sent_event",
        [OK_ITEM],
        sent_event(OK_ITEM, Event="subscribe_msg_popup_event"),
        sent_event("not a list"),
        sent_event(None),
        sent_event([None, 3]),
        sent_event({"MsgID": "", "ErrorCode": 0}),
        sent_event({"MsgID": "1", "ErrorCode": None}),
        sent_event({"MsgID": True, "ErrorCode": 0}),
    ],
)
def test_wechat_malformed_sent_events_yield_nothing(body: object) -> None:
    assert wechat.parse_sent_event(body) == []


def test_wechat_sent_event_with_a_bad_create_time_still_counts() -> None:
    (receipt,) = wechat.parse_sent_event(sent_event(OK_ITEM, CreateTime="soon"))
    assert receipt.delivered is True
    assert receipt.reported_at is None

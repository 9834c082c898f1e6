"""Log lines are JSON, carry the request id, and never hold a full national ID or phone."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from shared.logging import configure_logging, get_logger, redact_processor
from shared.privacy import mask_national_id, mask_phone
from tests.factories import make_national_id, make_phone

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.contextvars.clear_contextvars()
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


def _lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    out = capsys.readouterr().out
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_every_channel_is_redacted_and_carries_the_request_id(
    capsys: pytest.CaptureFixture[str],
) -> None:
    nid, phone = make_national_id(seed=41), make_phone(seed=41)
    other_phone = make_phone(seed=42)
    configure_logging("test-svc", "DEBUG")
    structlog.contextvars.bind_contextvars(request_id="req-123")
    log = get_logger("careloop.test")

    message = "patient " + nid + " called from " + phone
    log.info(message)
    log.bind(national_id=nid).info("bound", phone=phone)
    log.info("nested", payload={"patient": {"ids": [nid], "contact": (phone,)}})
    log.info("numbers", phone_int=int(phone), id_int=int(nid[:17] + "1"))
    try:
        raise ValueError("bad id " + nid + " phone " + phone)
    except ValueError:
        log.exception("lookup.failed")
    logging.getLogger("uvicorn.error").warning("caller %s gave %s", other_phone, nid)

    lines = _lines(capsys)
    raw = json.dumps(lines)
    assert len(lines) == 6
    assert nid not in raw
    assert phone not in raw
    assert other_phone not in raw
    assert nid[:17] not in raw  # not even the digits before the check character

    first, bound, nested, numbers, failed, foreign = lines
    for line in lines:
        assert line["service"] == "test-svc"
        assert line["request_id"] == "req-123"
        assert line["timestamp"].endswith("Z")
        assert {"level", "event", "logger"} <= line.keys()
    assert first["event"] == f"patient {mask_national_id(nid)} called from {mask_phone(phone)}"
    assert first["logger"] == "careloop.test"
    assert first["level"] == "info"
    assert bound["national_id"] == mask_national_id(nid)
    assert bound["phone"] == mask_phone(phone)
    assert nested["payload"] == {
        "patient": {"ids": [mask_national_id(nid)], "contact": [mask_phone(phone)]}
    }
    assert numbers["phone_int"] == mask_phone(phone)
    assert numbers["id_int"] == mask_national_id(nid[:17] + "1")
    assert failed["level"] == "error"
    assert (
        f"ValueError: bad id {mask_national_id(nid)} phone {mask_phone(phone)}"
        in (failed["exception"])
    )
    assert foreign["logger"] == "uvicorn.error"
    assert foreign["level"] == "warning"
    assert foreign["event"] == f"caller {mask_phone(other_phone)} gave {mask_national_id(nid)}"


def test_stdlib_exception_is_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    nid = make_national_id(seed=43)
    configure_logging("test-svc")
    try:
        raise RuntimeError("cannot load " + nid)
    except RuntimeError:
        logging.getLogger("aiokafka").exception("consumer crashed")
    (line,) = _lines(capsys)
    assert nid not in json.dumps(line)
    assert f"RuntimeError: cannot load {mask_national_id(nid)}" in line["exception"]
    assert line["logger"] == "aiokafka"


def test_configure_twice_gives_one_line_and_level_filters(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("first")
    configure_logging("second", "WARNING")
    log = get_logger("careloop.test")
    log.info("dropped")
    logging.getLogger("pymongo").info("dropped too")
    log.warning("kept", n=1)
    lines = _lines(capsys)
    assert [line["event"] for line in lines] == ["kept"]
    assert lines[0]["service"] == "second"
    assert lines[0]["n"] == 1


def test_console_renderer_is_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    nid, phone = make_national_id(seed=44), make_phone(seed=44)
    configure_logging("test-svc", json=False)
    structlog.contextvars.bind_contextvars(request_id="req-console")
    try:
        raise ValueError(nid)
    except ValueError:
        get_logger("careloop.test").exception("console " + phone, national_id=nid)
    out = capsys.readouterr().out
    assert nid not in out
    assert phone not in out
    assert mask_phone(phone) in out
    assert mask_national_id(nid) in out
    assert "req-console" in out
    with pytest.raises(json.JSONDecodeError):
        json.loads(out.splitlines()[0])


def test_redact_processor_stringifies_unknown_objects() -> None:
    phone = make_phone(seed=45)

    class Patient:
        def __repr__(self) -> str:
            return f"Patient(phone={phone})"

    event = redact_processor(None, "info", {"event": "x", "patient": Patient(), "n": 7})
    assert event == {"event": "x", "patient": f"Patient(phone={mask_phone(phone)})", "n": 7}


# --- secrets (security review, issue 13) ----------------------------------------------------

SECRET = "S3cr3t-value-Zq9"


def test_httpx_request_urls_are_not_logged_at_info(capsys: pytest.CaptureFixture[str]) -> None:
    """httpx logs every request's URL at INFO: code2session carries ``secret=`` in it."""
    configure_logging("gateway", "INFO")
    url = f"https://api.weixin.qq.com/sns/jscode2session?appid=wx1&secret={SECRET}&js_code=c1"
    for name in ("httpx", "httpcore.http11"):
        logging.getLogger(name).info('HTTP Request: GET %s "HTTP/1.1 200 OK"', url)
    logging.getLogger("httpx").warning("retrying %s", url)
    (line,) = _lines(capsys)
    assert SECRET not in json.dumps(line)
    assert "c1" not in line["event"]  # the login code is a credential too
    assert line["event"] == (
        "retrying https://api.weixin.qq.com/sns/jscode2session"
        "?appid=[redacted]&secret=[redacted]&js_code=[redacted]"
    )


def test_query_values_and_secret_keys_are_masked(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("notifications", "INFO")
    log = get_logger("http")
    # shared.http's access line, and uvicorn's should it be switched on
    log.info("http.request", path="/v1/x/receipts", query=f"token={SECRET}&page=2")
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "10.0.0.1:5000", "POST", f"/v1/x?token={SECRET}", "1.1", 200
    )
    log.info(
        "provider.called",
        wechat_app_secret=SECRET,
        access_token=SECRET,
        password=SECRET,
        nested={"msg_signature": SECRET, "items": [f"GET /y?sign={SECRET}"]},
        mongo=f"mongodb://careloop:{SECRET}@db-0:27017/?replicaSet=rs0",
        code="booking_full",  # problem codes and flags are not secrets
        token=True,
    )
    lines = _lines(capsys)
    assert len(lines) == 3
    assert SECRET not in json.dumps(lines)
    access, uvicorn_access, called = lines
    assert access["query"] == "token=[redacted]&page=[redacted]"
    assert access["path"] == "/v1/x/receipts"
    assert "POST /v1/x?token=[redacted] HTTP/1.1" in uvicorn_access["event"]
    assert called["wechat_app_secret"] == called["access_token"] == "[redacted]"
    assert called["nested"] == {"msg_signature": "[redacted]", "items": ["GET /y?sign=[redacted]"]}
    assert called["mongo"] == "mongodb://careloop:[redacted]@db-0:27017/?replicaSet=[redacted]"
    assert (called["code"], called["token"]) == ("booking_full", True)

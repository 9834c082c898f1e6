"""make up's settings and the surge benchmark's pure parts (no processes, no I/O)."""

from __future__ import annotations

import pytest

from benchmarks.surge.crowd import Answer
from benchmarks.surge.report import label, percentile
from benchmarks.surge.seed import national_id, source_address
from devstack.processes import PortTaken
from devstack.up import DEFAULT_PORTS, DEFAULT_WORKERS, configured_ports, configured_workers
from shared.privacy import is_valid_national_id

pytestmark = pytest.mark.unit


def test_ports_and_workers_default_and_follow_the_environment() -> None:
    assert configured_ports({}) == DEFAULT_PORTS
    assert configured_ports({"CARELOOP_APPOINTMENTS_PORT": "9101"})["appointments"] == 9101
    workers = configured_workers({})
    assert workers["gateway"] == DEFAULT_WORKERS["gateway"]
    assert workers["referrals"] == 1
    assert configured_workers({"CARELOOP_APPOINTMENTS_WORKERS": "3"})["appointments"] == 3
    with pytest.raises(ValueError, match="CARELOOP_GATEWAY_WORKERS must be 1 or more"):
        configured_workers({"CARELOOP_GATEWAY_WORKERS": "0"})


def test_a_taken_port_is_named_with_what_to_do() -> None:
    message = str(PortTaken(8080, "gateway", "start on another port: CARELOOP_GATEWAY_PORT=8081"))
    assert "port 8080 (gateway) is already in use" in message
    assert "ss -ltnp 'sport = :8080'" in message
    assert "CARELOOP_GATEWAY_PORT=8081" in message


def test_every_surge_patient_has_a_valid_id_and_an_address_of_their_own() -> None:
    count = 20_000
    ids = {national_id(n) for n in range(count)}
    addresses = {source_address(n) for n in range(count)}
    assert len(ids) == len(addresses) == count
    assert all(is_valid_national_id(i) for i in list(ids)[:2000])
    assert all(a.startswith("127.1.") and not a.endswith((".0", ".255")) for a in addresses)


def test_answers_are_told_apart_by_status_and_code() -> None:
    assert label(Answer(409, "slot_sold_out", 0, 0)) == "409 slot_sold_out"
    assert label(Answer(409, "already_booked", 0, 0)) == "409 already_booked"
    assert label(Answer(503, "write_conflict", 0, 0)) == "503 write_conflict"
    assert label(Answer(0, "ConnectError", 0, 0)) == "no answer (ConnectError)"
    assert label(Answer(202, "", 0, 0)) == "202 queued"
    assert label(Answer(429, "rate_limited", 0, 0)) == "429 rate_limited"
    assert percentile([0.1 * n for n in range(1, 101)], 99) == pytest.approx(10.0)
    assert percentile([], 50) == 0.0

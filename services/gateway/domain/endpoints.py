"""Endpoint classes of the rate limits: which budget a request spends.

Only calls that take a bookable number spend the booking budget (book, reschedule, join
the waitlist, claim a waitlist offer, accept a rebooking offer): release-time surges are
about those. Other appointment commands a person makes by hand (cancel, check in, leave
the waitlist) and staff adding numbers (加号) have a class of their own, so checking in
never meets a budget spent on booking.
"""

from __future__ import annotations

import re
from enum import StrEnum


class EndpointClass(StrEnum):
    LOGIN_CODE = "login_code"  # POST /v1/auth/otp: sends an SMS
    LOGIN = "login"  # POST /v1/auth/login/*, /v1/auth/refresh
    BOOKING = "booking"  # book, reschedule, join the waitlist, claim an offer
    APPOINTMENT = "appointment"  # cancel, check in, leave the waitlist, extra numbers
    WRITE = "write"  # any other change
    READ = "read"  # GET, HEAD, OPTIONS
    STREAM = "stream"  # opening the inbox's server-sent event stream


_LOGIN_CODE = re.compile(r"^/v1/auth/otp(/.*)?$")
_LOGIN = re.compile(r"^/v1/auth/(login(/.*)?|refresh)$")
_STREAM = re.compile(r"^/v1/notifications/(me/)?inbox/stream$")
_BOOKING = re.compile(  # POST only
    r"^/v1/appointments/("
    r"appointments(/[^/]+/reschedule)?"  # book; move a booking to another slot
    r"|waitlist(/[^/]+/confirm)?"  # join the waitlist; claim the slot it offers
    r"|rebooking-offers/[^/]+/accept"  # claim a priority rebooking offer
    r")$"
)
_APPOINTMENT = re.compile(
    r"^/v1/appointments/("
    r"(appointments|waitlist)(/.*)?"  # cancel, check in; leave the waitlist
    r"|rebooking-offers(/.*)?"  # decline an offer
    r"|schedules/[^/]+/extra-numbers"  # 加号 (staff)
    r")$"
)
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SLASHES = re.compile(r"/{2,}")


def classify(method: str, path: str) -> EndpointClass:
    """The endpoint class of a request (``//`` and a trailing ``/`` do not change it)."""
    method = method.upper()
    path = _SLASHES.sub("/", path)
    path = path.rstrip("/") or "/"
    if method == "GET" and _STREAM.match(path):
        return EndpointClass.STREAM
    if method in _READ_METHODS:
        return EndpointClass.READ
    if method == "POST" and _LOGIN_CODE.match(path):
        return EndpointClass.LOGIN_CODE
    if method == "POST" and _LOGIN.match(path):
        return EndpointClass.LOGIN
    if method == "POST" and _BOOKING.match(path):
        return EndpointClass.BOOKING
    if _APPOINTMENT.match(path):
        return EndpointClass.APPOINTMENT
    return EndpointClass.WRITE

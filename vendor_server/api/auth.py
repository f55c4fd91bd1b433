"""School API authentication (Bearer API key) and per-school throttling."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from rest_framework import exceptions, status
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from clms_updates import guessing, logcontext
from vendor_server import fastpath
from vendor_server.schools import KeyOwner, owner_of_key


class SchoolUser:
    """The request's user when a school agent calls (not a Django user)."""

    is_authenticated = True
    is_staff = False
    is_anonymous = False

    def __init__(self, owner: KeyOwner) -> None:
        self.owner = owner
        self.pk = owner.school_id

    def __str__(self) -> str:
        return f"school {self.owner.school_id}"


class SchoolKeyAuthentication(BaseAuthentication):
    """``Authorization: Bearer <key>``; records the check-in of every good request."""

    def authenticate(self, request: Request) -> tuple[SchoolUser, KeyOwner]:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise exceptions.AuthenticationFailed(
                {
                    "detail": "No school API key was sent. Send the header "
                    "`Authorization: Bearer <key>` with the key the vendor gave you.",
                    "code": "missing_key",
                }
            )
        try:
            guessing.refuse_if_locked(request, guessing.SCHOOL_KEY)
        except guessing.TooManyFailures as e:
            raise exceptions.Throttled(wait=e.minutes * 60, detail=str(e)) from None
        owner = owner_of_key(key.strip())
        if owner is None:
            guessing.failed(request, guessing.SCHOOL_KEY)
            raise exceptions.AuthenticationFailed(
                {
                    "detail": "This API key is not known to the vendor server. Check "
                    "UPDATES_VENDOR_API_KEY, or ask the vendor for the current key.",
                    "code": "invalid_key",
                }
            )
        if owner.revoked:
            raise exceptions.PermissionDenied(
                {
                    "detail": "This school's API key was revoked by the vendor. Ask the "
                    "vendor for a new key.",
                    "code": "revoked_key",
                }
            )
        logcontext.set_field("school", owner.school_id)
        # The throttle counter and the check-in are batched together (see
        # fastpath); the throttle class then only compares the count.
        throttle = SchoolRateThrottle.current()
        request.vendor_request_count = fastpath.count_and_checkin(  # type: ignore[attr-defined]
            throttle.window_key(owner.school_id),
            throttle.period,
            throttle.limit,
            owner.school_id,
            request.META.get("HTTP_X_CLMS_VERSION", ""),
            request.META.get("HTTP_X_AGENT_VERSION", ""),
        )
        return SchoolUser(owner), owner

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="clms-vendor"'


class IsSchool(BasePermission):
    """Only an authenticated school agent."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.auth, KeyOwner)


class Throttled429(exceptions.APIException):
    """429 with ``Retry-After`` and the project's JSON error shape."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS

    def __init__(self, wait: int) -> None:
        self.wait = wait
        super().__init__(
            {
                "detail": f"Too many requests from this school; try again in {wait} s.",
                "code": "throttled",
            }
        )


def _parse_rate(rate: str) -> tuple[int, int]:
    count, _, period = rate.partition("/")
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}[period.strip()[:1]]
    return int(count), seconds


class SchoolRateThrottle(BaseThrottle):
    """A fixed-window counter per school (one cache increment per request).

    DRF's ``SimpleRateThrottle`` rewrites a list of every request time per
    request, which is costly at high rates; a counter is O(1).
    """

    def __init__(self) -> None:
        rates: dict[str, str] = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]  # type: ignore[assignment]
        rate = rates["vendor_school"]
        self.limit, self.period = _parse_rate(rate)
        self.retry_after = 0

    @classmethod
    def current(cls) -> SchoolRateThrottle:
        return cls()

    def window_key(self, school_id: int, now: float | None = None) -> str:
        window = int((now or time.time()) // self.period)
        return f"clms:vendor:throttle:{school_id}:{window}"

    def allow_request(self, request: Request, view: Any) -> bool:
        owner = request.auth
        if not isinstance(owner, KeyOwner):
            return True
        count = getattr(request, "vendor_request_count", None)
        if count is None:
            count = fastpath.count_request(
                self.window_key(owner.school_id), self.period
            )
        if count <= self.limit:
            return True
        now = time.time()
        self.retry_after = max(1, int(self.period - now % self.period + 0.999))
        return False

    def wait(self) -> float:
        return float(self.retry_after)

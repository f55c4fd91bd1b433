"""API throttles that keep the API up when their counters' cache (Redis) is down.

DRF's throttles keep their counters in the default cache. With Redis down
every throttled route would answer 500, while the pages and ``/healthz``
(which say Redis is down) keep working. These let the request through
instead and log it: a throttle protects the server, it must not be the
thing that takes the API down.
"""

from __future__ import annotations

import logging
from typing import Any

from rest_framework import throttling

logger = logging.getLogger(__name__)


class _Degrading:
    """Allow the request (logged) when the throttle's cache cannot be reached."""

    def allow_request(self, request: Any, view: Any) -> bool:
        try:
            return bool(super().allow_request(request, view))  # type: ignore[misc]
        except Exception as e:  # the cache backend's own errors (Redis down)
            logger.warning(
                "API throttle not applied: its cache cannot be reached (%s: %s)",
                type(e).__name__,
                e,
            )
            return True


class AnonRateThrottle(_Degrading, throttling.AnonRateThrottle):
    """DRF's anonymous-client throttle (``API_THROTTLE_ANON``), degrading."""


class UserRateThrottle(_Degrading, throttling.UserRateThrottle):
    """DRF's per-user throttle (``API_THROTTLE_USER``), degrading."""


class ScopedRateThrottle(_Degrading, throttling.ScopedRateThrottle):
    """DRF's per-scope throttle, degrading."""

"""What every updates API view shares: who may call it, and its throttle.

Feature APIs (``updates.enforcement.api``, ``updates.offline.api``) build on
these too. An ``ActionRefused`` raised by an action becomes a 400/403/409
answer naming the field (``clms_updates.api.exception_handler``).
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.permissions import IsAuthenticated
from rest_framework.views import APIView

from clms_updates.permissions import IsSchoolViewer
from clms_updates.throttling import ScopedRateThrottle


class UpdatesThrottle(ScopedRateThrottle):
    """Per-user limit on every /api/updates/ route (``UPDATES_API_THROTTLE``)."""

    scope_attr = "throttle_scope"

    def get_rate(self) -> str | None:
        return str(settings.UPDATES_API_THROTTLE)


class UpdatesAPIView(APIView):
    """Base: authenticated viewers read, school admins write, always throttled."""

    permission_classes = [IsAuthenticated, IsSchoolViewer]
    throttle_classes = [UpdatesThrottle]
    throttle_scope = "updates"

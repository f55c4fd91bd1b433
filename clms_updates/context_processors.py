"""Template context shared by every page."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from clms_updates.permissions import is_school_admin


def role(request: HttpRequest) -> dict[str, Any]:
    """Which role this process plays, and whether the user may change things."""
    return {
        "clms_role": settings.CLMS_ROLE,
        "school_role_enabled": settings.SCHOOL_ROLE_ENABLED,
        "vendor_role_enabled": settings.VENDOR_ROLE_ENABLED,
        "user_is_school_admin": is_school_admin(request.user)
        if hasattr(request, "user")
        else False,
    }

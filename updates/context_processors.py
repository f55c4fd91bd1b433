"""Template context of every page: the critical-update banner and blocking dialog."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from clms_updates.permissions import is_school_admin, is_school_viewer
from updates import enforcement as enforcing


def enforcement(request: HttpRequest) -> dict[str, Any]:
    """``clms_enforcement``: the pending critical release, deadline, block, override.

    Nothing for anonymous users and outside the school role, so the login page
    costs no queries. Include ``updates/enforcement/banner.html`` in the base
    template to show the countdown banner (and the dialog when blocked).
    """
    user = getattr(request, "user", None)
    if not settings.SCHOOL_ROLE_ENABLED or user is None or not is_school_viewer(user):
        # Always present, so templates (the blocking dialog shown to anyone
        # while blocked) can name it without failing.
        return {"clms_enforcement": None}
    state = enforcing.enforcement_state()
    if not state.pending:
        return {"clms_enforcement": None}
    return {
        "clms_enforcement": state,
        "clms_enforcement_can_override": is_school_admin(user),
        "clms_override_max_hours": settings.UPDATES_OVERRIDE_MAX_HOURS,
    }

"""Template helpers of the school pages: school time, durations, the update banner."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django import template
from django.conf import settings

from clms_updates.permissions import is_school_viewer
from updates import presenting
from updates.scheduling import SCHOOL_TIME_FORMAT, format_school_time

register = template.Library()

STATE_BADGES = {
    "scheduled": "info",
    "running": "info",
    "rolling_back": "warn",
    "succeeded": "ok",
    "rolled_back": "warn",
    "failed": "err",
    "cancelled": "",
    "ok": "ok",
    "refused": "err",
    "offline": "warn",
    "error": "err",
}


@register.filter
def school_time(value: datetime | None, fmt: str = SCHOOL_TIME_FORMAT) -> str:
    """An aware time as the school reads it: ``Mon 30 Nov 2026, 22:00 GMT``."""
    return format_school_time(value, fmt)


@register.filter
def seconds(value: timedelta | float | int | None) -> str:
    """A duration in words: ``1 min 15 s``."""
    if isinstance(value, timedelta):
        value = value.total_seconds()
    return presenting.format_seconds(value)


@register.filter
def error_words(code: str) -> str:
    """``health_check_failed`` -> "the new version's health check failed"."""
    return presenting.error_words(code or "")


@register.filter
def badge(state: str) -> str:
    """The badge colour class of a run state or check outcome."""
    return STATE_BADGES.get(str(state), "")


@register.inclusion_tag("includes/update_banner.html", takes_context=True)
def update_banner(context: template.Context) -> dict[str, Any]:
    """The notice about an available update, on every school page.

    Optional releases can be hidden per user and release (``dismiss_banner``,
    kept as a ``BannerDismissal``); a critical one always shows, with the time
    left before its deadline.
    """
    request = context.get("request")
    user = getattr(request, "user", None)
    if (
        request is None
        or not settings.SCHOOL_ROLE_ENABLED
        or user is None
        or not is_school_viewer(user)
    ):
        return {"show": False}
    release = presenting.banner_release(user)
    if release is None:
        return {"show": False}
    return {
        "show": True,
        "release": release,
        "deadline": presenting.deadline_of(release),
        "next": request.get_full_path(),
        "csrf_token": context.get("csrf_token"),
        "on_manager": request.resolver_match is not None
        and request.resolver_match.view_name in ("updates:manager", "updates:schedule"),
    }


@register.simple_tag(takes_context=True)
def school_access(context: template.Context) -> str:
    """``admin``, ``viewer`` or ``""``: what the user may do on school pages."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not settings.SCHOOL_ROLE_ENABLED:
        return ""
    if context.get("user_is_school_admin"):
        return "admin"
    return "viewer" if is_school_viewer(user) else ""


@register.simple_tag(takes_context=True)
def nav_current(context: template.Context, *prefixes: str) -> str:
    """``aria-current="page"`` when the page's view name starts with a prefix."""
    match = getattr(context.get("request"), "resolver_match", None)
    name = getattr(match, "view_name", "") or ""
    if any(name == p or name.startswith(p + ":") for p in prefixes):
        return 'aria-current="page"'
    return ""

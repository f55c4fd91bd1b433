"""Who may see and change the school agent, for pages and the API alike."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from clms_updates.actions import ActionRefused, Actor
from clms_updates.constants import SCHOOL_ADMIN_GROUP, SCHOOL_VIEWER_GROUP

User = AbstractBaseUser | AnonymousUser


def _in_group(user: Any, name: str) -> bool:
    return bool(user.groups.filter(name=name).exists())


def is_school_admin(user: User) -> bool:
    """School admins (and superusers) may change things."""
    if not user.is_authenticated:
        return False
    return bool(getattr(user, "is_superuser", False)) or _in_group(
        user, SCHOOL_ADMIN_GROUP
    )


def is_school_viewer(user: User) -> bool:
    """Viewers may look; every admin is a viewer too."""
    if not user.is_authenticated:
        return False
    return is_school_admin(user) or _in_group(user, SCHOOL_VIEWER_GROUP)


def require_school_admin(actor: Actor) -> None:
    """Changes over HTTP need a school admin (shell commands and the system are trusted).

    Pages and the API check this before they call an action; every action
    checks it again, so that no new entry point can forget it.
    """
    if actor.over_http and not is_school_admin(actor.user or AnonymousUser()):
        raise ActionRefused(
            "Only a school admin may do this; ask one, or ask to be added to the "
            "school-admin group.",
            code="not_allowed",
            status=403,
        )


class IsSchoolViewer(BasePermission):
    """Read access for viewers; any change needs a school admin."""

    message = "You need to be in the school-viewer or school-admin group."

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method in SAFE_METHODS:
            return is_school_viewer(request.user)
        return is_school_admin(request.user)


class IsSchoolAdmin(BasePermission):
    """Every method needs a school admin."""

    message = "Only members of the school-admin group may do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        return is_school_admin(request.user)


# ---------------------------------------------------------------------------
# Pages: the same two groups as decorators
# ---------------------------------------------------------------------------

View = Callable[..., HttpResponse]


def _forbidden(request: HttpRequest, need: str) -> HttpResponse:
    return render(request, "forbidden.html", {"need": need}, status=403)


def viewer_required(view: View) -> View:
    """A page for school viewers and admins; others get a 403 page saying why."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not is_school_viewer(request.user):
            return _forbidden(request, "school-viewer or school-admin")
        return view(request, *args, **kwargs)

    return wrapper


def admin_required(view: View) -> View:
    """A page (or form post) for school admins only."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not is_school_admin(request.user):
            return _forbidden(request, "school-admin")
        return view(request, *args, **kwargs)

    return wrapper

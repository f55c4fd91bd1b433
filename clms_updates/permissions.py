"""Who may see and change the school agent, for pages and the API alike."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

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

"""The audit log: one call records an admin action."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.http import HttpRequest

from clms_updates.models import AuditEntry


def client_address(request: HttpRequest | None) -> str | None:
    """The caller's address as Django saw it (the proxy sets REMOTE_ADDR)."""
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def record(
    action: str,
    *,
    user: AbstractBaseUser | AnonymousUser | None = None,
    request: HttpRequest | None = None,
    target: str = "",
    **detail: Any,
) -> AuditEntry:
    """Record ``action`` by ``user`` (or the request's user) on ``target``.

    ``detail`` must be JSON-serialisable; keep secrets out of it.
    """
    if user is None and request is not None:
        user = getattr(request, "user", None)
    real_user = user if user is not None and user.is_authenticated else None
    return AuditEntry.objects.create(
        user=real_user,  # type: ignore[misc]
        username=real_user.get_username() if real_user else "",
        action=action,
        target=target,
        detail=detail,
        address=client_address(request),
    )

"""Guessing secrets is throttled: passwords, API tokens, school keys, mirror tokens.

django-axes counts failures per (username, address) and locks that pair out
for ``LOGIN_LOCKOUT_MINUTES`` after ``LOGIN_FAILURE_LIMIT`` failures. Sign-ins
(the pages and the Django admin) go through its authentication backend and
middleware. Secrets that are not passwords are counted by axes too, under one
name per kind (``API_TOKEN``, ``SCHOOL_KEY``, ``MIRROR_TOKEN``) from the
address that sent them: ``refuse_if_locked`` before checking one,
``failed`` after a wrong one. Every lock-out is audited (``auth.locked_out``).

So that a request with a good secret costs no database query (the vendor
answers every school's poll), ``failed`` also leaves a marker for the address
in the cache, and only an address with a marker is looked up in axes.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.core.cache import cache
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from clms_updates import audit
from clms_updates.actions import Actor
from clms_updates.models import AuditEntry

# The names failures of each kind are counted under (not secrets).
API_TOKEN = "(api token)"  # noqa: S105
SCHOOL_KEY = "(school key)"
MIRROR_TOKEN = "(mirror token)"  # noqa: S105


class TooManyFailures(Exception):
    """This address sent too many wrong secrets of one kind; it must wait."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.minutes = settings.LOGIN_LOCKOUT_MINUTES
        super().__init__(
            f"Too many wrong {kind.strip('()')}s were sent from this address; it is "
            f"locked out for {self.minutes} minutes. Check the secret you are "
            "sending, then try again later (an admin can lift it with `manage.py "
            "axes_reset_ip <address>`)."
        )


def _django_request(request: Any) -> HttpRequest:
    """The Django request under a DRF one (axes keeps its notes on it)."""
    return getattr(request, "_request", request)


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    """What a locked-out request is answered (``AXES_LOCKOUT_CALLABLE``).

    A sign-in: the page saying why and what to do, 429. A token or key: the
    route's own answer to the wrong secret (JSON, as its clients expect); the
    route answers 429 itself from the next request on (``refuse_if_locked``).
    """
    kind = (credentials or {}).get("username")
    if kind in (API_TOKEN, SCHOOL_KEY, MIRROR_TOKEN) and original_response is not None:
        return original_response
    return render(
        request,
        "registration/locked_out.html",
        {"minutes": settings.LOGIN_LOCKOUT_MINUTES},
        status=429,
    )


def _marker(request: HttpRequest, kind: str) -> str:
    address = request.META.get("REMOTE_ADDR") or "unknown"
    name = kind.strip("()").replace(" ", "-")
    return f"clms-guessing:{name}:{address}"


def refuse_if_locked(request: Any, kind: str) -> None:
    """Raise ``TooManyFailures`` when this address is locked out for ``kind``."""
    django_request = _django_request(request)
    try:
        marked = cache.get(_marker(django_request, kind)) is not None
    except Exception:  # the cache is down: ask axes (the database) instead
        marked = True
    if marked and AxesProxyHandler.is_locked(django_request, {"username": kind}):
        raise TooManyFailures(kind)


def failed(request: Any, kind: str) -> None:
    """Count one wrong secret of ``kind`` from this address."""
    django_request = _django_request(request)
    with contextlib.suppress(Exception):  # the marker only saves work
        cache.set(_marker(django_request, kind), 1, settings.LOGIN_LOCKOUT_MINUTES * 60)
    user_login_failed.send(
        sender=__name__, credentials={"username": kind}, request=django_request
    )


@receiver(user_locked_out)
def _audit_lockout(
    sender: Any,
    request: HttpRequest | None,
    username: str | None,
    ip_address: str,
    **kwargs: Any,
) -> None:
    """Audit a lock-out once (tries while it lasts are refused, not recorded again)."""
    since = timezone.now() - timedelta(minutes=settings.LOGIN_LOCKOUT_MINUTES)
    if AuditEntry.objects.filter(
        action="auth.locked_out",
        target=username or "",
        address=ip_address or None,
        created_at__gte=since,
    ).exists():
        return
    audit.record(
        "auth.locked_out",
        actor=Actor(user=None, address=ip_address or None, via="page"),
        target=username or "",
        minutes=settings.LOGIN_LOCKOUT_MINUTES,
        failures=settings.AXES_FAILURE_LIMIT,
    )

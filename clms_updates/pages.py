"""What every server-rendered page shares: refusals shown, safe redirects."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme

from clms_updates.actions import ActionRefused


def show_refusal(
    request: HttpRequest,
    error: ActionRefused,
    *,
    form: forms.Form | None = None,
    prefix: str = "",
    fields: dict[str, str] | None = None,
) -> None:
    """Put an action's refusal on the page: on its form field, and as a message.

    ``fields`` maps an action's field to the form's (``at`` -> ``time``).
    """
    if form is not None:
        field = (fields or {}).get(error.field or "", error.field)
        form.add_error(field if field in form.fields else None, error.message)
    messages.error(request, f"{prefix}{error.message}")


def safe_next(request: HttpRequest, default: str) -> str:
    """The ``next`` the page asked to return to, if it stays on this site."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default

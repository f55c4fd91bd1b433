"""Pages of critical deadlines: the emergency override page (grant, list, revoke).

The blocking dialog itself is rendered by ``updates.middleware`` (template
``updates/enforcement/blocked.html``); the banner comes from the context
processor ``updates.context_processors.enforcement``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from clms_updates.permissions import is_school_admin, is_school_viewer
from updates import enforcement, scheduling
from updates.models import EmergencyOverride

View = Callable[..., HttpResponse]


def viewer_only(view: View) -> View:
    """Logged in as a school viewer or admin; others get a 403 page."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not is_school_viewer(request.user):
            return render(
                request,
                "updates/forbidden.html",
                {"need": "school-viewer or school-admin"},
                status=403,
            )
        return view(request, *args, **kwargs)

    return wrapper


class OverrideForm(forms.Form):
    """Why the block must be lifted, and for how long (at most the setting)."""

    reason = forms.CharField(
        label="Reason (kept in the audit log)",
        min_length=5,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    hours = forms.FloatField(label="Hours", min_value=0.1)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limit = settings.UPDATES_OVERRIDE_MAX_HOURS
        hours = self.fields["hours"]
        assert isinstance(hours, forms.FloatField)
        hours.max_value = limit
        hours.initial = limit
        hours.help_text = f"At most {limit} hours."
        self.limit = limit

    def clean_hours(self) -> float:
        value = float(self.cleaned_data["hours"])
        if value > self.limit:
            raise forms.ValidationError(
                f"An emergency override lasts at most {self.limit} hours."
            )
        return value


class MoveForm(forms.Form):
    """A new time for the critical update, in school time."""

    at = forms.DateTimeField(
        label="New time (school time)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
    )

    def clean_at(self) -> datetime:
        value = self.cleaned_data["at"]
        naive = value.replace(tzinfo=None)
        try:
            return scheduling.local_to_utc(naive)
        except scheduling.SchedulingError as e:
            raise forms.ValidationError(str(e)) from None


@viewer_only
@require_POST
def move(request: HttpRequest) -> HttpResponse:
    """Move the scheduled critical update (earlier), before its deadline."""
    form = MoveForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(str(e) for e in form.errors.get("at", [])))
        return redirect("updates:enforcement")
    try:
        run = enforcement.move_critical_update(
            form.cleaned_data["at"], user=request.user, request=request
        )
    except scheduling.SchedulingError as e:
        messages.error(request, f"The update was not moved: {e}.")
    else:
        messages.success(
            request, f"The critical update is now scheduled (run {run.pk})."
        )
    return redirect("updates:enforcement")


@viewer_only
@require_http_methods(["GET", "POST"])
def overrides(request: HttpRequest) -> HttpResponse:
    """The override page: the deadline state, overrides with expiry, the grant form."""
    form = OverrideForm(request.POST or None)
    if request.method == "POST":
        if not is_school_admin(request.user):
            messages.error(
                request, "Only a school admin may grant an emergency override."
            )
            return redirect("updates:enforcement")
        if form.is_valid():
            try:
                override = enforcement.grant_override(
                    user=request.user,
                    reason=form.cleaned_data["reason"],
                    hours=form.cleaned_data["hours"],
                    request=request,
                )
            except enforcement.OverrideRefused as e:
                form.add_error(None, str(e))
            else:
                messages.warning(
                    request,
                    f"Emergency override granted until "
                    f"{override.expires_at:%Y-%m-%d %H:%M} UTC. Apply the critical "
                    "update before then.",
                )
                return redirect("updates:enforcement")
    return render(
        request,
        "updates/enforcement/overrides.html",
        {
            "state": enforcement.enforcement_state(),
            "overrides": EmergencyOverride.objects.all()[:50],
            "form": form,
            "move_form": MoveForm(),
            "can_override": is_school_admin(request.user),
        },
        status=400 if request.method == "POST" else 200,
    )


@viewer_only
@require_POST
def revoke(request: HttpRequest, pk: int) -> HttpResponse:
    """End an override early."""
    override = get_object_or_404(EmergencyOverride, pk=pk)
    try:
        enforcement.revoke_override(override, user=request.user, request=request)
    except enforcement.OverrideRefused as e:
        messages.error(request, str(e))
    else:
        messages.success(request, f"Override {override.pk} was revoked.")
    return redirect("updates:enforcement")

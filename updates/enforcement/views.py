"""Pages of critical deadlines: the emergency override page (grant, list, revoke, move).

The blocking dialog itself is rendered by ``updates.middleware`` (template
``updates/enforcement/blocked.html``); the banner comes from the context
processor ``updates.context_processors.enforcement``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_http_methods, require_POST

from clms_updates.actions import VIA_PAGE, ActionRefused, Actor
from clms_updates.pages import show_refusal
from clms_updates.permissions import admin_required, is_school_admin, viewer_required
from updates import actions, scheduling
from updates.enforcement.state import enforcement_state
from updates.models import EmergencyOverride
from updates.school_time import format_school_time


class OverrideForm(forms.Form):
    """Why the block must be lifted, and for how long (at most the setting)."""

    reason = forms.CharField(
        label="Reason (kept in the audit log)",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    hours = forms.FloatField(label="Hours", min_value=0.1)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limit = settings.UPDATES_OVERRIDE_MAX_HOURS
        hours = self.fields["hours"]
        hours.initial = limit
        hours.help_text = f"At most {limit} hours."


class MoveForm(forms.Form):
    """A new time for the critical update, in school time."""

    at = forms.DateTimeField(
        label="New time (school time)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
    )

    def clean_at(self) -> datetime:
        value = self.cleaned_data["at"]
        try:
            return scheduling.local_to_utc(value.replace(tzinfo=None))
        except scheduling.SchedulingError as e:
            raise forms.ValidationError(str(e)) from None


@require_POST
@admin_required
def move(request: HttpRequest) -> HttpResponse:
    """Move the scheduled critical update (earlier), before its deadline."""
    form = MoveForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(str(e) for e in form.errors.get("at", [])))
        return redirect("updates:enforcement")
    try:
        run = actions.move_critical_update(
            form.cleaned_data["at"], actor=Actor.from_request(request, VIA_PAGE)
        )
    except ActionRefused as e:
        show_refusal(request, e, prefix="The update was not moved: ")
    else:
        messages.success(
            request, f"The critical update is now scheduled (run {run.pk})."
        )
    return redirect("updates:enforcement")


@require_http_methods(["GET", "POST"])
@viewer_required
def overrides(request: HttpRequest) -> HttpResponse:
    """The override page: the deadline state, overrides with expiry, the grant form."""
    form = OverrideForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if not is_school_admin(request.user):
            messages.error(
                request, "Only a school admin may grant an emergency override."
            )
            return redirect("updates:enforcement")
        if form.is_valid():
            try:
                override = actions.grant_override(
                    actor=Actor.from_request(request, VIA_PAGE),
                    reason=form.cleaned_data["reason"],
                    hours=form.cleaned_data["hours"],
                )
            except ActionRefused as e:
                show_refusal(request, e, form=form)
                status = 409 if e.conflict else 400
            else:
                messages.warning(
                    request,
                    f"Emergency override granted until "
                    f"{format_school_time(override.expires_at)}. Apply the critical "
                    "update before then.",
                )
                return redirect("updates:enforcement")
    return render(
        request,
        "updates/enforcement/overrides.html",
        {
            "state": enforcement_state(),
            "overrides": EmergencyOverride.objects.all()[:50],
            "form": form,
            "move_form": MoveForm(),
            "can_override": is_school_admin(request.user),
        },
        status=status,
    )


@require_POST
@admin_required
def revoke(request: HttpRequest, pk: int) -> HttpResponse:
    """End an override early."""
    try:
        actions.revoke_override(pk, actor=Actor.from_request(request, VIA_PAGE))
    except ActionRefused as e:
        show_refusal(request, e)
    else:
        messages.success(request, f"Override {pk} was revoked.")
    return redirect("updates:enforcement")


urlpatterns = [
    path("", overrides, name="enforcement"),
    path("move/", move, name="critical_move"),
    path("overrides/<int:pk>/revoke/", revoke, name="override_revoke"),
]

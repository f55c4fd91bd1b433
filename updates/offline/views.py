"""The offline mode page: why the agent is offline, the bundles found, apply one."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_GET, require_POST

from clms_updates.actions import VIA_PAGE, ActionRefused, Actor
from clms_updates.pages import show_refusal
from clms_updates.permissions import admin_required, is_school_admin, viewer_required
from updates import actions
from updates.models import OfflineBundle
from updates.offline import offline_overview


@require_GET
@viewer_required
def offline_page(request: HttpRequest) -> HttpResponse:
    """Offline state (why, since when), the folders, and every bundle with its state."""
    context = offline_overview()
    context["can_apply"] = is_school_admin(request.user)
    return render(request, "updates/offline/index.html", context)


@require_POST
@admin_required
def scan(request: HttpRequest) -> HttpResponse:
    """Look at the offline folder now instead of waiting for the periodic scan."""
    try:
        touched = actions.scan_offline(actor=Actor.from_request(request, VIA_PAGE))
    except ActionRefused as e:
        show_refusal(request, e)
        return redirect("updates:offline")
    if not touched:
        messages.info(request, "No new bundle was found in the offline folder.")
    for bundle in touched:
        level = (
            messages.success
            if bundle.state == OfflineBundle.State.VERIFIED
            else messages.error
        )
        level(
            request,
            f"{bundle.file_name}: {bundle.get_state_display()}. {bundle.reason}",
        )
    return redirect("updates:offline")


@require_POST
@admin_required
def apply(request: HttpRequest, pk: int) -> HttpResponse:
    """Apply a verified bundle now (the same pipeline as an online update)."""
    try:
        run = actions.apply_bundle(
            pk,
            actor=Actor.from_request(request, VIA_PAGE),
            force=request.POST.get("force") == "on",
        )
    except ActionRefused as e:
        show_refusal(request, e, prefix="The bundle was not applied: ")
        return redirect("updates:offline")
    messages.success(
        request, f"CLMS {run.to_version} is being installed from the bundle."
    )
    return redirect("updates:run", run_id=run.pk)


urlpatterns = [
    path("", offline_page, name="offline"),
    path("scan/", scan, name="offline_scan"),
    path("bundles/<int:pk>/apply/", apply, name="offline_apply"),
]

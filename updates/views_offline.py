"""The offline mode page: why the agent is offline, the bundles found, apply one."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from clms_updates import audit
from clms_updates.permissions import is_school_admin
from updates import offline
from updates.enforcement_tasks import queue_run_now
from updates.models import OfflineBundle
from updates.views_enforcement import viewer_only


@viewer_only
@require_GET
def offline_page(request: HttpRequest) -> HttpResponse:
    """Offline state (why, since when), the folders, and every bundle with its state."""
    context = offline.offline_overview()
    context["can_apply"] = is_school_admin(request.user)
    return render(request, "updates/offline/index.html", context)


@viewer_only
@require_POST
def scan(request: HttpRequest) -> HttpResponse:
    """Look at the offline folder now instead of waiting for the periodic scan."""
    if not is_school_admin(request.user):
        messages.error(request, "Only a school admin may scan the offline folder.")
        return redirect("updates:offline")
    touched = offline.scan_offline_folder(settle=False)
    audit.record(
        "updates.bundle.scan",
        request=request,
        found=[f"{b.file_name}: {b.state}" for b in touched],
    )
    if not touched:
        messages.info(request, "No new bundle was found in the offline folder.")
    for bundle in touched:
        level = messages.success if bundle.state == "verified" else messages.error
        level(
            request,
            f"{bundle.file_name}: {bundle.get_state_display()}. {bundle.reason}",
        )
    return redirect("updates:offline")


@viewer_only
@require_POST
def apply(request: HttpRequest, pk: int) -> HttpResponse:
    """Apply a verified bundle now (the same pipeline as an online update)."""
    if not is_school_admin(request.user):
        messages.error(request, "Only a school admin may apply a bundle.")
        return redirect("updates:offline")
    bundle = get_object_or_404(OfflineBundle, pk=pk)
    try:
        run = offline.schedule_bundle(bundle, user=request.user)
    except offline.BundleError as e:
        messages.error(request, f"{bundle.file_name} was not applied: {e}")
        return redirect("updates:offline")
    audit.record(
        "updates.bundle.apply",
        request=request,
        target=f"run {run.pk}",
        bundle=bundle.file_name,
        version=bundle.version,
    )
    queue_run_now(run.pk)
    messages.success(
        request, f"CLMS {run.to_version} is being installed from the bundle."
    )
    return redirect("updates:run", run_id=run.pk)

"""School pages about runs: progress, history, rollback, the audit log, the banner.

Thin views like ``updates.views``: forms validate, ``scheduling`` acts, and every
change is audited here.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from clms_updates import audit, progress
from clms_updates.models import AuditEntry
from updates import presenting, scheduling
from updates.forms import AuditFilterForm, HistoryFilterForm, RollbackForm
from updates.models import AgentState, AvailableRelease, BannerDismissal, UpdateRun
from updates.views import admin_required, safe_next, start_soon, viewer_required

# ---------------------------------------------------------------------------
# Runs: progress, history, rollback
# ---------------------------------------------------------------------------


@require_GET
@viewer_required
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    """One run: its steps, progress and log, followed live while it is active."""
    run = get_object_or_404(UpdateRun.objects.select_related("requested_by"), pk=run_id)
    return render(
        request,
        "updates/run_detail.html",
        {
            "run": run,
            "steps": presenting.step_timeline(run),
            "duration": presenting.run_duration(run),
            "snapshot": progress.snapshot(run),
            "socket_path": f"/ws/progress/update_run/{run.pk}/",
            "step_labels": presenting.STEP_LABELS,
            "school_zone": scheduling.school_zone().key,
        },
    )


@require_GET
@viewer_required
def history(request: HttpRequest) -> HttpResponse:
    """Every run with status, versions, duration and who started it."""
    form = HistoryFilterForm(request.GET or None)
    filters: dict[str, Any] = {}
    if form.is_bound and form.is_valid():
        filters = {k: v for k, v in form.cleaned_data.items() if v}
    runs = presenting.filtered_runs(**filters)
    page = Paginator(runs, 25).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "updates/history.html",
        {"form": form, "page": page, "query": query.urlencode()},
    )


@require_http_methods(["GET", "POST"])
@admin_required
def rollback(request: HttpRequest) -> HttpResponse:
    """Roll back to the version installed before this one, after confirming."""
    target = scheduling.previous_version()
    form = RollbackForm(request.POST or None)
    context = {
        "form": form,
        "target": target,
        "agent": AgentState.load(),
        "backup_target": presenting.backup_target_description(),
    }
    if request.method == "GET" or target is None:
        return render(request, "updates/rollback.html", context)
    if not form.is_valid():
        return render(request, "updates/rollback.html", context, status=400)
    try:
        run = scheduling.schedule_rollback(user=request.user)
    except scheduling.SchedulingError as e:
        form.add_error(None, f"{e}.")
        return render(request, "updates/rollback.html", context, status=409)
    audit.record(
        "updates.rollback",
        request=request,
        target=f"run {run.pk}",
        from_version=run.from_version,
        to_version=run.to_version,
        reason=form.cleaned_data["reason"],
    )
    start_soon(run)
    messages.success(
        request, f"Rolling back from CLMS {run.from_version} to {run.to_version}."
    )
    return redirect("updates:run", run_id=run.pk)


# ---------------------------------------------------------------------------
# Audit log and the banner
# ---------------------------------------------------------------------------


@require_GET
@admin_required
def audit_log(request: HttpRequest) -> HttpResponse:
    """Every admin action with user, time and address (admins only)."""
    form = AuditFilterForm(request.GET or None)
    entries = AuditEntry.objects.all()
    if form.is_bound and form.is_valid():
        if form.cleaned_data["action"]:
            entries = entries.filter(action__icontains=form.cleaned_data["action"])
        if form.cleaned_data["user"]:
            entries = entries.filter(username__icontains=form.cleaned_data["user"])
    page = Paginator(entries, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "updates/audit.html",
        {"form": form, "page": page, "query": query.urlencode()},
    )


@require_POST
@viewer_required
def dismiss_banner(request: HttpRequest) -> HttpResponse:
    """Hide an optional release's banner for this user on every device; critical stay."""
    version = request.POST.get("version", "")
    release = AvailableRelease.objects.filter(version=version).first()
    if release is None:
        messages.error(request, "That release is no longer available; nothing to hide.")
    elif release.critical:
        messages.error(
            request,
            f"CLMS {release.version} is a critical update, so its notice cannot be "
            "hidden; it stays until the update is installed. Open Updates to "
            "schedule it.",
        )
    else:
        BannerDismissal.record(request.user, release)
        messages.info(
            request,
            f"The notice about CLMS {release.version} is hidden for you on every "
            "device. The update manager still lists it, and a newer release shows "
            "again.",
        )
    return redirect(safe_next(request, reverse("updates:manager")))

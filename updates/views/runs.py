"""School pages about runs: progress, history, cancel, rollback, the audit log."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from clms_updates import progress
from clms_updates.actions import VIA_PAGE, ActionRefused, Actor
from clms_updates.models import AuditEntry
from clms_updates.pages import safe_next, show_refusal
from clms_updates.permissions import admin_required, viewer_required
from updates import actions, presenting, scheduling
from updates.forms import AuditFilterForm, HistoryFilterForm, RollbackForm
from updates.models import AgentState, UpdateRun


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


@require_POST
@admin_required
def cancel(request: HttpRequest, run_id: int) -> HttpResponse:
    """Cancel a scheduled run; it will never run."""
    try:
        run = actions.cancel_run(run_id, actor=Actor.from_request(request, VIA_PAGE))
    except ActionRefused as e:
        show_refusal(request, e, prefix="Nothing was cancelled: ")
    else:
        messages.success(
            request,
            f"Run {run.pk} (CLMS {run.to_version}) is cancelled and will not run.",
        )
    return redirect(safe_next(request, reverse("updates:manager") + "#scheduled"))


@require_POST
@admin_required
def start_now(request: HttpRequest, run_id: int) -> HttpResponse:
    """Start a scheduled update now instead of at its time."""
    try:
        run = actions.start_now(run_id, actor=Actor.from_request(request, VIA_PAGE))
    except ActionRefused as e:
        show_refusal(request, e, prefix="The update did not start: ")
        return redirect(safe_next(request, reverse("updates:manager") + "#scheduled"))
    messages.success(request, f"Update to CLMS {run.to_version} started.")
    return redirect("updates:run", run_id=run.pk)


@require_http_methods(["GET", "POST"])
@admin_required
def rollback(request: HttpRequest) -> HttpResponse:
    """Roll back to the version installed before this one, after confirming."""
    form = RollbackForm(request.POST or None)
    try:
        target, refusal = actions.plan_roll_back(), ""
    except ActionRefused as e:
        target, refusal = None, e.message
    context = {
        "form": form,
        "target": target,
        "refusal": refusal,
        "critical_warning": presenting.rollback_warning(target),
        "agent": AgentState.load(),
        "backup_target": presenting.backup_target_description(),
    }
    if request.method == "GET":
        return render(request, "updates/rollback.html", context)
    if not form.is_valid():
        return render(request, "updates/rollback.html", context, status=400)
    try:
        run = actions.roll_back(
            actor=Actor.from_request(request, VIA_PAGE),
            reason=form.cleaned_data["reason"],
        )
    except ActionRefused as e:
        show_refusal(request, e, form=form)
        return render(
            request, "updates/rollback.html", context, status=409 if e.conflict else 400
        )
    messages.success(
        request, f"Rolling back from CLMS {run.from_version} to {run.to_version}."
    )
    return redirect("updates:run", run_id=run.pk)


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

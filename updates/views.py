"""School pages of the updates app: thin views over ``checking`` and ``scheduling``.

Every view validates with a form and calls the same logic functions as the API;
every change is audited here, as the API audits its own calls.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from clms_updates import audit
from clms_updates.permissions import is_school_admin, is_school_viewer
from updates import checking, presenting, scheduling
from updates.forms import ScheduleForm, UpdateNowForm
from updates.models import AgentState, AvailableRelease, UpdateCheck, UpdateRun

logger = logging.getLogger(__name__)

View = Callable[..., HttpResponse]


def _forbidden(request: HttpRequest, need: str) -> HttpResponse:
    return render(
        request,
        "updates/forbidden.html",
        {"need": need},
        status=403,
    )


def viewer_required(view: View) -> View:
    """Logged in and in the school-viewer or school-admin group."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not is_school_viewer(request.user):
            return _forbidden(request, "school-viewer or school-admin")
        return view(request, *args, **kwargs)

    return wrapper


def admin_required(view: View) -> View:
    """Logged in and in the school-admin group."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not is_school_admin(request.user):
            return _forbidden(request, "school-admin")
        return view(request, *args, **kwargs)

    return wrapper


def start_soon(run: UpdateRun) -> None:
    """Hand a run that is due now to a worker at once, not at beat's next tick.

    The beat trigger that ``scheduling`` created stays as the fallback, and the
    run's conditional claim makes sure only one of the two drives it.
    """
    from updates.tasks import execute_run

    def send() -> None:
        try:
            execute_run.delay(run.pk)
        except Exception as e:  # broker down: beat still starts it
            logger.warning("Could not queue run %s at once: %s", run.pk, e)

    transaction.on_commit(send)


def safe_next(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


# ---------------------------------------------------------------------------
# Update manager
# ---------------------------------------------------------------------------


def _manager_page(
    request: HttpRequest,
    *,
    schedule_form: ScheduleForm | None = None,
    status: int = 200,
) -> HttpResponse:
    context = presenting.manager_context()
    release = context["release"]
    if schedule_form is None:
        initial: dict[str, Any] = {"when": "window"}
        if release is not None:
            initial["version"] = release.version
        schedule_form = ScheduleForm(initial=initial)
    context["schedule_form"] = schedule_form
    context["schedule_open"] = schedule_form.is_bound
    return render(request, "updates/manager.html", context, status=status)


@require_GET
@viewer_required
def manager(request: HttpRequest) -> HttpResponse:
    """What runs, what is available, what is scheduled, and what is happening."""
    return _manager_page(request)


@require_GET
@viewer_required
def agent_health(request: HttpRequest) -> HttpResponse:
    """The agent's components, loaded after the page so a slow probe never blocks it."""
    return render(
        request,
        "updates/includes/health.html",
        {"clms": presenting.clms_health(), "components": presenting.agent_health()},
    )


@require_POST
@admin_required
def check_now(request: HttpRequest) -> HttpResponse:
    """Check every source now and say what was found or why it was refused."""
    check = checking.run_check(trigger=UpdateCheck.Trigger.MANUAL, user=request.user)
    audit.record(
        "updates.check",
        request=request,
        target=f"check {check.pk}",
        outcome=check.outcome,
        reason=check.reason[:500],
        found_version=check.found_version,
    )
    if check.outcome == UpdateCheck.Outcome.OK:
        messages.success(request, f"Check finished: {check.reason}.")
    elif check.outcome == UpdateCheck.Outcome.OFFLINE:
        messages.warning(
            request,
            f"No update source answered, so the agent is working offline. "
            f"{check.reason}. Check the network or the vendor URL, then try again.",
        )
    else:
        messages.error(
            request,
            f"The check was {check.get_outcome_display().lower()} and nothing new was "
            f"stored: {check.reason}",
        )
    return redirect(reverse("updates:manager") + "#check")


def _audit_schedule(
    request: HttpRequest, run: UpdateRun, *, how: str, forced: bool
) -> None:
    audit.record(
        "updates.schedule",
        request=request,
        target=f"run {run.pk}",
        version=run.to_version,
        scheduled_for=run.scheduled_for.isoformat(),
        forced=forced,
        how=how,
    )
    if forced:
        audit.record(
            "updates.override",
            request=request,
            target=f"run {run.pk}",
            what="run outside the maintenance windows or retry a rolled-back version",
        )


@require_POST
@admin_required
def schedule(request: HttpRequest) -> HttpResponse:
    """Validate the schedule dialog, show the confirmation, then schedule."""
    form = ScheduleForm(request.POST)
    if not form.is_valid():
        messages.error(
            request, "The update was not scheduled. Correct the fields marked below."
        )
        return _manager_page(request, schedule_form=form, status=400)
    data = form.cleaned_data
    release: AvailableRelease = data["version"]
    if not data.get("confirmed"):
        return render(
            request,
            "updates/schedule_confirm.html",
            {
                "form": form,
                "release": release,
                "at": data["at"],
                "ambiguous": data.get("ambiguous", False),
                "inside_window": scheduling.is_inside_window(data["at"]),
                "backup_target": presenting.backup_target_description(),
                "school_zone": scheduling.school_zone().key,
            },
        )
    try:
        run = scheduling.schedule_update(
            release, at=data["at"], user=request.user, forced=data["force"]
        )
    except scheduling.SchedulingError as e:
        form.add_error(None, str(e))
        messages.error(request, f"The update was not scheduled: {e}")
        return _manager_page(request, schedule_form=form, status=409)
    _audit_schedule(request, run, how=data["when"], forced=data["force"])
    if run.scheduled_for <= timezone.now() + timedelta(minutes=1):
        start_soon(run)  # the window is open now
    when = presenting.to_school_time(run.scheduled_for)
    messages.success(
        request,
        f"CLMS {run.to_version} is scheduled for {when:%a %d %b %Y, %H:%M} "
        f"({scheduling.school_zone().key}). You can cancel it until it starts.",
    )
    return redirect(reverse("updates:manager") + "#scheduled")


@require_http_methods(["GET", "POST"])
@admin_required
def update_now(request: HttpRequest) -> HttpResponse:
    """Start an update at once, after a confirmation step."""
    data = request.POST if request.method == "POST" else request.GET
    form = UpdateNowForm(data)
    if not form.is_valid():
        for errors in form.errors.values():
            text = " ".join(str(e) for e in errors)
            messages.error(request, f"The update did not start: {text}")
        return redirect("updates:manager")
    release: AvailableRelease = form.cleaned_data["version"]
    if request.method == "GET" or not form.cleaned_data.get("confirmed"):
        return render(
            request,
            "updates/update_now_confirm.html",
            {
                "release": release,
                "agent": AgentState.load(),
                "inside_window": scheduling.is_inside_window(timezone.now()),
                "backup_target": presenting.backup_target_description(),
            },
        )
    now = timezone.now()
    forced = not scheduling.is_inside_window(now)
    try:
        run = scheduling.schedule_update(
            release, at=now, user=request.user, forced=forced
        )
    except scheduling.SchedulingError as e:
        messages.error(request, f"The update did not start: {e}")
        return redirect("updates:manager")
    _audit_schedule(request, run, how="now", forced=forced)
    start_soon(run)
    messages.success(request, f"Update to CLMS {run.to_version} started.")
    return redirect("updates:run", run_id=run.pk)


@require_POST
@admin_required
def cancel(request: HttpRequest, run_id: int) -> HttpResponse:
    """Cancel a scheduled run; it will never run."""
    run = get_object_or_404(UpdateRun, pk=run_id)
    try:
        run = scheduling.cancel_run(run)
    except scheduling.SchedulingError as e:
        messages.error(request, f"Nothing was cancelled: {e}.")
    else:
        audit.record(
            "updates.cancel",
            request=request,
            target=f"run {run.pk}",
            version=run.to_version,
        )
        messages.success(
            request,
            f"Run {run.pk} (CLMS {run.to_version}) is cancelled and will not run.",
        )
    return redirect(safe_next(request, reverse("updates:manager") + "#scheduled"))

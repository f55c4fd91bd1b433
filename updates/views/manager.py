"""The update manager: what runs, what is available; check, schedule, update now."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from clms_updates.actions import VIA_PAGE, ActionRefused, Actor
from clms_updates.pages import safe_next, show_refusal
from clms_updates.permissions import admin_required, viewer_required
from updates import actions, presenting, scheduling
from updates.forms import ScheduleForm, UpdateNowForm
from updates.models import AgentState, UpdateCheck

# Where the schedule rules' fields show on the schedule dialog.
SCHEDULE_FIELDS = {"at": "time"}


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
    check = actions.check_for_updates(actor=Actor.from_request(request, VIA_PAGE))
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


@require_POST
@admin_required
def schedule(request: HttpRequest) -> HttpResponse:
    """Parse the schedule dialog, show the confirmation, then schedule."""
    form = ScheduleForm(request.POST)
    if not form.is_valid():
        messages.error(
            request, "The update was not scheduled. Correct the fields marked below."
        )
        return _manager_page(request, schedule_form=form, status=400)
    data = form.cleaned_data
    arguments = {
        "at": data["at"],
        "next_window": data["when"] == "window",
        "force": data["force"],
    }
    try:
        if not data.get("confirmed"):
            plan = actions.plan_schedule(data["version"], **arguments)
            return render(
                request,
                "updates/schedule_confirm.html",
                {
                    "form": form,
                    "plan": plan,
                    "release": plan.release,
                    "at": plan.at,
                    "ambiguous": data["ambiguous"],
                    "inside_window": plan.inside_window,
                    "backup_target": presenting.backup_target_description(),
                    "school_zone": scheduling.school_zone().key,
                },
            )
        run = actions.schedule_update(
            data["version"], actor=Actor.from_request(request, VIA_PAGE), **arguments
        )
    except ActionRefused as e:
        show_refusal(
            request,
            e,
            form=form,
            prefix="The update was not scheduled: ",
            fields=SCHEDULE_FIELDS,
        )
        return _manager_page(request, schedule_form=form, status=400)
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
        messages.error(
            request, "The update did not start: choose a version to install."
        )
        return redirect("updates:manager")
    version, force = form.cleaned_data["version"], form.cleaned_data["force"]
    try:
        if request.method == "GET" or not form.cleaned_data.get("confirmed"):
            plan = actions.plan_update_now(version, force=force)
            return render(
                request,
                "updates/update_now_confirm.html",
                {
                    "plan": plan,
                    "release": plan.release,
                    "force": force,
                    "agent": AgentState.load(),
                    "inside_window": plan.inside_window,
                    "backup_target": presenting.backup_target_description(),
                },
            )
        run = actions.update_now(
            version, actor=Actor.from_request(request, VIA_PAGE), force=force
        )
    except ActionRefused as e:
        show_refusal(request, e, prefix="The update did not start: ")
        return redirect("updates:manager")
    messages.success(request, f"Update to CLMS {run.to_version} started.")
    return redirect("updates:run", run_id=run.pk)


@require_POST
@viewer_required
def dismiss_banner(request: HttpRequest) -> HttpResponse:
    """Hide an optional release's banner for this user on every device; critical stay."""
    try:
        release = actions.dismiss_banner(
            request.POST.get("version", ""), actor=Actor.from_request(request, VIA_PAGE)
        )
    except ActionRefused as e:
        show_refusal(request, e)
    else:
        messages.info(
            request,
            f"The notice about CLMS {release.version} is hidden for you on every "
            "device. The update manager still lists it, and a newer release shows "
            "again.",
        )
    return redirect(safe_next(request, reverse("updates:manager")))


@require_POST
@admin_required
def save_settings(request: HttpRequest) -> HttpResponse:
    """Save the settings a release asks for (an empty secret field keeps the secret)."""
    values = presenting.settings_overview().changed_values(request.POST)
    if not values:
        messages.info(request, "Nothing was changed.")
        return redirect(reverse("updates:manager") + "#settings")
    try:
        names = actions.provide_settings(
            values, actor=Actor.from_request(request, VIA_PAGE)
        )
    except ActionRefused as e:
        show_refusal(request, e, prefix="The settings were not saved: ")
    else:
        messages.success(request, f"Saved {', '.join(names)}.")
    return redirect(reverse("updates:manager") + "#settings")


@require_POST
@admin_required
def update_agent(request: HttpRequest) -> HttpResponse:
    """Update CLMS Updates itself, now or as soon as nothing is in the way."""
    version = request.POST.get("version", "")
    try:
        run = actions.update_agent(version, actor=Actor.from_request(request, VIA_PAGE))
    except ActionRefused as e:
        show_refusal(request, e, prefix="The agent was not updated: ")
        return redirect(reverse("updates:manager") + "#agent-update")
    if run is None:
        messages.info(
            request,
            f"CLMS Updates {version} will install itself as soon as the run or backup "
            "in progress has ended.",
        )
        return redirect(reverse("updates:manager") + "#agent-update")
    messages.success(request, f"Updating CLMS Updates to {version}.")
    return redirect("updates:run", run_id=run.pk)


@require_POST
@admin_required
def support_bundle(request: HttpRequest) -> HttpResponse:
    """Download the support bundle (secrets removed) to send to the vendor."""
    name, data = actions.make_support_bundle(
        actor=Actor.from_request(request, VIA_PAGE)
    )
    response = HttpResponse(data, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response

"""The Notifications page: where events go besides e-mail (Apprise targets)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from clms_updates import notifications
from clms_updates.actions import VIA_PAGE, ActionRefused, Actor
from clms_updates.models import NotificationDelivery, NotificationTarget
from clms_updates.pages import show_refusal
from clms_updates.permissions import admin_required
from updates.forms import NotificationTargetForm


@require_http_methods(["GET", "POST"])
@admin_required
def targets(request: HttpRequest) -> HttpResponse:
    """List the targets with their last deliveries; add one."""
    form = NotificationTargetForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            target = notifications.add_target(
                form.cleaned_data["name"],
                form.cleaned_data["url"],
                form.cleaned_data["events"],
                actor=Actor.from_request(request, VIA_PAGE),
            )
        except ActionRefused as e:
            show_refusal(request, e, form=form)
        else:
            messages.success(
                request,
                f"Added {target.name}. Send a test to see that messages arrive.",
            )
            return redirect("updates:notifications")
    labels = {e.name: e.label for e in notifications.EVENTS}
    rows = [
        {
            "target": target,
            "url": notifications.masked(target.url),
            "events": [labels.get(e, e) for e in target.events],
            "last": target.deliveries.order_by("-created_at").first(),
        }
        for target in NotificationTarget.objects.all()
    ]
    recent = NotificationDelivery.objects.select_related("target")[:20]
    return render(
        request,
        "updates/notifications.html",
        {"form": form, "rows": rows, "recent": recent},
    )


@require_POST
@admin_required
def send_test(request: HttpRequest, target_id: int) -> HttpResponse:
    try:
        delivered, problem = notifications.send_test(
            target_id, actor=Actor.from_request(request, VIA_PAGE)
        )
    except ActionRefused as e:
        show_refusal(request, e)
    else:
        if delivered:
            messages.success(request, "The test message was delivered.")
        else:
            messages.error(
                request,
                f"The test message was not delivered: {problem}. Check the URL's "
                "host, token and that this server can reach the service.",
            )
    return redirect("updates:notifications")


@require_POST
@admin_required
def remove(request: HttpRequest, target_id: int) -> HttpResponse:
    try:
        name = notifications.remove_target(
            target_id, actor=Actor.from_request(request, VIA_PAGE)
        )
    except ActionRefused as e:
        show_refusal(request, e)
    else:
        messages.success(request, f"Removed {name}; it gets no more notifications.")
    return redirect("updates:notifications")

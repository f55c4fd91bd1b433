"""Project-wide pages: home and the health endpoint."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.views.decorators.cache import never_cache

from clms_updates import health
from clms_updates.permissions import is_school_viewer


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Each component up or down with its reason; 503 when a required one is down."""
    components = health.check_all(deep=request.GET.get("deep") == "1")
    healthy = all(c.up for c in components if c.required)
    body = {
        "status": "ok" if healthy else "unhealthy",
        "role": settings.CLMS_ROLE,
        "components": {c.name: c.as_dict() for c in components},
    }
    answer = JsonResponse(body, status=200 if healthy else 503)
    if not healthy:
        # The components say which dependency is down; ask again in a while.
        answer["Retry-After"] = "30"
    return answer


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The landing page: school staff go straight to the update manager.

    Vendor staff (and anyone outside the school groups) see where each role's
    work lives.
    """
    user = request.user
    if (
        settings.SCHOOL_ROLE_ENABLED
        and is_school_viewer(user)
        and not getattr(user, "is_staff", False)
    ):
        return redirect("updates:manager")
    return render(request, "home.html")


def favicon(request: HttpRequest) -> HttpResponse:
    """``/favicon.ico``: the icon, for pages without an icon link (the admin)."""
    return redirect(static("favicon.svg"), permanent=True)

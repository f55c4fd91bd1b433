"""The block after a missed critical deadline, applied to every request.

While ``enforcement.enforcement_state().blocked``:

- API routes answer 423 Locked with a JSON message, except the update, backup
  and status routes (``EXEMPT_API_PREFIXES``) an admin needs to end the block;
- pages other than updates and backups answer 423 with the blocking dialog.

Login, the Django admin, static files, health and the vendor server's own
routes are never blocked: they are not the school's CLMS installation.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from updates import enforcement

# Routes an admin needs to apply the update or recover, and health probes.
EXEMPT_API_PREFIXES = ("/api/updates/", "/api/backups/", "/api/schema/", "/api/docs/")
EXEMPT_PAGE_PREFIXES = (
    "/updates/",
    "/backups/",
    "/accounts/",
    "/admin/",
    "/vendor/",
    "/healthz",
    "/static/",
    "/media/",
)


def is_exempt(path: str) -> bool:
    """True for the routes that stay usable while blocked."""
    static = settings.STATIC_URL or "/static/"
    if not static.startswith("/"):
        static = "/" + static
    return path.startswith(EXEMPT_API_PREFIXES + EXEMPT_PAGE_PREFIXES + (static,))


class EnforcementMiddleware:
    """Answers 423 (JSON for the API, the blocking dialog for pages) while blocked."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not settings.SCHOOL_ROLE_ENABLED or is_exempt(request.path):
            return self.get_response(request)
        state = enforcement.enforcement_state()
        if not state.blocked:
            return self.get_response(request)
        if request.path.startswith("/api/"):
            body = {"detail": state.message, "code": "blocked", **state.as_dict()}
            return JsonResponse(body, status=423)
        return render(
            request,
            "updates/enforcement/blocked.html",
            {"enforcement_state": state},
            status=423,
        )

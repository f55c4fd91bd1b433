"""The project's URLs plus ``/bench/bare``: 2 KB of JSON from a plain Django view."""

import json

from django.http import HttpRequest, HttpResponse
from django.urls import path

from clms_updates.urls import urlpatterns as project_urlpatterns

BODY = json.dumps({"padding": "x" * 2000}).encode()


def bare(request: HttpRequest) -> HttpResponse:
    """The yardstick: no auth, no cache, no database."""
    return HttpResponse(BODY, content_type="application/json")


urlpatterns = [path("bench/bare", bare), *project_urlpatterns]

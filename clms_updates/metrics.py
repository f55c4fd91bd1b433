"""``GET /metrics``: Prometheus metrics of whichever roles this process serves.

Each app gives one collector (``updates.metrics``, ``backups.metrics``,
``vendor_server.metrics``, listed in ``METRICS_COLLECTORS`` by role) that reads
the rows at scrape time, so every web
process answers the same figures without shared counters. Only a scraper with
``METRICS_TOKEN`` (``Authorization: Bearer …``) or one calling from
``METRICS_ALLOWED_NETWORKS`` gets them; anyone else gets 403.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.module_loading import import_string
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.registry import Collector

from clms_updates.authentication import bearer_token, token_is_one_of

REFUSED = (
    "Metrics are for a scraper with METRICS_TOKEN (Authorization: Bearer <token>) "
    "or one calling from METRICS_ALLOWED_NETWORKS.\n"
)


def allowed(request: HttpRequest) -> bool:
    """The scraper sent the token, or calls from an allowed network."""
    if token_is_one_of(bearer_token(request), [settings.METRICS_TOKEN]):
        return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in network for network in settings.METRICS_ALLOWED_NETWORKS)


def collectors() -> Iterable[Collector]:
    """The collectors of the roles this process serves (``METRICS_COLLECTORS``,
    by dotted path: this core module never imports an app)."""
    for path in settings.METRICS_COLLECTORS:
        yield import_string(path)()


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not allowed(request):
        return HttpResponse(REFUSED, status=403, content_type="text/plain")
    registry = CollectorRegistry(auto_describe=False)
    for collector in collectors():
        registry.register(collector)
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)

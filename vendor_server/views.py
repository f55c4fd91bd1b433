"""Pages of the vendor server for staff: fleet analytics."""

from __future__ import annotations

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from vendor_server import analytics


@staff_member_required
def fleet_analytics(request: HttpRequest) -> HttpResponse:
    """Versions, adoption, outcomes, overdue and silent schools (staff only)."""
    try:
        stale_days = max(1, int(request.GET.get("days", settings.VENDOR_STALE_DAYS)))
    except ValueError:
        stale_days = settings.VENDOR_STALE_DAYS
    summary = analytics.fleet_summary(timezone.now(), stale_days)
    charts = {
        "versions": {
            "labels": [v for v, _ in summary["per_version"]],
            "data": [n for _, n in summary["per_version"]],
        },
        "adoption": summary["adoption"],
        "rates": {
            "labels": [r.version for r in summary["rates"]],
            "succeeded": [r.success_percent for r in summary["rates"]],
            "failed": [r.failure_percent for r in summary["rates"]],
            "rolled_back": [r.rollback_percent for r in summary["rates"]],
        },
    }
    return render(
        request,
        "vendor_server/analytics.html",
        {**summary, "charts": charts, "title": "Fleet analytics"},
    )

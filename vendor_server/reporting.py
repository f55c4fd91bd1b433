"""Update reports from schools: stored, and the school's version noted.

What a report triggers (the auto-pause) is ``vendor_server.actions.record_report``.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from vendor_server.models import Outcome, Release, School, UpdateReport


def record_report(school_id: int, data: dict[str, Any]) -> UpdateReport:
    """Store a school's report, note its new version, and check the rollout's health."""
    data = dict(data)
    product = data.pop("product", "") or settings.VENDOR_PRODUCT
    release = Release.objects.of(product).filter(version=data["to_version"]).first()
    with transaction.atomic():
        now = timezone.now()
        report = UpdateReport.objects.create(
            school_id=school_id,
            release=release,
            received_at=now,
            received_on=now.astimezone(UTC).date(),
            product=product,
            **data,
        )
        if data["outcome"] == Outcome.SUCCEEDED:
            field = (
                "agent_version"
                if product == settings.VENDOR_AGENT_PRODUCT
                else "current_version"
            )
            School.objects.filter(pk=school_id).update(**{field: data["to_version"]})
    return report


def succeeded(report: UpdateReport) -> bool:
    """The report says the release was installed and stayed healthy."""
    return report.outcome == Outcome.SUCCEEDED

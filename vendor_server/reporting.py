"""Update reports from schools: stored, and the school's version noted.

What a report triggers (the auto-pause) is ``vendor_server.actions.record_report``.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, F
from django.utils import timezone

from vendor_server import rollouts
from vendor_server.models import (
    Outcome,
    Release,
    ReportTally,
    RunKind,
    School,
    UpdateReport,
)


def record_report(school_id: int, data: dict[str, Any]) -> tuple[UpdateReport, bool]:
    """Store a school's report of a run (once per run), note its new version.

    The same run reported again (an agent retrying) updates its one report, so
    a school weighs at most once per run. A report about a release the school
    could not see is kept for the record but does not count for the rollout;
    nor does a manual rollback, which is filed under the release left behind.
    Returns the report and whether it is new.
    """
    data = dict(data)
    product = data.pop("product", "") or settings.VENDOR_PRODUCT
    run_id = data.pop("run_id")
    rollback = data.get("kind") == RunKind.ROLLBACK
    version = data["from_version"] if rollback else data["to_version"]
    release = Release.objects.of(product).filter(version=version).first()
    with transaction.atomic():
        school = School.objects.select_for_update().get(pk=school_id)
        now = timezone.now()
        before = (
            UpdateReport.objects.filter(
                school_id=school_id, product=product, run_id=run_id
            )
            .only("kind", "from_version", "to_version", "outcome", "received_on")
            .first()
        )
        counted = (
            not rollback
            and release is not None
            and rollouts.is_visible(
                rollouts.listed(release), school.api_key_hash, school.channel
            )
        )
        report, created = UpdateReport.objects.update_or_create(
            school_id=school_id,
            product=product,
            run_id=run_id,
            defaults={
                "release": release,
                "received_at": now,
                "received_on": now.astimezone(UTC).date(),
                "counted": counted,
                **data,
            },
        )
        if before is not None:
            tally(product, before, -1)
        tally(product, report, +1)
        if data["outcome"] == Outcome.SUCCEEDED:
            field = (
                "agent_version"
                if product == settings.VENDOR_AGENT_PRODUCT
                else "current_version"
            )
            School.objects.filter(pk=school_id).update(**{field: data["to_version"]})
    return report, created


def tally(product: str, report: UpdateReport, delta: int) -> None:
    """Move the report's day tally by ``delta`` (inside the report's transaction)."""
    rollback = report.kind == RunKind.ROLLBACK
    key = {
        "product": product,
        "kind": report.kind,
        "version": report.from_version if rollback else report.to_version,
        "outcome": report.outcome,
        "day": report.received_on,
    }
    if ReportTally.objects.filter(**key).update(count=F("count") + delta):
        return
    try:
        with transaction.atomic():
            ReportTally.objects.create(**key, count=delta)
    except IntegrityError:  # another report made the row first
        ReportTally.objects.filter(**key).update(count=F("count") + delta)


def rebuild_tallies() -> int:
    """Count every report again into fresh tallies (after a bulk load); rows made."""
    with transaction.atomic():
        ReportTally.objects.all().delete()
        rows = [
            ReportTally(
                product=product,
                kind=kind,
                version=from_version if kind == RunKind.ROLLBACK else to_version,
                outcome=outcome,
                day=day,
                count=n,
            )
            for product, kind, from_version, to_version, outcome, day, n in (
                UpdateReport.objects.values_list(
                    "product",
                    "kind",
                    "from_version",
                    "to_version",
                    "outcome",
                    "received_on",
                )
                .annotate(n=Count("id"))
                .order_by()
            )
        ]
        merged: dict[tuple, ReportTally] = {}
        for row in rows:
            key = (row.product, row.kind, row.version, row.outcome, row.day)
            if key in merged:
                merged[key].count += row.count
            else:
                merged[key] = row
        ReportTally.objects.bulk_create(merged.values(), batch_size=5000)
    return len(merged)


def succeeded(report: UpdateReport) -> bool:
    """The report says the release was installed and stayed healthy."""
    return report.outcome == Outcome.SUCCEEDED

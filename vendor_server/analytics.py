"""Fleet analytics: aggregate queries only, so the page stays fast at fleet scale.

Report figures come from the day tallies (``ReportTally``, kept with each
report), not from the reports themselves: a few thousand rows whatever the
number of reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import semver
from django.conf import settings
from django.db.models import Count, Q, Sum

from vendor_server.models import Outcome, Release, ReportTally, RunKind, School

ADOPTION_DAYS = 30
ADOPTION_RELEASES = 6
LIST_LIMIT = 50


@dataclass
class OutcomeRates:
    """Reports of one release by outcome."""

    version: str
    succeeded: int
    failed: int
    rolled_back: int
    # Schools that went back from this release by hand, after installing it
    # (not an outcome of its install, so not in ``total``).
    left_by_hand: int = 0

    @property
    def total(self) -> int:
        return self.succeeded + self.failed + self.rolled_back

    def percent(self, count: int) -> float:
        return round(100.0 * count / self.total, 1) if self.total else 0.0

    @property
    def success_percent(self) -> float:
        return self.percent(self.succeeded)

    @property
    def failure_percent(self) -> float:
        return self.percent(self.failed)

    @property
    def rollback_percent(self) -> float:
        return self.percent(self.rolled_back)


def _semver_key(version: str) -> tuple[int, Any]:
    try:
        return (1, semver.Version.parse(version))
    except ValueError:
        return (0, version)


def schools_per_version(field: str = "current_version") -> list[tuple[str, int]]:
    """(version, number of schools), highest first: CLMS's, or ``agent_version``."""
    rows = School.objects.values_list(field).annotate(n=Count("id"))
    return sorted(
        ((v or "unknown", n) for v, n in rows),
        key=lambda item: _semver_key(item[0]),
        reverse=True,
    )


def outcome_rates(product: str = "") -> list[OutcomeRates]:
    """Success / failure / rollback counts per release of ``product``, newest first."""
    rates: dict[str, OutcomeRates] = {}
    tallies = ReportTally.objects.filter(product=product or settings.VENDOR_PRODUCT)
    installs = tallies.filter(kind=RunKind.UPDATE)
    for version, outcome, n in (
        installs.values_list("version", "outcome").annotate(n=Sum("count")).order_by()
    ):
        if not n:
            continue
        row = rates.setdefault(version, OutcomeRates(version, 0, 0, 0))
        field = {
            Outcome.SUCCEEDED: "succeeded",
            Outcome.FAILED: "failed",
            Outcome.ROLLED_BACK: "rolled_back",
        }[outcome]
        setattr(row, field, getattr(row, field) + n)
    left = tallies.filter(kind=RunKind.ROLLBACK, outcome=Outcome.SUCCEEDED)
    for version, n in left.values_list("version").annotate(n=Sum("count")).order_by():
        if n:
            rates.setdefault(version, OutcomeRates(version, 0, 0, 0)).left_by_hand += n
    return sorted(rates.values(), key=lambda r: _semver_key(r.version), reverse=True)


def adoption(now: datetime, days: int = ADOPTION_DAYS) -> dict[str, Any]:
    """Cumulative successful installs per day of the newest releases (chart data)."""
    product = settings.VENDOR_PRODUCT
    versions = list(
        Release.objects.of(product)
        .order_by("-published_at")
        .values_list("version", flat=True)[:ADOPTION_RELEASES]
    )
    start = (now - timedelta(days=days)).date()
    labels = [(start + timedelta(days=i)).isoformat() for i in range(days + 1)]
    installed = ReportTally.objects.filter(
        outcome=Outcome.SUCCEEDED,
        kind=RunKind.UPDATE,
        version__in=versions,
        product=product,
    )
    before = dict(
        installed.filter(day__lt=start)
        .values_list("version")
        .annotate(n=Sum("count"))
        .order_by()
    )
    daily: dict[str, dict[str, int]] = {v: {} for v in versions}
    for version, day, n in installed.filter(day__gte=start).values_list(
        "version", "day", "count"
    ):
        daily[version][day.isoformat()] = n
    series = []
    for version in versions:
        total = before.get(version) or 0
        points = []
        for label in labels:
            total += daily[version].get(label, 0)
            points.append(total)
        series.append({"label": version, "data": points})
    return {"labels": labels, "series": series}


def past_critical_deadline(now: datetime) -> tuple[int, list[School], list[Release]]:
    """Schools still below a critical release whose deadline has passed."""
    overdue = list(
        Release.objects.of(settings.VENDOR_PRODUCT).filter(
            critical=True, enabled=True, force_after__lt=now
        )
    )
    if not overdue:
        return 0, [], []
    lowest_required = min(r.semver for r in overdue)
    behind = [
        version
        for version, _ in School.objects.values_list("current_version").annotate(
            n=Count("id")
        )
        if version and _semver_key(version) < (1, lowest_required)
    ]
    schools = School.objects.filter(current_version__in=behind)
    return schools.count(), list(schools.order_by("last_seen")[:LIST_LIMIT]), overdue


def not_seen(now: datetime, days: int) -> tuple[int, list[School]]:
    """Schools not seen for ``days`` days (or never)."""
    schools = School.objects.filter(
        Q(last_seen__lt=now - timedelta(days=days)) | Q(last_seen__isnull=True),
        revoked_at__isnull=True,
    )
    return schools.count(), list(schools.order_by("last_seen")[:LIST_LIMIT])


def fleet_summary(now: datetime, stale_days: int) -> dict[str, Any]:
    """Everything the analytics page shows."""
    per_version = schools_per_version()
    overdue_count, overdue_schools, overdue_releases = past_critical_deadline(now)
    stale_count, stale_schools = not_seen(now, stale_days)
    return {
        "school_count": sum(n for _, n in per_version),
        "per_version": per_version,
        "rates": outcome_rates(),
        "agent_per_version": schools_per_version("agent_version"),
        "agent_rates": outcome_rates(settings.VENDOR_AGENT_PRODUCT),
        "adoption": adoption(now),
        "overdue_count": overdue_count,
        "overdue_schools": overdue_schools,
        "overdue_releases": overdue_releases,
        "stale_count": stale_count,
        "stale_schools": stale_schools,
        "stale_days": stale_days,
    }

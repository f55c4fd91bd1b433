"""The vendor server's Prometheus metrics: the fleet, per version and release.

One grouped query per family (the admin's own figure expressions for the
rollout's failure rate), so a scrape stays cheap at fleet scale.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from django.db.models import Count
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric

from vendor_server import rollouts
from vendor_server.models import Release, School


class VendorCollector:
    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        schools = GaugeMetricFamily(
            "clms_vendor_schools",
            "Active schools by the CLMS version they run and their channel.",
            labels=["version", "channel"],
        )
        for version, channel, n in (
            School.objects.filter(revoked_at__isnull=True)
            .values_list("current_version", "channel")
            .annotate(n=Count("id"))
        ):
            schools.add_metric([version or "unknown", channel], n)
        yield schools
        seen = GaugeMetricFamily(
            "clms_vendor_schools_seen",
            "Active schools whose agent checked in within the window.",
            labels=["within"],
        )
        active = School.objects.filter(revoked_at__isnull=True)
        for label, window in (("1h", timedelta(hours=1)), ("7d", timedelta(days=7))):
            seen.add_metric([label], active.filter(last_seen__gte=now - window).count())
        yield seen

        reports = GaugeMetricFamily(
            "clms_vendor_release_reports",
            "Schools that reported a release's install, and those that failed.",
            labels=["product", "version", "result"],
        )
        state = GaugeMetricFamily(
            "clms_vendor_release_state",
            "1 for the state a release's rollout is in.",
            labels=["product", "version", "state", "critical"],
        )
        annotated = Release.objects.annotate(
            **rollouts.figure_expressions("reports__")
        ).only("product", "version", "enabled", "paused_at", "critical")
        for release in annotated:
            key = [release.product, release.version]
            reports.add_metric([*key, "reported"], getattr(release, "report_total", 0))
            reports.add_metric([*key, "failed"], getattr(release, "report_failed", 0))
            where = (
                "disabled"
                if not release.enabled
                else "paused"
                if release.paused_at
                else "live"
            )
            state.add_metric([*key, where, str(release.critical).lower()], 1)
        yield reports
        yield state

"""The backups' Prometheus metrics: the last verified backup's age and size."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily, Metric

from backups.models import Backup


class BackupCollector:
    def collect(self) -> Iterator[Metric]:
        latest = (
            Backup.objects.filter(
                status=Backup.Status.VERIFIED, verified_at__isnull=False
            )
            .order_by("-verified_at")
            .first()
        )
        if latest is not None and latest.verified_at is not None:
            yield GaugeMetricFamily(
                "clms_backup_last_verified_timestamp_seconds",
                "When the newest verified backup was verified (alert when it is old).",
                value=latest.verified_at.timestamp(),
            )
            yield GaugeMetricFamily(
                "clms_backup_last_verified_size_bytes",
                "The newest verified backup's size.",
                value=latest.size or 0,
            )
        by_status = GaugeMetricFamily(
            "clms_backups", "Backups kept, by status.", labels=["status"]
        )
        for status, n in Backup.objects.values_list("status").annotate(n=Count("id")):
            by_status.add_metric([status], n)
        yield by_status

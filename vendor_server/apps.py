"""The vendor server: signed releases, the school API, rollouts, analytics."""

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate

SCHEDULES = (
    (
        "vendor: refresh index",
        "vendor_server.tasks.refresh_index",
        60,
        "Re-sign the release index well before it expires (VENDOR_INDEX_TTL_DAYS).",
    ),
    (
        "vendor: flush check-ins",
        "vendor_server.tasks.flush_checkins",
        1,
        "Write the school check-ins buffered in Redis to the database.",
    ),
)


class VendorServerConfig(AppConfig):
    """Vendor server app: creates its beat schedules after migrate."""

    name = "vendor_server"
    verbose_name = "Vendor server"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        post_migrate.connect(ensure_schedules, sender=self)


def ensure_schedules(**kwargs: Any) -> None:
    """Create the vendor's periodic tasks once (staff may edit them later)."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    using = kwargs.get("using", "default")
    for name, task, minutes, description in SCHEDULES:
        if PeriodicTask.objects.using(using).filter(name=name).exists():
            continue
        interval, _ = IntervalSchedule.objects.using(using).get_or_create(
            every=minutes, period=IntervalSchedule.MINUTES
        )
        PeriodicTask.objects.using(using).create(
            name=name, task=task, interval=interval, description=description
        )

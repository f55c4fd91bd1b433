"""Verified, restorable backups of the CLMS database."""

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class BackupsConfig(AppConfig):
    """Backups app: registers its progress kind and its nightly prune schedule."""

    name = "backups"
    verbose_name = "Backups"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from clms_updates import progress
        from clms_updates.permissions import is_school_viewer

        progress.register_kind("backup", "backups.Backup", can_view=is_school_viewer)
        post_migrate.connect(ensure_prune_schedule, sender=self)


def ensure_prune_schedule(**kwargs: Any) -> None:
    """Create the nightly prune PeriodicTask once (admins may edit it later)."""
    from django.conf import settings
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    using = kwargs.get("using", "default")
    minute, hour, day, month, weekday = (
        settings.BACKUP_PRUNE_CRON.split() + ["*"] * 5
    )[:5]
    if PeriodicTask.objects.using(using).filter(name="backups: prune").exists():
        return
    schedule, _ = CrontabSchedule.objects.using(using).get_or_create(
        minute=minute,
        hour=hour,
        day_of_month=day,
        month_of_year=month,
        day_of_week=weekday,
        timezone="UTC",
    )
    PeriodicTask.objects.using(using).create(
        name="backups: prune",
        task="backups.tasks.prune_backups_task",
        crontab=schedule,
        description="Delete backups outside the retention policy (BACKUP_KEEP_*).",
    )

"""Every periodic job of both roles, declared once, and the one rule for admin edits.

``PERIODIC`` is the table: a beat entry's name, the task it runs (by name),
which role runs it, and its schedule, read from an environment variable with
a default (``.env.example`` and ``docs/configuration.md`` list them).

After every ``migrate`` (``install_periodic_tasks``) each entry of this
process's role is made to match the table, by one rule:

- a missing entry is created, enabled, with the schedule from the environment;
- an entry whose schedule is still the one this table last wrote follows the
  environment (change the variable, migrate, and it changes);
- an entry an admin edited in the Django admin (another schedule) keeps the
  admin's schedule, and an entry an admin disabled stays disabled: the admin's
  edit wins until the entry is deleted, and the next migrate recreates it from
  the environment.

The task name always follows the code. The entries are rows of
django-celery-beat's ``PeriodicTask``, which beat reads (``DatabaseScheduler``);
``CELERY_BEAT_SCHEDULE`` is not used, since beat would rewrite those rows at
every start and undo the admins' edits.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Every:
    """An interval schedule: every ``count`` ``unit`` (minutes or hours)."""

    count: int
    unit: str = "minutes"

    def describe(self) -> str:
        return f"every {self.count} {self.unit}"


@dataclass(frozen=True)
class Cron:
    """A crontab schedule in UTC: ``minute hour day month weekday``."""

    expression: str

    @property
    def fields(self) -> tuple[str, str, str, str, str]:
        parts = (self.expression.split() + ["*"] * 5)[:5]
        return parts[0], parts[1], parts[2], parts[3], parts[4]

    def describe(self) -> str:
        return "cron " + " ".join(self.fields) + " UTC"


@dataclass(frozen=True)
class Periodic:
    """One beat entry: its name, its task, the role that runs it, its schedule."""

    name: str
    task: str
    role: str  # "school", "vendor" or "any" (both roles run it)
    description: str
    setting: str  # the setting (from the environment) that holds the schedule

    def schedule(self) -> Every | Cron:
        value = getattr(settings, self.setting)
        if isinstance(value, str):
            return Cron(value)
        unit = "hours" if self.setting.endswith("_HOURS") else "minutes"
        return Every(int(value), unit)


PERIODIC: tuple[Periodic, ...] = (
    Periodic(
        "core: deliver notifications",
        "core.deliver_notifications",
        "any",
        "Send queued notifications to their targets; retry the ones that failed.",
        "NOTIFICATION_RETRY_MINUTES",
    ),
    Periodic(
        "updates: periodic check for updates",
        "updates.periodic_check",
        "school",
        "Check the update sources (with a random jitter).",
        "UPDATES_CHECK_INTERVAL_HOURS",
    ),
    Periodic(
        "updates: critical deadlines and overrides",
        "updates.enforcement_tick",
        "school",
        "Expire overrides, plan the critical update, send deadline warnings.",
        "UPDATES_ENFORCEMENT_TICK_MINUTES",
    ),
    Periodic(
        "updates: scan the offline folder",
        "updates.offline_scan",
        "school",
        "Verify and offer new bundles in the offline folder.",
        "UPDATES_OFFLINE_SCAN_MINUTES",
    ),
    Periodic(
        "updates: check the stack for drift",
        "updates.check_drift",
        "school",
        "Compare the running containers with the project; show hand edits.",
        "UPDATES_DRIFT_CHECK_MINUTES",
    ),
    Periodic(
        "backups: prune",
        "backups.prune_backups",
        "school",
        "Delete backups outside the retention policy (BACKUP_KEEP_*).",
        "BACKUP_PRUNE_CRON",
    ),
    Periodic(
        "vendor: refresh index",
        "vendor.refresh_index",
        "vendor",
        "Re-sign the release index well before it expires (VENDOR_INDEX_TTL_DAYS).",
        "VENDOR_INDEX_REFRESH_MINUTES",
    ),
    Periodic(
        "vendor: silent schools",
        "vendor.tell_silent_schools",
        "vendor",
        "Tell staff of schools not seen for VENDOR_SILENT_SCHOOL_DAYS.",
        "VENDOR_SILENT_CHECK_HOURS",
    ),
    Periodic(
        "vendor: prune check-ins",
        "vendor.prune_checkins",
        "vendor",
        "Delete check-in history older than VENDOR_CHECKIN_KEEP_DAYS.",
        "VENDOR_CHECKIN_PRUNE_HOURS",
    ),
    Periodic(
        "vendor: flush check-ins",
        "vendor.flush_checkins",
        "vendor",
        "Write the school check-ins buffered in Redis to the database.",
        "VENDOR_CHECKIN_FLUSH_MINUTES",
    ),
)


def entries_for_this_role() -> list[Periodic]:
    roles = {"any", "school"} if settings.SCHOOL_ROLE_ENABLED else {"any"}
    if settings.VENDOR_ROLE_ENABLED:
        roles.add("vendor")
    return [p for p in PERIODIC if p.role in roles]


def _current_schedule(task: Any) -> str:
    """How a ``PeriodicTask`` row is scheduled now, in ``describe()``'s words."""
    if task.interval is not None:
        return Every(task.interval.every, task.interval.period).describe()
    if task.crontab is not None:
        c = task.crontab
        return Cron(
            f"{c.minute} {c.hour} {c.day_of_month} {c.month_of_year} {c.day_of_week}"
        ).describe()
    return "none"


def _schedule_fields(schedule: Every | Cron, using: str) -> dict[str, Any]:
    from django_celery_beat.models import CrontabSchedule, IntervalSchedule

    if isinstance(schedule, Every):
        interval, _ = IntervalSchedule.objects.using(using).get_or_create(
            every=schedule.count, period=schedule.unit
        )
        return {"interval": interval, "crontab": None}
    minute, hour, day, month, weekday = schedule.fields
    crontab, _ = CrontabSchedule.objects.using(using).get_or_create(
        minute=minute,
        hour=hour,
        day_of_month=day,
        month_of_year=month,
        day_of_week=weekday,
        timezone="UTC",
    )
    return {"interval": None, "crontab": crontab}


def install_periodic_tasks(*, using: str = "default") -> list[str]:
    """Make the beat entries match the table by the module's rule; return what changed."""
    from django_celery_beat.models import PeriodicTask

    from clms_updates.models import DeclaredSchedule

    changed: list[str] = []
    for entry in entries_for_this_role():
        schedule = entry.schedule()
        declared = schedule.describe()
        last = DeclaredSchedule.objects.using(using).filter(name=entry.name).first()
        task = PeriodicTask.objects.using(using).filter(name=entry.name).first()
        if task is None:
            PeriodicTask.objects.using(using).create(
                name=entry.name,
                task=entry.task,
                description=entry.description,
                enabled=True,
                **_schedule_fields(schedule, using),
            )
            changed.append(f"{entry.name}: created, {declared}")
        else:
            updates: dict[str, Any] = {}
            if task.task != entry.task:
                updates["task"] = entry.task
            current = _current_schedule(task)
            edited = last is not None and current != last.schedule
            if current != declared and not edited:
                updates.update(_schedule_fields(schedule, using))
                changed.append(f"{entry.name}: {current} -> {declared}")
            elif edited and current != declared:
                logger.info(
                    "Beat entry %r keeps the schedule an admin set (%s) instead of "
                    "%s from %s; delete it in the admin to follow the environment",
                    entry.name,
                    current,
                    declared,
                    entry.setting,
                )
            if updates:
                for name, value in updates.items():
                    setattr(task, name, value)
                task.save(using=using)  # also tells beat the schedule changed
            if edited:
                continue
        DeclaredSchedule.objects.using(using).update_or_create(
            name=entry.name, defaults={"schedule": declared}
        )
    return changed

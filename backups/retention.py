"""Retention: which backups to keep, and deleting the rest.

Kept: the last ``BACKUP_KEEP_LAST`` good backups; the newest good backup of
each of the last ``BACKUP_KEEP_DAILY`` days and of each of the last
``BACKUP_KEEP_WEEKLY`` ISO weeks (today and this week count); always the newest
verified backup; every held backup; failed backups for a week (so the admin
can read why). Busy backups are never touched. "Good" is created or verified.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.conf import settings
from django.utils import timezone

from backups.locking import exclusive
from backups.models import Backup
from backups.storage import LocalTarget, copy_target
from clms_updates import audit
from clms_updates.actions import Actor

FAILED_KEPT_FOR = dt.timedelta(days=7)


@dataclass
class Plan:
    """What retention would keep (with why) and delete."""

    keep: dict[int, list[str]] = field(default_factory=dict)
    delete: list[Backup] = field(default_factory=list)


def plan_retention(now: dt.datetime | None = None) -> Plan:
    """Decide, without changing anything, which settled backups go."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    this_monday = today - dt.timedelta(days=today.weekday())
    settled = list(
        Backup.objects.filter(status__in=Backup.SETTLED_STATUSES).order_by(
            "-created_at", "-id"
        )
    )
    good = [b for b in settled if b.status != Backup.Status.FAILED]
    plan = Plan()

    def keep(backup: Backup, why: str) -> None:
        plan.keep.setdefault(backup.pk, []).append(why)

    for backup in good[: settings.BACKUP_KEEP_LAST]:
        keep(backup, "recent")
    days_seen: set[dt.date] = set()
    weeks_seen: set[dt.date] = set()
    for backup in good:
        day = timezone.localdate(backup.created_at)
        if (today - day).days < settings.BACKUP_KEEP_DAILY and day not in days_seen:
            days_seen.add(day)
            keep(backup, "daily")
        monday = day - dt.timedelta(days=day.weekday())
        if (this_monday - monday).days // 7 < settings.BACKUP_KEEP_WEEKLY and (
            monday not in weeks_seen
        ):
            weeks_seen.add(monday)
            keep(backup, "weekly")
    newest_verified = next(
        (b for b in good if b.status == Backup.Status.VERIFIED), None
    )
    if newest_verified:
        keep(newest_verified, "newest verified")
    for backup in settled:
        if backup.hold:
            keep(backup, f"held by {backup.hold}")
        if (
            backup.status == Backup.Status.FAILED
            and now - backup.created_at < FAILED_KEPT_FOR
        ):
            keep(backup, "failed this week")
    plan.delete = [b for b in settled if b.pk not in plan.keep]
    return plan


def prune_backups(*, dry_run: bool = False, actor: Actor | None = None) -> list[Backup]:
    """Delete what ``plan_retention`` says goes (nothing when ``dry_run``)."""
    with exclusive():
        plan = plan_retention()
        if not dry_run:
            for backup in plan.delete:
                remove(backup)
            if plan.delete:
                audit.record(
                    "backup.prune",
                    actor=actor,
                    target=", ".join(b.name for b in plan.delete)[:200],
                    deleted=[b.name for b in plan.delete],
                )
        return plan.delete


def deletion_refusal(backup: Backup) -> str:
    """Why ``backup`` may not be deleted now, or "" when it may.

    A busy backup, a held one (an update may need it for a rollback) and the
    newest verified one (the last known-good restore point) are kept.
    """
    if backup.status in Backup.BUSY_STATUSES:
        return f"Backup {backup.name} is {backup.status}; wait until it finishes."
    if backup.hold:
        return (
            f"Backup {backup.name} is held by {backup.hold} (an update may need it "
            "for a rollback); it is released when that update finishes."
        )
    newest = (
        Backup.objects.filter(status=Backup.Status.VERIFIED)
        .order_by("-created_at", "-id")
        .first()
    )
    if newest is not None and newest.pk == backup.pk:
        return (
            f"Backup {backup.name} is the newest verified backup, the last known "
            "good restore point, so it is kept. Make and verify a newer one first."
        )
    return ""


def remove(backup: Backup) -> None:
    """Delete a backup's files (here and on the copy target), then its row."""
    local = LocalTarget()
    for file_name in filter(None, [backup.file_name, backup.name + ".manifest.json"]):
        local.delete(file_name)
    if backup.copies:
        target = copy_target()
        if target is not None:
            for file_name in filter(
                None, [backup.file_name, backup.name + ".manifest.json"]
            ):
                target.delete(file_name)
    backup.delete()

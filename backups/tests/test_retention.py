"""Retention keeps exactly the right set (time-travelled)."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core.management import call_command

from backups import retention
from backups.models import Backup
from backups.tests.factories import make_backup

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)  # a Friday


def at(month: int, day: int, hour: int = 1, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=dt.UTC)


@pytest.fixture
def policy(settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.BACKUP_DIR = tmp_path / "backups"
    settings.CLMS_DATABASE_URL = f"sqlite:///{tmp_path / 'none.sqlite3'}"
    settings.BACKUP_KEEP_LAST = 3
    settings.BACKUP_KEEP_DAILY = 7
    settings.BACKUP_KEEP_WEEKLY = 4


def test_retention_keeps_last_daily_weekly_held_and_recent_failures(policy):
    with time_machine.travel(NOW, tick=False):
        made = {}
        for days_back in range(0, 41):
            when = NOW.replace(hour=1) - dt.timedelta(days=days_back)
            made[when.date()] = make_backup(created_at=when)
        made[dt.date(2026, 11, 27)].status = Backup.Status.CREATED
        made[dt.date(2026, 11, 27)].save()
        early_today = make_backup(created_at=at(11, 27, 0, 30))
        made[dt.date(2026, 10, 28)].hold = "update-run:3"
        made[dt.date(2026, 10, 28)].save()
        recent_failure = make_backup(
            status=Backup.Status.FAILED, created_at=at(11, 25, 5)
        )
        old_failure = make_backup(status=Backup.Status.FAILED, created_at=at(11, 17, 5))
        busy = make_backup(status=Backup.Status.PENDING, created_at=at(11, 7, 5))

        gone = retention.prune_backups()

        kept_days = sorted(
            b.created_at.date()
            for b in Backup.objects.exclude(
                status__in=[Backup.Status.FAILED, Backup.Status.PENDING]
            ).exclude(pk=early_today.pk)
        )
        assert kept_days == [
            dt.date(2026, 10, 28),  # held by an update run
            dt.date(2026, 11, 8),  # weekly: week of 2 Nov
            dt.date(2026, 11, 15),  # weekly: week of 9 Nov
            *[
                dt.date(2026, 11, d) for d in range(21, 28)
            ],  # daily (22nd is weekly too)
        ]
        assert Backup.objects.filter(pk=early_today.pk).exists()  # one of the last 3
        assert Backup.objects.filter(pk=recent_failure.pk).exists()
        assert not Backup.objects.filter(pk=old_failure.pk).exists()
        assert Backup.objects.filter(pk=busy.pk).exists()
        assert len(gone) == 41 - 10 + 1


def test_the_newest_verified_backup_is_never_pruned(policy, settings):
    settings.BACKUP_KEEP_LAST = 1
    settings.BACKUP_KEEP_DAILY = 0
    settings.BACKUP_KEEP_WEEKLY = 0
    with time_machine.travel(NOW, tick=False):
        old_verified = make_backup(created_at=at(9, 1))
        older_verified = make_backup(created_at=at(8, 1))
        for day in (10, 11, 12):
            make_backup(status=Backup.Status.CREATED, created_at=at(11, day))
        gone = retention.prune_backups()
    names = {b.name for b in gone}
    assert old_verified.name not in names
    assert older_verified.name in names
    assert Backup.objects.filter(pk=old_verified.pk).exists()
    assert Backup.objects.count() == 2


def test_a_dry_run_lists_but_deletes_nothing(policy, settings, capsys):
    settings.BACKUP_KEEP_LAST = 1
    settings.BACKUP_KEEP_DAILY = 0
    settings.BACKUP_KEEP_WEEKLY = 0
    with time_machine.travel(NOW, tick=False):
        make_backup(created_at=at(11, 20))
        doomed = make_backup(created_at=at(11, 10))
        call_command("prune_backups", "--dry-run")
    out = capsys.readouterr().out
    assert f"Would delete {doomed.name}" in out
    assert Backup.objects.count() == 2


def test_the_nightly_prune_is_scheduled_by_beat():
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(name="backups: prune")
    assert task.task == "backups.prune_backups"
    assert task.crontab is not None and task.enabled

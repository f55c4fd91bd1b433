"""Periodic jobs: declared once, and one rule for what a migrate does to an admin's edit."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from clms_updates.periodic import PERIODIC, install_periodic_tasks

pytestmark = pytest.mark.django_db

SCAN = "updates: scan the offline folder"


def _scan() -> PeriodicTask:
    return PeriodicTask.objects.get(name=SCAN)


def test_every_declared_job_exists_after_migrate_with_its_schedule(settings) -> None:
    names = set(PeriodicTask.objects.values_list("name", flat=True))
    assert {p.name for p in PERIODIC} <= names  # CLMS_ROLE=both runs every job
    scan = _scan()
    assert scan.task == "updates.offline_scan" and scan.enabled
    assert scan.interval.every == settings.UPDATES_OFFLINE_SCAN_MINUTES
    prune = PeriodicTask.objects.get(name="backups: prune")
    minute, hour = settings.BACKUP_PRUNE_CRON.split()[:2]
    assert (prune.crontab.minute, prune.crontab.hour) == (minute, hour)


def test_a_schedule_nobody_edited_follows_the_environment(settings) -> None:
    settings.UPDATES_OFFLINE_SCAN_MINUTES = 20
    changed = install_periodic_tasks()
    assert any(SCAN in line for line in changed)
    assert (_scan().interval.every, _scan().interval.period) == (20, "minutes")


def test_an_admins_schedule_and_disabling_survive_a_migrate(settings) -> None:
    scan = _scan()
    scan.interval, _ = IntervalSchedule.objects.get_or_create(
        every=45, period=IntervalSchedule.MINUTES
    )
    scan.enabled = False
    scan.save()
    settings.UPDATES_OFFLINE_SCAN_MINUTES = 20
    call_command("migrate", verbosity=0)
    scan.refresh_from_db()
    assert (scan.interval.every, scan.enabled) == (45, False)


def test_a_deleted_entry_comes_back_from_the_environment(settings) -> None:
    _scan().delete()
    settings.UPDATES_OFFLINE_SCAN_MINUTES = 15
    install_periodic_tasks()
    assert (_scan().interval.every, _scan().enabled) == (15, True)


def test_a_task_renamed_in_the_code_is_corrected_even_on_an_edited_entry() -> None:
    PeriodicTask.objects.filter(name=SCAN).update(task="updates.old_name")
    install_periodic_tasks()
    assert _scan().task == "updates.offline_scan"


def test_every_declared_job_names_a_task_the_worker_knows() -> None:
    """A beat entry whose task name no worker registered is dropped by the
    worker ("Received unregistered task"): the job silently never runs."""
    from clms_updates.celery import app

    app.loader.import_default_modules()
    unknown = [p.task for p in PERIODIC if p.task not in app.tasks]
    assert not unknown, f"beat sends tasks no worker registers: {unknown}"

"""Critical deadlines with a real Celery worker: start-up expiry check and the beat task."""

from __future__ import annotations

import time
from datetime import time as clock
from datetime import timedelta

import pytest
from django.utils import timezone

from clms_updates.actions import Actor
from clms_updates.celery import app
from clms_updates.models import AuditEntry
from updates import actions
from updates.models import AgentState, MaintenanceWindow, UpdateRun
from updates.tests.factories import make_release

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]


def wait_for(condition, what: str, timeout: float = 30):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    pytest.fail(f"{what} did not happen within {timeout:g} s")


def test_the_beat_entries_and_task_modules_are_configured():
    from django_celery_beat.models import PeriodicTask

    app.loader.import_default_modules()
    assert "updates.enforcement_tick" in app.tasks
    assert "updates.offline_scan" in app.tasks
    tasks = set(PeriodicTask.objects.values_list("task", flat=True))
    assert {"updates.enforcement_tick", "updates.offline_scan"} <= tasks


def test_a_starting_worker_audits_overrides_that_expired_while_it_was_down(
    request, school_admin
):
    AgentState.load()
    AgentState.record_installed("1.0.0")
    make_release(
        "1.0.2", critical=True, force_after=timezone.now() - timedelta(hours=5)
    )
    actions.grant_override(
        actor=Actor(user=school_admin, via="page"),
        reason="Power cut, update tomorrow",
        hours=1,
        now=timezone.now() - timedelta(hours=2),
    )
    assert not AuditEntry.objects.filter(action="updates.override.expired").exists()

    _, _, log = request.getfixturevalue("celery_worker_process")

    wait_for(
        lambda: AuditEntry.objects.filter(action="updates.override.expired").exists(),
        "the expiry audit at worker start\n" + log.read_text()[-2000:],
    )


def test_the_tick_task_plans_the_critical_update_on_a_worker(celery_worker_process):
    AgentState.load()
    AgentState.record_installed("1.0.0")
    MaintenanceWindow.objects.create(
        weekdays=list(range(7)), start=clock(22), end=clock(5)
    )
    deadline = timezone.now() + timedelta(days=3)
    make_release("1.0.2", critical=True, force_after=deadline)
    app.send_task("updates.enforcement_tick")
    wait_for(
        lambda: UpdateRun.objects.filter(to_version="1.0.2").exists(),
        "the critical update being scheduled",
    )
    run = UpdateRun.objects.get(to_version="1.0.2")
    assert run.state == UpdateRun.State.SCHEDULED
    assert run.scheduled_for is not None and run.scheduled_for < deadline

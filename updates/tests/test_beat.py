"""A scheduled run is started by a real django-celery-beat and a real worker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from clms_updates.actions import Actor
from conftest import database_url_for_subprocess
from updates import actions
from updates.models import UpdateRun
from updates.tests.factories import make_release

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]

ROOT = Path(__file__).resolve().parents[2]
SYSTEM = Actor.system()


@pytest.fixture
def beat_process(celery_worker_process, tmp_path):  # type: ignore[no-untyped-def]
    """celery beat with the database scheduler, checking every second."""
    # Only the runs under test: the periodic check would call the network.
    PeriodicTask.objects.filter(task="updates.periodic_check").update(enabled=False)
    log = tmp_path / "beat.log"
    env = {**os.environ, "DATABASE_URL": database_url_for_subprocess()}
    process = subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "clms_updates", "beat",
            "-l", "info", "--max-interval", "1", "--pidfile=",
            "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler",
        ],
        env=env, cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    yield process, log
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def test_beat_starts_a_scheduled_run_and_never_a_cancelled_one(beat_process) -> None:
    release = make_release("1.1.0")
    cancelled = actions.schedule_update(
        release.version,
        actor=SYSTEM,
        at=timezone.now() + timedelta(seconds=2),
        force=True,
    )
    actions.cancel_run(cancelled.pk, actor=SYSTEM)
    run = actions.schedule_update(
        release.version,
        actor=SYSTEM,
        at=timezone.now() + timedelta(seconds=3),
        force=True,
    )

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.is_terminal:
            break
        time.sleep(0.5)
    _, log = beat_process
    assert run.state == UpdateRun.State.FAILED, log.read_text()[-3000:]
    assert run.error_code == "verification_failed"
    assert run.started_at >= run.scheduled_for
    cancelled.refresh_from_db()
    assert cancelled.state == UpdateRun.State.CANCELLED
    assert cancelled.started_at is None

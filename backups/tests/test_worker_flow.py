"""End to end through a real Celery worker: API create, verify and restore."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest

from backups.models import Backup
from backups.tests.conftest import library_rows
from clms_updates.models import AuditEntry

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]


@pytest.fixture
def worker_env(clms_db, settings, monkeypatch):  # type: ignore[no-untyped-def]
    """The worker process inherits where the CLMS database and backups live."""
    monkeypatch.setenv("CLMS_DATABASE_URL", clms_db)
    monkeypatch.setenv("BACKUP_DIR", str(settings.BACKUP_DIR))
    return clms_db


def _wait_for(predicate, log: Path, timeout: float = 90):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.3)
    pytest.fail("timed out; worker log:\n" + log.read_text()[-3000:])


def test_a_backup_made_and_restored_through_the_api_runs_in_the_worker(
    worker_env, celery_worker_process, admin_api, school_admin
):
    _, _, log = celery_worker_process
    before = library_rows(worker_env)
    created = admin_api.post("/api/backups/", {"reason": "api"}, format="json")
    assert created.status_code == 202
    backup_id = created.json()["id"]

    backup = _wait_for(
        lambda: Backup.objects.filter(
            pk=backup_id, status__in=["verified", "failed"]
        ).first(),
        log,
    )
    assert backup.status == "verified", backup.failure_reason
    assert "Verified" in backup.log and backup.percent == 100

    with psycopg.connect(worker_env, autocommit=True) as conn:
        conn.execute("TRUNCATE loans")
    response = admin_api.post(
        f"/api/backups/{backup_id}/restore/",
        {"confirm": backup.name, "reason": "undo"},
        format="json",
    )
    assert response.status_code == 202
    _wait_for(
        lambda: AuditEntry.objects.filter(action__startswith="backup.restore").first(),
        log,
    )
    entry = AuditEntry.objects.get(action__startswith="backup.restore")
    assert entry.action == "backup.restore" and entry.user == school_admin
    assert library_rows(worker_env) == before

"""A backup process killed midway leaves nothing marked good, and no temp file
after the next run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from backups import operations
from backups.models import Backup
from conftest import database_url_for_subprocess

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]

ROOT = Path(__file__).resolve().parents[2]


def _manage(*args: str, env: dict[str, str], **kwargs):  # type: ignore[no-untyped-def]
    return subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kwargs,
    )


def _env(clms_db: str, backup_dir: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url_for_subprocess(),
        "CLMS_DATABASE_URL": clms_db,
        "BACKUP_DIR": str(backup_dir),
        **extra,
    }


def test_killing_a_backup_midway_leaves_nothing_good_and_the_next_run_cleans_up(
    clms_db, settings
):
    with psycopg.connect(clms_db, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE noise AS SELECT g, md5(random()::text) || md5(g::text) AS t "
            "FROM generate_series(1, 400000) g"
        )
    backup_dir = Path(settings.BACKUP_DIR)
    # The slowest zstd level on one thread keeps the dump running long enough.
    process = _manage(
        "create_backup",
        env=_env(clms_db, backup_dir, BACKUP_ZSTD_LEVEL="19", BACKUP_ZSTD_THREADS="1"),
    )
    deadline = time.monotonic() + 60
    temp_files: list[Path] = []
    while time.monotonic() < deadline and not temp_files:
        temp_files = (
            [p for p in backup_dir.glob(".clms-*.partial") if p.stat().st_size > 0]
            if backup_dir.is_dir()
            else []
        )
        time.sleep(0.02)
    assert temp_files, "the backup never started writing"
    process.send_signal(signal.SIGKILL)
    process.wait()

    killed = Backup.objects.get()
    assert killed.status == Backup.Status.RUNNING  # what the dead process left
    assert not killed.is_usable
    assert [p for p in backup_dir.glob("clms-*")] == []  # nothing under a final name
    assert any(p.exists() for p in temp_files)

    fresh = operations.create_verified_backup(reason="after crash", clms_version="1")
    killed.refresh_from_db()
    assert killed.status == Backup.Status.FAILED
    assert "stopped before the backup was complete" in killed.failure_reason
    assert not any(p.exists() for p in temp_files)
    assert list(backup_dir.glob("*.partial")) == []
    assert fresh.status == Backup.Status.VERIFIED


def test_commands_exit_non_zero_with_a_clear_message(clms_db, settings):
    env = _env(clms_db, Path(settings.BACKUP_DIR))
    missing = _manage("verify_backup", "999999", env=env)
    out, err = missing.communicate(timeout=60)
    assert missing.returncode == 1
    assert b"There is no backup with id 999999" in err

    made = _manage("create_backup", "--reason", "cmd", env=env)
    out, err = made.communicate(timeout=120)
    assert made.returncode == 0, err.decode()
    backup = Backup.objects.get()
    assert backup.status == Backup.Status.VERIFIED and b"Verified" in out

    Path(settings.BACKUP_DIR, backup.file_name).write_bytes(b"broken")
    bad = _manage("verify_backup", str(backup.pk), env=env)
    out, err = bad.communicate(timeout=60)
    assert bad.returncode == 1
    assert b"truncated" in err

    refused = _manage("restore_backup", str(backup.pk), env=env)
    out, err = refused.communicate(timeout=60)
    assert refused.returncode == 1
    assert b"only a verified backup can be restored" in err

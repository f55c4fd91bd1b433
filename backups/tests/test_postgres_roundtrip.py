"""Backup, verify and restore of a real PostgreSQL 15 CLMS database."""

from __future__ import annotations

import psycopg
import pytest

from backups import operations
from backups.errors import BackupError
from backups.models import Backup
from backups.tests.conftest import library_rows, scratch_databases
from clms_updates.actions import Actor
from clms_updates.models import AuditEntry

pytestmark = [pytest.mark.django_db, pytest.mark.services]


def test_backup_verify_drop_restore_gives_back_identical_rows(
    clms_db, postgres_url, school_admin
):
    before = library_rows(clms_db)
    backup = operations.create_verified_backup(
        reason="test", clms_version="3.1.0", hold="update-run:1"
    )
    assert backup.status == Backup.Status.VERIFIED
    assert backup.manifest["row_counts"] == {
        "public.books": 300,
        "public.loans": 1000,
        "public.students": 80,
    }
    assert backup.manifest["clms_version"] == "3.1.0"
    assert len(backup.sha256) == 64 and backup.size > 0
    assert scratch_databases(postgres_url) == []

    with psycopg.connect(clms_db, autocommit=True) as conn:
        conn.execute("DELETE FROM loans WHERE id % 2 = 0")
        conn.execute("UPDATE books SET title = 'changed'")
        conn.execute("CREATE TABLE added_by_migration (id int)")
    assert library_rows(clms_db) != before

    operations.restore_backup(
        backup.pk, actor=Actor(user=school_admin), reason="rollback test"
    )

    assert library_rows(clms_db) == before
    with psycopg.connect(clms_db) as conn:
        assert (
            conn.execute("SELECT to_regclass('added_by_migration')").fetchone()[0]
            is None
        )
        # Sequences come back too: the next id follows the restored rows.
        assert (
            conn.execute(
                "INSERT INTO students (name, form) VALUES ('n', 'f') RETURNING id"
            ).fetchone()[0]
            == 81
        )
    entry = AuditEntry.objects.get(action="backup.restore")
    assert entry.user == school_admin and entry.target == backup.name
    assert entry.detail["reason"] == "rollback test"


def test_an_unverified_backup_cannot_be_restored(clms_db):
    from backups import creating

    backup = creating.new_backup(reason="test")
    creating.run_backup(backup.pk)
    with pytest.raises(BackupError, match="only a verified backup can be restored"):
        operations.restore_backup(backup.pk)


def test_a_pg_dump_older_than_the_server_is_refused(clms_db, settings, tmp_path):
    # A fake client-tools directory whose pg_dump claims an old version.
    bindir = tmp_path / "fake-old-bin"
    bindir.mkdir()
    for tool, version in (
        ("pg_dump", "9.6.24"),
        ("pg_restore", "9.6.24"),
        ("psql", "9.6.24"),
    ):
        script = bindir / tool
        script.write_text(f"#!/bin/sh\necho '{tool} (PostgreSQL) {version}'\n")
        script.chmod(0o755)
    settings.CLMS_PG_BINDIR = str(bindir)
    with pytest.raises(BackupError, match=r"older than the PostgreSQL 15"):
        operations.create_verified_backup(reason="t", clms_version="1")
    failed = Backup.objects.get()
    assert failed.status == Backup.Status.FAILED
    assert "client tools" in failed.failure_reason


def test_release_hold_frees_held_backups(clms_db):
    backup = operations.create_verified_backup(
        reason="t", clms_version="1", hold="update-run:7"
    )
    assert operations.release_hold("update-run:7") == 1
    backup.refresh_from_db()
    assert backup.hold == ""


def test_target_check_reports_an_unwritable_directory(clms_db, settings, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    settings.BACKUP_DIR = blocker / "backups"
    with pytest.raises(BackupError, match="cannot be created"):
        operations.check_target_writable()

"""Backup file formats: the parallel container (2) and earlier single dumps (1)."""

from __future__ import annotations

import subprocess

import psycopg
import pytest

from backups import creating, operations, verifying
from backups.checks import BackupChunks
from backups.engines.pgcontainer import MAGIC, container_streams, stream_of
from backups.engines.pgtools import tool_path
from backups.engines.postgres import PostgresEngine
from backups.errors import BackupError
from backups.models import Backup
from backups.storage import LocalTarget
from backups.streams import HashingWriter, compressor
from backups.tests.conftest import library_rows, scratch_databases
from clms_updates.actions import Actor

pytestmark = [pytest.mark.django_db, pytest.mark.services]


def test_a_postgres_backup_holds_two_dumps_taken_in_parallel(clms_db):
    backup = operations.create_verified_backup(reason="t", clms_version="1")
    assert backup.status == Backup.Status.VERIFIED
    assert backup.manifest["format"] == 2
    chunks = BackupChunks(backup)
    assert next(iter(chunks)).startswith(MAGIC)
    assert container_streams(chunks) == 2
    # Each stream is a whole pg_dump archive of its own.
    for stream in (0, 1):
        assert next(stream_of(chunks, stream)).startswith(b"PGDMP")
    assert PostgresEngine(clms_db).list_tables(chunks) == {
        "public.books",
        "public.loans",
        "public.students",
    }


def _format_1_backup(clms_db: str) -> Backup:
    """A backup as versions before the container wrote it: one pg_dump stream."""
    engine = PostgresEngine(clms_db)
    backup = creating.new_backup(reason="made by an earlier version")
    backup.start()
    file_name = backup.name + engine.suffix
    target = LocalTarget()
    target.check_writable()
    dump = subprocess.run(
        [tool_path("pg_dump"), "--format=custom", "--compress=0", clms_db],
        capture_output=True,
        check=True,
    ).stdout
    with target.writing(file_name) as raw:
        hashing = HashingWriter(raw)
        with compressor().stream_writer(hashing, closefd=False) as packed:  # type: ignore[arg-type]
            packed.write(dump)
    with engine.connect() as conn:
        counts = engine.row_counts(conn)
    backup.engine = engine.kind
    backup.file_name = file_name
    backup.size = hashing.size
    backup.sha256 = hashing.hexdigest()
    backup.manifest = {"format": 1, "row_counts": counts}
    backup.mark_created()
    backup.save()
    return backup


def test_a_format_1_backup_from_an_earlier_version_still_verifies_and_restores(
    clms_db, postgres_url, school_admin
):
    before = library_rows(clms_db)
    old = _format_1_backup(clms_db)
    assert next(iter(BackupChunks(old))).startswith(b"PGDMP")

    verifying.verify_backup(old.pk)
    old.refresh_from_db()
    assert old.status == Backup.Status.VERIFIED, old.failure_reason
    assert scratch_databases(postgres_url) == []

    with psycopg.connect(clms_db, autocommit=True) as conn:
        conn.execute("DELETE FROM loans WHERE id % 3 = 0")
        conn.execute("UPDATE students SET name = 'changed'")
    operations.restore_backup(
        old.pk, actor=Actor(user=school_admin), reason="old format"
    )
    assert library_rows(clms_db) == before


def test_a_container_cut_off_mid_record_is_reported_as_truncated():
    whole = MAGIC + bytes([1]) + bytes([0]) + (10).to_bytes(4, "big") + b"0123456789"
    assert b"".join(stream_of([whole], 0)) == b"0123456789"
    with pytest.raises(BackupError, match="truncated or damaged"):
        list(stream_of([whole[:-3]], 0))

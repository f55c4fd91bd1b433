"""Each kind of damage to a backup file is caught, named, and marks it failed."""

from __future__ import annotations

import subprocess

import psycopg
import pytest

from backups import operations, restoring, verifying
from backups.errors import BackupError
from backups.models import Backup
from backups.storage import LocalTarget
from backups.tests.conftest import library_rows, scratch_databases

pytestmark = [pytest.mark.django_db, pytest.mark.services]


@pytest.fixture
def verified(clms_db) -> Backup:  # type: ignore[no-untyped-def]
    return operations.create_verified_backup(reason="t", clms_version="1")


def _path(backup: Backup):  # type: ignore[no-untyped-def]
    return LocalTarget().path(backup.file_name)


def _assert_failed_with(backup: Backup, text: str) -> None:
    with pytest.raises(BackupError, match=text):
        verifying.verify_backup(backup.pk)
    backup.refresh_from_db()
    assert backup.status == Backup.Status.FAILED
    assert text in backup.failure_reason
    assert not backup.is_usable
    with pytest.raises(BackupError, match="only a verified backup"):
        restoring.restore_backup(backup.pk)


def test_a_flipped_byte_is_caught_by_the_checksum(verified):
    path = _path(verified)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    _assert_failed_with(verified, "fails its checksum")


def test_a_truncated_file_is_reported_as_truncated(verified):
    path = _path(verified)
    path.write_bytes(path.read_bytes()[: verified.size // 2])
    _assert_failed_with(verified, "is truncated")


def test_a_missing_file_is_reported_as_missing(verified):
    _path(verified).unlink()
    _assert_failed_with(verified, "is missing")


def test_a_dump_that_does_not_restore_fails_and_drops_the_scratch_database(
    verified, postgres_url
):
    # Keep the checksum consistent but break the content: a lying manifest.
    verified.manifest["row_counts"]["public.books"] = 299
    verified.save()
    _assert_failed_with(verified, "public.books: manifest 299, restored 300")
    assert scratch_databases(postgres_url) == []


def test_a_damaged_backup_is_refused_by_restore_and_the_database_is_unchanged(
    verified, clms_db
):
    with psycopg.connect(clms_db, autocommit=True) as conn:
        conn.execute("DELETE FROM loans")
    _path(verified).write_bytes(b"garbage")
    with pytest.raises(BackupError, match=r"database is\s+unchanged|truncated"):
        restoring.restore_backup(verified.pk)
    verified.refresh_from_db()
    assert verified.status == Backup.Status.FAILED
    with psycopg.connect(clms_db) as conn:
        assert conn.execute("SELECT count(*) FROM loans").fetchone()[0] == 0


def test_a_full_disk_gives_a_clear_error_and_a_failed_backup(
    clms_db, settings, tmp_path, monkeypatch
):
    small = tmp_path / "small-disk"
    small.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(small)], check=True
    )
    try:
        with psycopg.connect(clms_db, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE noise AS SELECT g, md5(random()::text) || md5(random()::text) AS t "
                "FROM generate_series(1, 20000) g"
            )
        monkeypatch.setattr("backups.storage.MIN_FREE_BYTES", 0)
        settings.BACKUP_DIR = small
        with pytest.raises(BackupError, match="is full"):
            operations.create_verified_backup(reason="t", clms_version="1")
        backup = Backup.objects.get()
        assert backup.status == Backup.Status.FAILED
        assert "is full" in backup.failure_reason
        assert [p.name for p in small.iterdir() if p.name != ".lock"] == []
    finally:
        subprocess.run(["umount", str(small)], check=False)


@pytest.mark.parametrize(
    "single_pass_below", [32 * 1024 * 1024, 0], ids=["one-pass", "parallel"]
)
def test_a_dump_whose_indexes_cannot_be_rebuilt_fails_verification(
    clms_db, postgres_url, monkeypatch, single_pass_below
):
    monkeypatch.setattr(
        "backups.engines.postgres.SINGLE_PASS_BELOW_BYTES", single_pass_below
    )
    # A classic unrestorable dump: an index on a function that finds a table
    # through search_path, which pg_restore empties. Only a real restore
    # (including indexes) finds this.
    with psycopg.connect(clms_db, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION shelf_rank(int) RETURNS int LANGUAGE sql IMMUTABLE AS "
            "'SELECT $1 + (SELECT count(*)::int FROM books)'"
        )
        conn.execute("CREATE INDEX loans_rank ON loans (shelf_rank(book_id))")
    with pytest.raises(
        BackupError, match="restore test into a scratch database failed"
    ):
        operations.create_verified_backup(reason="t", clms_version="1")
    backup = Backup.objects.get()
    assert backup.status == Backup.Status.FAILED
    assert 'relation "books" does not exist' in backup.failure_reason
    assert scratch_databases(postgres_url) == []


def test_the_parallel_restore_test_passes_a_good_backup(
    clms_db, postgres_url, monkeypatch
):
    monkeypatch.setattr("backups.engines.postgres.SINGLE_PASS_BELOW_BYTES", 0)
    backup = operations.create_verified_backup(reason="t", clms_version="1")
    assert backup.status == Backup.Status.VERIFIED
    assert scratch_databases(postgres_url) == []


def test_a_file_swapped_after_the_check_is_never_what_is_restored(
    verified, clms_db, monkeypatch
):
    """The restore reads the copy it checked, not the file a second time."""
    before = library_rows(clms_db)
    with psycopg.connect(clms_db, autocommit=True) as conn:
        conn.execute("DELETE FROM loans")
    # Another backup, of the emptied library, consistent in itself.
    other = operations.create_verified_backup(reason="other", clms_version="1")
    engine_class = type(restoring.engine_for())
    real_restore = engine_class.restore

    def swap_then_restore(self, chunks):  # type: ignore[no-untyped-def]
        # Between the check and the engine reading the dump: someone with write
        # access to the backup folder replaces the file.
        _path(verified).write_bytes(_path(other).read_bytes())
        return real_restore(self, chunks)

    monkeypatch.setattr(engine_class, "restore", swap_then_restore)

    restoring.restore_backup(verified.pk)

    assert library_rows(clms_db) == before  # what was checked, loans included
    assert not list(LocalTarget().directory.glob(".restore-*"))  # copy removed

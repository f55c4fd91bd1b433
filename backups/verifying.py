"""Proving a backup restores: checksum, archive listing, scratch restore, row counts."""

from __future__ import annotations

import logging

from backups.checks import BackupChunks, check_file, compare_counts
from backups.engines import engine_for
from backups.errors import BackupError
from backups.locking import exclusive
from backups.models import Backup
from clms_updates import progress
from clms_updates.statemachine import InvalidTransition

logger = logging.getLogger(__name__)


def verify_backup(backup_id: int) -> Backup:
    """Verify ``backup_id``; it ends ``verified`` or ``failed`` (never usable again).

    1. The file exists, has the manifest's size and sha256.
    2. The archive lists data for exactly the manifest's tables.
    3. A restore into a scratch database gives the manifest's row counts; the
       scratch database is always dropped.
    Raises ``BackupError`` saying what failed.
    """
    with exclusive():
        backup = Backup.objects.get(pk=backup_id)
        try:
            backup.start_verify()
        except InvalidTransition as e:
            raise BackupError(
                f"Backup {backup.name} is {backup.status}; only a created or verified "
                "backup can be verified."
            ) from e
        try:
            _verify(backup)
        except BackupError as e:
            reason = f"Verification failed: {e}"
            backup.fail(reason)
            raise BackupError(f"Backup {backup.name}: {reason}") from e
        except Exception as e:
            logger.exception("Verifying %s failed unexpectedly", backup.name)
            reason = (
                f"Verification failed unexpectedly ({type(e).__name__}: {e}); see "
                "the agent's log."
            )
            backup.fail(reason)
            raise BackupError(f"Backup {backup.name}: {reason}") from e
        backup.mark_verified()
        return backup


def _verify(backup: Backup) -> None:
    engine = engine_for()
    if engine.kind != backup.engine:
        raise BackupError(
            f"the backup was made from a {backup.engine} database but "
            f"CLMS_DATABASE_URL is now {engine.kind}; verify it where it was made."
        )
    check_file(backup)
    expected = backup.manifest.get("row_counts", {})
    progress.publish(backup, "Reading the archive listing", percent=15)
    listed = engine.list_tables(BackupChunks(backup))
    if listed != set(expected):
        missing = sorted(set(expected) - listed)
        extra = sorted(listed - set(expected))
        raise BackupError(
            "the archive listing does not match the manifest "
            f"(missing: {', '.join(missing) or 'none'}; unexpected: "
            f"{', '.join(extra) or 'none'})."
        )
    progress.publish(backup, "Restoring into a scratch database", percent=25)
    counts = engine.scratch_restore_counts(
        lambda: BackupChunks(backup), size_hint=backup.size or 0
    )
    compare_counts(expected, counts)

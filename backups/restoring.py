"""Restoring a verified backup into the CLMS database, audited."""

from __future__ import annotations

import logging
from contextlib import ExitStack

from django.utils import timezone

from backups.checks import CopyChunks, checked_copy, compare_counts
from backups.engines import engine_for
from backups.errors import BackupError
from backups.locking import exclusive
from backups.models import Backup
from clms_updates import audit, progress
from clms_updates.actions import Actor

logger = logging.getLogger(__name__)


def restore_backup(
    backup_id: int, *, actor: Actor | None = None, reason: str = ""
) -> Backup:
    """Replace the CLMS database's contents with verified backup ``backup_id``.

    1. Refuse anything but a verified backup; copy its file privately,
       checking size and sha256 as it is copied (a backup can rot after
       verification, or be swapped).
    2. Restore that copy atomically (the engine rolls back on any error); the
       file itself is not read again.
    3. Compare row counts with the manifest; record who restored what, when.
    Raises ``BackupError``; a failed restore is audited too.
    """
    with exclusive():
        try:
            backup = Backup.objects.get(pk=backup_id)
        except Backup.DoesNotExist:
            raise BackupError(
                f"There is no backup with id {backup_id}; list them with the Backups "
                "page or GET /api/backups/."
            ) from None
        if not backup.is_usable:
            raise BackupError(
                f"Backup {backup.name} is {backup.get_status_display().lower()}, and "
                "only a verified backup can be restored. Verify it first, or pick a "
                "verified one."
            )
        with ExitStack() as stack:
            try:
                copy = stack.enter_context(checked_copy(backup))
            except BackupError as e:
                backup.fail(f"Checked before a restore: {e}")
                _audit_failure(backup, actor, reason, str(e))
                raise BackupError(
                    f"Backup {backup.name} was not restored: {e} The CLMS database "
                    "is unchanged."
                ) from e
            progress.publish(
                backup, "Restoring into the CLMS database", step="restore", percent=10
            )
            try:
                counts = engine_for().restore(CopyChunks(copy))
                compare_counts(backup.manifest.get("row_counts", {}), counts)
            except BackupError as e:
                progress.publish(backup, f"Restore failed: {e}", step="restore_failed")
                _audit_failure(backup, actor, reason, str(e))
                raise
        backup.restored_at = timezone.now()
        progress.publish(
            backup,
            "Restored into the CLMS database",
            step="restored",
            percent=100,
            extra_fields=("restored_at",),
        )
        audit.record(
            "backup.restore",
            actor=actor,
            target=backup.name,
            backup_id=backup.pk,
            sha256=backup.sha256,
            reason=reason,
            rows=sum(counts.values()),
        )
        return backup


def _audit_failure(
    backup: Backup, actor: Actor | None, reason: str, error: str
) -> None:
    audit.record(
        "backup.restore_failed",
        actor=actor,
        target=backup.name,
        backup_id=backup.pk,
        reason=reason,
        error=error[:1000],
    )

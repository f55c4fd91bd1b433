"""Copying a backup to the second target (S3-compatible storage)."""

from __future__ import annotations

from django.utils import timezone

from backups.errors import BackupError
from backups.models import Backup
from backups.storage import LocalTarget, S3Target, copy_target
from clms_updates import progress


def copy_backup(backup_id: int, target: S3Target | None = None) -> Backup:
    """Upload ``backup_id``'s file and manifest to the copy target; record where.

    The upload's size is checked against the manifest. Raises ``BackupError``.
    """
    target = target or copy_target()
    if target is None:
        raise BackupError(
            "No copy target is configured. Set BACKUP_COPY_TARGET=s3 and the "
            "BACKUP_S3_* settings."
        )
    backup = Backup.objects.get(pk=backup_id)
    local = LocalTarget()
    if not local.exists(backup.file_name):
        raise BackupError(
            f"The backup file {local.path(backup.file_name)} is missing, so it cannot "
            "be copied."
        )
    with local.open_read(backup.file_name) as handle:
        target.upload(backup.file_name, handle)
    manifest_name = backup.name + ".manifest.json"
    if local.exists(manifest_name):
        with local.open_read(manifest_name) as handle:
            target.upload(manifest_name, handle)
    uploaded = target.size(backup.file_name)
    if uploaded != backup.size:
        raise BackupError(
            f"The copy at {target.location(backup.file_name)} has {uploaded} bytes "
            f"instead of {backup.size}; the upload was incomplete. Try again."
        )
    location = target.location(backup.file_name)
    backup.copies = [c for c in backup.copies if c.get("location") != location] + [
        {"target": target.name, "location": location, "at": timezone.now().isoformat()}
    ]
    progress.publish(backup, f"Copied to {location}", extra_fields=("copies",))
    return backup


def fetch_from_copy(backup_id: int, target: S3Target | None = None) -> Backup:
    """Bring a backup's file back from the copy target into the local directory.

    Used when the local file is lost; verify the backup again afterwards.
    """
    target = target or copy_target()
    if target is None:
        raise BackupError("No copy target is configured to fetch the backup from.")
    backup = Backup.objects.get(pk=backup_id)
    with LocalTarget().writing(backup.file_name) as sink:
        target.download(backup.file_name, sink)
    return backup

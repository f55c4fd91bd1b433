"""Copying a backup to the second target (S3-compatible storage), and back.

The local directory holds the primary copy; ``BACKUP_COPY_TARGET`` names the
second one. Copies are recorded on the row (``Backup.copies``) so the list
shows every place a backup lives. Both directions hold the backup job lock, so
a copy never races a delete or a verify of the same file.
"""

from __future__ import annotations

from django.utils import timezone

from backups.errors import BackupError
from backups.locking import exclusive
from backups.models import Backup
from backups.storage import LocalTarget, S3Target, copy_target
from clms_updates import audit, progress
from clms_updates.actions import Actor

NO_TARGET_MESSAGE = (
    "No second backup target is configured, so there is nowhere to copy to or "
    "fetch from. Set BACKUP_COPY_TARGET=s3 and the BACKUP_S3_* settings (see "
    "docs/backups.md), then restart the agent and its worker."
)


def copy_target_label(target: S3Target | None = None) -> str:
    """Where copies go, e.g. ``s3://bucket/prefix/``; "" when there is no target."""
    target = target or copy_target()
    return target.location("") if target is not None else ""


def copy_refusal(backup: Backup, target: S3Target | None) -> str:
    """Why ``backup`` cannot be copied to ``target`` now, or "" when it can."""
    if target is None:
        return NO_TARGET_MESSAGE
    if backup.status != Backup.Status.VERIFIED:
        return (
            f"Backup {backup.name} is {backup.get_status_display().lower()}; only a "
            "verified backup is copied, so a copy is always one that restores. "
            "Verify it first."
        )
    if not backup.file_name or not LocalTarget().exists(backup.file_name):
        hint = (
            " Fetch it back from its copy first."
            if _copy_on(backup, target)
            else " It cannot be copied; make a new backup."
        )
        return (
            f"The backup file {LocalTarget().path(backup.file_name)} is missing." + hint
        )
    return ""


def fetch_refusal(backup: Backup, target: S3Target | None) -> str:
    """Why ``backup`` cannot be fetched back from ``target`` now, or "" when it can."""
    if target is None:
        return NO_TARGET_MESSAGE
    if backup.status not in (Backup.Status.CREATED, Backup.Status.VERIFIED):
        return (
            f"Backup {backup.name} is {backup.get_status_display().lower()}; only a "
            "created or verified backup is fetched back (a failed one is never used "
            "again; make a new backup)."
        )
    if not _copy_on(backup, target):
        return (
            f"Backup {backup.name} has no copy at {copy_target_label(target)}, so "
            "there is nothing to fetch."
        )
    if backup.file_name and LocalTarget().exists(backup.file_name):
        return (
            f"The backup file {LocalTarget().path(backup.file_name)} is already "
            "there; nothing needs fetching. Verify the backup to check it."
        )
    return ""


def _copy_on(backup: Backup, target: S3Target) -> bool:
    location = target.location(backup.file_name)
    return any(c.get("location") == location for c in backup.copies)


def copy_backup(
    backup_id: int,
    target: S3Target | None = None,
    *,
    actor: Actor | None = None,
) -> Backup:
    """Upload ``backup_id``'s file and manifest to the copy target; record where.

    1. Under the job lock, refuse what ``copy_refusal`` refuses.
    2. Stream the file, then the manifest, up; check the uploaded size against
       the backup's.
    3. Record the location on the row, publish progress and audit the copy.
    Any failure is published on the row, audited and raised as ``BackupError``.
    """
    target = target or copy_target()
    if target is None:
        raise BackupError(NO_TARGET_MESSAGE)
    with exclusive():
        backup = Backup.objects.get(pk=backup_id)
        try:
            refusal = copy_refusal(backup, target)
            if refusal:
                raise BackupError(refusal)
            location = target.location(backup.file_name)
            progress.publish(backup, f"Copying to {location}", step="copy", percent=0)
            _upload(backup, target)
        except BackupError as e:
            _record_failure(backup, "copy", e, actor=actor)
            raise
        backup.copies = [c for c in backup.copies if c.get("location") != location]
        backup.copies.append(
            {
                "target": target.name,
                "location": location,
                "at": timezone.now().isoformat(),
            }
        )
        progress.publish(
            backup,
            f"Copied to {location}",
            step="copied",
            percent=100,
            extra_fields=("copies",),
        )
        audit.record(
            "backup.copy",
            actor=actor,
            target=backup.name,
            backup_id=backup.pk,
            location=location,
            size=backup.size,
        )
        return backup


def _record_failure(
    backup: Backup, action: str, error: BackupError, *, actor: Actor | None
) -> None:
    """Show a failed copy or fetch on the backup's row and in the audit log."""
    progress.publish(backup, f"{action.capitalize()} failed: {error}", step=action)
    audit.record(
        f"backup.{action}_failed",
        actor=actor,
        target=backup.name,
        backup_id=backup.pk,
        error=str(error)[:1000],
    )


def _upload(backup: Backup, target: S3Target) -> None:
    local = LocalTarget()
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


def fetch_from_copy(
    backup_id: int,
    target: S3Target | None = None,
    *,
    actor: Actor | None = None,
) -> Backup:
    """Bring a backup's lost file back from the copy target into the local directory.

    Written atomically (temp file, then rename). The file's content is not
    trusted until the backup is verified again; callers do that next.
    Raises ``BackupError`` (published on the row and audited).
    """
    target = target or copy_target()
    if target is None:
        raise BackupError(NO_TARGET_MESSAGE)
    with exclusive():
        backup = Backup.objects.get(pk=backup_id)
        try:
            refusal = fetch_refusal(backup, target)
            if refusal:
                raise BackupError(refusal)
            location = target.location(backup.file_name)
            progress.publish(backup, f"Fetching from {location}", step="fetch")
            with LocalTarget().writing(backup.file_name) as sink:
                target.download(backup.file_name, sink)
        except BackupError as e:
            _record_failure(backup, "fetch", e, actor=actor)
            raise
        progress.publish(backup, f"Fetched from {location}", step="fetched")
        audit.record(
            "backup.fetch",
            actor=actor,
            target=backup.name,
            backup_id=backup.pk,
            location=location,
        )
        return backup

"""Every change a person or a schedule makes to the backups, with its rules and audit.

Create, verify, restore, delete, copy to the second target, fetch back from
it, prune. Each checks its rules and records who asked (with their address);
the work then runs in a worker (``background=True``, queued on commit by task
name, on behalf of the same actor) or here (a management command, the
pipeline). The Backup manager page, the API and the commands only parse
input and call these; ``operations`` is what the update pipeline calls.
"""

from __future__ import annotations

from django.db import transaction

from backups import copying, creating, operations, restoring, retention, verifying
from backups.errors import BackupError
from backups.locking import exclusive
from backups.models import Backup
from backups.storage import copy_target
from clms_updates import audit, progress
from clms_updates.actions import VIA_SYSTEM, ActionRefused, Actor
from clms_updates.permissions import require_school_admin
from clms_updates.queueing import queue_on_commit

CREATE_TASK = "backups.create_backup"
VERIFY_TASK = "backups.verify_backup"
RESTORE_TASK = "backups.restore_backup"
COPY_TASK = "backups.copy_backup"
FETCH_TASK = "backups.fetch_backup"


def _backup(backup_id: int) -> Backup:
    backup = Backup.objects.filter(pk=backup_id).first()
    if backup is None:
        raise ActionRefused(
            f"There is no backup with id {backup_id}; list them on the Backups page "
            "or with GET /api/backups/.",
            code="unknown_backup",
            field="backup",
        )
    return backup


def create_backup(
    *, actor: Actor, reason: str = "", verify: bool = True, background: bool = True
) -> Backup:
    """Start a backup of the CLMS database (then verify it and copy it if set up)."""
    require_school_admin(actor)
    text = (reason or "").strip()[:200] or f"manual ({actor.via})"
    with transaction.atomic():
        backup = creating.new_backup(reason=text, user=actor.user)
        audit.record(
            "backup.create", actor=actor, target=backup.name, reason=text, verify=verify
        )
        if background:
            queue_on_commit(CREATE_TASK, backup.pk, verify, actor.to_task())
    if not background:
        run_create(backup.pk, verify=verify)
        backup.refresh_from_db()
    return backup


def run_create(backup_id: int, *, verify: bool = True) -> None:
    """The work of ``create_backup`` (a worker's, or a command's in the foreground)."""
    creating.run_backup(backup_id, clms_version=operations.installed_clms_version())
    if verify:
        verifying.verify_backup(backup_id)
        operations.copy_if_configured(backup_id)


def verify_backup(backup_id: int, *, actor: Actor, background: bool = True) -> Backup:
    """Verify a backup again: checksum, listing, scratch restore, row counts."""
    require_school_admin(actor)
    backup = _backup(backup_id)
    if backup.status not in (Backup.Status.CREATED, Backup.Status.VERIFIED):
        raise ActionRefused(
            f"Backup {backup.name} is {backup.get_status_display().lower()}; only a "
            "created or verified backup can be verified.",
            code="not_verifiable",
            conflict=True,
        )
    with transaction.atomic():
        audit.record("backup.verify", actor=actor, target=backup.name)
        if background:
            queue_on_commit(VERIFY_TASK, backup.pk)
    if not background:
        backup = verifying.verify_backup(backup.pk)
    return backup


def restore_backup(
    backup_id: int,
    *,
    actor: Actor,
    reason: str = "",
    confirm: str | None = None,
    background: bool = True,
) -> Backup:
    """Replace the CLMS database's contents with a verified backup, audited.

    ``confirm`` is the backup's name as the person typed it (the page and the
    API ask for it; a command names the backup by its id instead).
    """
    require_school_admin(actor)
    backup = _backup(backup_id)
    if confirm is not None and confirm.strip() != backup.name:
        raise ActionRefused(
            f"Nothing was restored: type the backup's name ({backup.name}) exactly "
            "to confirm the restore.",
            code="not_confirmed",
            field="confirm",
        )
    if not backup.is_usable:
        raise ActionRefused(
            f"Backup {backup.name} is {backup.get_status_display().lower()}, and only "
            "a verified backup can be restored. Verify it first, or pick a verified "
            "one.",
            code="not_verified",
            conflict=True,
        )
    # The restore records its outcome (``backup.restore`` or ``restore_failed``)
    # on behalf of this actor, address included, once the worker has done it.
    if background:
        progress.publish(
            backup, "Waiting for a worker to restore it", step="restore_queued"
        )
        queue_on_commit(RESTORE_TASK, backup.pk, actor.to_task(), reason)
        return backup
    return restoring.restore_backup(backup.pk, actor=actor, reason=reason)


def delete_backup(backup_id: int, *, actor: Actor) -> str:
    """Delete one backup (files everywhere, then the row); returns its name.

    Refused for a busy backup, a held one, and the newest verified one (the
    last known-good restore point).
    """
    require_school_admin(actor)
    with exclusive():
        backup = _backup(backup_id)
        refusal = retention.deletion_refusal(backup)
        if refusal:
            raise ActionRefused(refusal, code="kept", conflict=True)
        name = backup.name
        with transaction.atomic():
            retention.remove(backup)
            audit.record("backup.delete", actor=actor, target=name)
    return name


def copy_backup(backup_id: int, *, actor: Actor, background: bool = True) -> Backup:
    """Copy a verified backup to the second target (S3-compatible storage)."""
    require_school_admin(actor)
    backup = _backup(backup_id)
    refusal = copying.copy_refusal(backup, copy_target())
    if refusal:
        raise ActionRefused(refusal, code="not_copyable", conflict=True)
    if background:
        queue_on_commit(COPY_TASK, backup.pk, actor.to_task())
        return backup
    return copying.copy_backup(backup.pk, actor=actor)


def fetch_backup(backup_id: int, *, actor: Actor, background: bool = True) -> Backup:
    """Bring a backup's lost local file back from its copy, then verify it again."""
    require_school_admin(actor)
    backup = _backup(backup_id)
    refusal = copying.fetch_refusal(backup, copy_target())
    if refusal:
        raise ActionRefused(refusal, code="not_fetchable", conflict=True)
    if background:
        queue_on_commit(FETCH_TASK, backup.pk, actor.to_task())
        return backup
    copying.fetch_from_copy(backup.pk, actor=actor)
    return verifying.verify_backup(backup.pk)


def prune_backups(*, actor: Actor, dry_run: bool = False) -> list[Backup]:
    """Apply the retention policy (the nightly beat entry, or a command)."""
    require_school_admin(actor)
    try:
        return retention.prune_backups(dry_run=dry_run, actor=actor)
    except BackupError as e:
        if actor.via == VIA_SYSTEM:
            raise
        raise ActionRefused(str(e), code="busy", conflict=True) from None

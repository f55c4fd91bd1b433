"""Celery tasks: thin wrappers that load by id and call one logic function.

Queued by name from ``backups.actions`` (on commit), each on behalf of the
actor who asked (``Actor.to_task``), so the audit entry of the outcome says
who it was and from where.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from backups import actions, copying, restoring, verifying
from backups.errors import BackupError
from backups.models import Backup
from clms_updates.actions import VIA_SCHEDULE, Actor

logger = logging.getLogger(__name__)


def _exists(backup_id: int, what: str) -> bool:
    if Backup.objects.filter(pk=backup_id).exists():
        return True
    logger.warning("Backup %s was deleted before it was %s", backup_id, what)
    return False


@shared_task(name=actions.CREATE_TASK, ignore_result=True)
def create_backup_task(
    backup_id: int, verify: bool = True, actor: dict[str, Any] | None = None
) -> None:
    """Run the pending backup ``backup_id``, then verify and copy it."""
    if not _exists(backup_id, "made"):
        return
    try:
        actions.run_create(backup_id, verify=verify)
    except BackupError as e:
        logger.warning("Backup %s failed: %s", backup_id, e)


@shared_task(name=actions.VERIFY_TASK, ignore_result=True)
def verify_backup_task(backup_id: int) -> None:
    """Verify backup ``backup_id`` (the row records the outcome)."""
    if not _exists(backup_id, "verified"):
        return
    try:
        verifying.verify_backup(backup_id)
    except BackupError as e:
        logger.warning("Verify of backup %s failed: %s", backup_id, e)


@shared_task(name=actions.RESTORE_TASK, ignore_result=True)
def restore_backup_task(
    backup_id: int, actor: dict[str, Any] | None = None, reason: str = ""
) -> None:
    """Restore backup ``backup_id`` into the CLMS database on behalf of ``actor``."""
    try:
        restoring.restore_backup(backup_id, actor=Actor.from_task(actor), reason=reason)
    except BackupError as e:
        logger.warning("Restore of backup %s failed: %s", backup_id, e)


@shared_task(name=actions.COPY_TASK, ignore_result=True)
def copy_backup_task(backup_id: int, actor: dict[str, Any] | None = None) -> None:
    """Copy backup ``backup_id`` to the second target on behalf of ``actor``."""
    if not _exists(backup_id, "copied"):
        return
    try:
        copying.copy_backup(backup_id, actor=Actor.from_task(actor))
    except BackupError as e:
        logger.warning("Copy of backup %s failed: %s", backup_id, e)


@shared_task(name=actions.FETCH_TASK, ignore_result=True)
def fetch_backup_task(backup_id: int, actor: dict[str, Any] | None = None) -> None:
    """Fetch backup ``backup_id``'s lost file from its copy, then verify it again."""
    if not _exists(backup_id, "fetched"):
        return
    try:
        copying.fetch_from_copy(backup_id, actor=Actor.from_task(actor))
        verifying.verify_backup(backup_id)
    except BackupError as e:
        logger.warning("Fetch of backup %s failed: %s", backup_id, e)


@shared_task(name="backups.prune_backups", ignore_result=True)
def prune_backups_task() -> None:
    """Apply the retention policy (the nightly beat entry)."""
    try:
        deleted = actions.prune_backups(actor=Actor.system(VIA_SCHEDULE))
        logger.info("Pruned %d backups", len(deleted))
    except BackupError as e:
        logger.warning("Pruning backups failed: %s", e)

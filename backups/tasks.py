"""Celery tasks: thin wrappers that load by id and call one logic function."""

from __future__ import annotations

import logging

from celery import shared_task
from django.contrib.auth import get_user_model

from backups import copying, creating, operations, restoring, retention, verifying
from backups.errors import BackupError
from backups.models import Backup

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def create_backup_task(backup_id: int, verify: bool = True) -> None:
    """Run the pending backup ``backup_id``, then verify and copy it."""
    if not Backup.objects.filter(pk=backup_id).exists():
        logger.warning("Backup %s was deleted before it ran", backup_id)
        return
    try:
        creating.run_backup(backup_id, clms_version=operations.installed_clms_version())
        if verify:
            verifying.verify_backup(backup_id)
            operations.copy_if_configured(backup_id)
    except BackupError as e:
        logger.warning("Backup %s failed: %s", backup_id, e)


@shared_task(ignore_result=True)
def verify_backup_task(backup_id: int) -> None:
    """Verify backup ``backup_id`` (the row records the outcome)."""
    if not Backup.objects.filter(pk=backup_id).exists():
        logger.warning("Backup %s was deleted before it was verified", backup_id)
        return
    try:
        verifying.verify_backup(backup_id)
    except BackupError as e:
        logger.warning("Verify of backup %s failed: %s", backup_id, e)


@shared_task(ignore_result=True)
def restore_backup_task(
    backup_id: int, user_id: int | None = None, reason: str = ""
) -> None:
    """Restore backup ``backup_id`` into the CLMS database on behalf of ``user_id``."""
    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    try:
        restoring.restore_backup(backup_id, user=user, reason=reason)
    except BackupError as e:
        logger.warning("Restore of backup %s failed: %s", backup_id, e)


@shared_task(ignore_result=True)
def copy_backup_task(backup_id: int, user_id: int | None = None) -> None:
    """Copy backup ``backup_id`` to the second target on behalf of ``user_id``."""
    if not Backup.objects.filter(pk=backup_id).exists():
        logger.warning("Backup %s was deleted before it was copied", backup_id)
        return
    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    try:
        copying.copy_backup(backup_id, user=user)
    except BackupError as e:
        logger.warning("Copy of backup %s failed: %s", backup_id, e)


@shared_task(ignore_result=True)
def fetch_backup_task(backup_id: int, user_id: int | None = None) -> None:
    """Fetch backup ``backup_id``'s lost file from its copy, then verify it again."""
    if not Backup.objects.filter(pk=backup_id).exists():
        logger.warning("Backup %s was deleted before it was fetched", backup_id)
        return
    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    try:
        copying.fetch_from_copy(backup_id, user=user)
        verifying.verify_backup(backup_id)
    except BackupError as e:
        logger.warning("Fetch of backup %s failed: %s", backup_id, e)


@shared_task(ignore_result=True)
def prune_backups_task() -> None:
    """Apply the retention policy (the nightly beat schedule)."""
    try:
        deleted = retention.prune_backups()
        logger.info("Pruned %d backups", len(deleted))
    except BackupError as e:
        logger.warning("Pruning backups failed: %s", e)

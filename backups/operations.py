"""The stable entry points the update pipeline (and anyone else) calls.

These signatures do not change. Each raises ``backups.errors.BackupError``
with a message fit for the admin; none returns a backup that is not good.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from backups import copying, creating, restoring, verifying
from backups.engines import engine_for
from backups.errors import BackupError
from backups.locking import exclusive, job_running
from backups.models import Backup
from backups.storage import LocalTarget, copy_target
from clms_updates.actions import Actor

logger = logging.getLogger(__name__)

_version_provider: Callable[[], str] | None = None


def register_clms_version_provider(provider: Callable[[], str]) -> None:
    """Let another app say which CLMS version is installed (for manual backups)."""
    global _version_provider
    _version_provider = provider


def installed_clms_version() -> str:
    """The CLMS version as the registered provider reports it, or ""."""
    if _version_provider is None:
        return ""
    try:
        return str(_version_provider())
    except Exception:
        logger.exception("The CLMS version provider failed")
        return ""


def busy_reason() -> str:
    """Why the backups are busy now ('' when they are not): a job queued or running."""
    if Backup.objects.filter(status__in=Backup.BUSY_STATUSES).exists() or job_running():
        return (
            "A backup, verification, restore or prune of the CLMS database is in "
            "progress (see the Backups page)."
        )
    return ""


def create_verified_backup(
    *, reason: str, clms_version: str, hold: str = "", user: Any = None
) -> Backup:
    """Make a backup, verify it, copy it if configured; return it verified.

    ``hold`` (e.g. "update-run:12") keeps retention from deleting it until
    ``release_hold`` is called. A failed copy to the second target is logged on
    the backup but does not fail it.
    """
    backup = creating.new_backup(reason=reason, user=user, hold=hold)
    with exclusive():
        creating.run_backup(backup.pk, clms_version=clms_version)
        verifying.verify_backup(backup.pk)
        copy_if_configured(backup.pk)
    backup.refresh_from_db()
    if not backup.is_usable:  # defensive: the steps above raise on failure
        raise BackupError(
            f"Backup {backup.name} is not verified: {backup.failure_reason}"
        )
    return backup


def copy_if_configured(backup_id: int) -> None:
    """Copy to the second target when one is set; a failure is recorded, not raised."""
    if copy_target() is None:
        return
    try:
        copying.copy_backup(backup_id)
    except BackupError as e:
        # copy_backup already published the failure on the row and audited it.
        logger.warning("Copy of backup %s failed: %s", backup_id, e)


def restore_backup(
    backup_id: int, *, actor: Actor | None = None, reason: str = ""
) -> Backup:
    """Restore verified backup ``backup_id`` into the CLMS database (audited)."""
    return restoring.restore_backup(backup_id, actor=actor, reason=reason)


def release_hold(hold: str) -> int:
    """Let retention delete the backups held under ``hold``; how many were held."""
    if not hold:
        return 0
    return Backup.objects.filter(hold=hold).update(hold="")


def check_target_writable() -> None:
    """Preflight: the backup directory is writable with room, the tools work,
    and the copy target (if any) answers."""
    LocalTarget().check_writable()
    target = copy_target()
    if target is not None:
        target.check()
    engine = engine_for()
    engine.tool_versions()
    engine.server_version()

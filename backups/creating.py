"""Making a backup: dump, compress, hash and store it, with its manifest."""

from __future__ import annotations

import json
import logging
import secrets
import time
from typing import Any

from django.conf import settings
from django.utils import timezone

from backups.engines import engine_for
from backups.errors import BackupError
from backups.locking import exclusive
from backups.models import Backup
from backups.storage import LocalTarget, full_disk_message
from backups.streams import HashingWriter, compressor
from clms_updates import progress
from clms_updates.statemachine import InvalidTransition

logger = logging.getLogger(__name__)

# How often a running backup reports progress.
PROGRESS_EVERY_SECONDS = 2.0


def new_backup(*, reason: str, user: Any = None, hold: str = "") -> Backup:
    """Record a pending backup (the work runs in ``run_backup``)."""
    now = timezone.now()
    name = f"clms-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
    return Backup.objects.create(
        name=name,
        reason=reason[:200],
        hold=hold,
        created_by=user if user is not None and user.is_authenticated else None,
        created_at=now,
    )


def run_backup(backup_id: int, *, clms_version: str = "") -> Backup:
    """Take the backup recorded as ``backup_id``; it ends ``created`` or ``failed``.

    The dump streams through zstd and sha256 straight into a temp file that
    is renamed into place only when complete. Raises ``BackupError`` (after
    marking the row failed) when anything goes wrong.
    """
    with exclusive():
        backup = Backup.objects.get(pk=backup_id)
        try:
            backup.start()
        except InvalidTransition as e:
            # E.g. a redelivered task after the worker died: never retake it.
            raise BackupError(
                f"Backup {backup.name} is {backup.status}, so it was not started "
                "again; start a new backup instead."
            ) from e
        try:
            _dump(backup, clms_version)
        except BackupError as e:
            _fail(backup, str(e))
            raise
        except OSError as e:
            message = (
                full_disk_message(LocalTarget().directory)
                if e.errno in (28, 122)
                else f"The backup could not be written: {e}. Check BACKUP_DIR and run it again."
            )
            _fail(backup, message)
            raise BackupError(message) from e
        except Exception as e:
            logger.exception("Backup %s failed unexpectedly", backup.name)
            message = (
                f"The backup failed unexpectedly ({type(e).__name__}: {e}). Nothing was "
                "kept; see the agent's log and run it again."
            )
            _fail(backup, message)
            raise BackupError(message) from e
        return backup


def _fail(backup: Backup, reason: str) -> None:
    backup.refresh_from_db(fields=["status"])
    if backup.status == Backup.Status.FAILED:
        return
    backup.fail(reason)


def _dump(backup: Backup, clms_version: str) -> None:
    engine = engine_for()
    target = LocalTarget()
    target.check_writable()
    estimate = max(engine.estimated_size(), 1)
    file_name = backup.name + engine.suffix
    started = time.monotonic()
    last = [started]

    def on_bytes(total: int) -> None:
        now = time.monotonic()
        if now - last[0] < PROGRESS_EVERY_SECONDS:
            return
        last[0] = now
        percent = min(95, int(total * 100 / estimate))
        rate = total / max(now - started, 0.001)
        eta = int(max(estimate - total, 0) / rate) if rate else None
        progress.publish(
            backup, f"Dumped {total // (1 << 20)} MiB", percent=percent, eta_seconds=eta
        )

    with target.writing(file_name) as raw:
        hashing = HashingWriter(raw)
        with compressor().stream_writer(hashing, closefd=False) as packed:  # type: ignore[arg-type]
            result = engine.dump(packed, on_bytes)
    duration = time.monotonic() - started

    backup.engine = engine.kind
    backup.file_name = file_name
    backup.size = hashing.size
    backup.sha256 = hashing.hexdigest()
    backup.clms_version = clms_version
    backup.server_version = result.server_version
    backup.manifest = {
        "format": result.format,
        "name": backup.name,
        "file": file_name,
        "location": target.location(file_name),
        "sha256": backup.sha256,
        "size": backup.size,
        "compression": f"zstd-{settings.BACKUP_ZSTD_LEVEL}",
        "engine": engine.kind,
        "server_version": result.server_version,
        "tool_versions": result.tool_versions,
        "clms_version": clms_version,
        "row_counts": result.row_counts,
        "created_at": backup.created_at.isoformat(),
        "duration_seconds": round(duration, 3),
        "reason": backup.reason,
    }
    with target.writing(backup.name + ".manifest.json") as handle:
        handle.write(json.dumps(backup.manifest, indent=2, sort_keys=True).encode())
    backup.mark_created(
        f"Backup written: {backup.size} bytes, {sum(result.row_counts.values())} rows",
        # The dump's own clock, without the time spent waiting for the lock.
        duration_seconds=round(duration, 3),
        fields=(
            "engine",
            "file_name",
            "size",
            "sha256",
            "clms_version",
            "server_version",
            "manifest",
        ),
    )

"""One backup job at a time, and clean-up after a job that was killed.

Backup, verify, restore and prune take an exclusive ``flock`` on a file in the
backup directory. The kernel drops the lock when a process dies, so whoever
takes it next knows no other job is running and can safely repair what a
killed one left: temp files, rows stuck in a busy state, scratch databases.
"""

from __future__ import annotations

import fcntl
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

from backups.errors import BackupError
from backups.models import Backup
from backups.storage import LocalTarget

logger = logging.getLogger(__name__)

_held = threading.local()


@contextmanager
def exclusive() -> Iterator[None]:
    """Hold the backup job lock (re-entrant within one thread).

    1. Wait up to ``BACKUP_LOCK_TIMEOUT`` seconds for the lock.
    2. On first entry, repair whatever a killed job left behind.
    3. Release on exit (the kernel also releases it if we die).
    """
    depth = getattr(_held, "depth", 0)
    if depth:
        _held.depth = depth + 1
        try:
            yield
        finally:
            _held.depth -= 1
        return
    target = LocalTarget()
    target.ensure()
    lock_path = Path(target.directory) / ".lock"
    handle = lock_path.open("a")
    try:
        deadline = time.monotonic() + settings.BACKUP_LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise BackupError(
                        "Another backup, verify, restore or prune job has been "
                        f"running for over {settings.BACKUP_LOCK_TIMEOUT}s, so this "
                        "one did not start. Wait for it to finish (see the Backups "
                        "page) and try again."
                    ) from None
                time.sleep(0.5)
        _held.depth = 1
        try:
            recover_interrupted(target)
            yield
        finally:
            _held.depth = 0
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        handle.close()


def job_running() -> bool:
    """Whether a backup, verify, restore or prune job holds the lock right now."""
    if getattr(_held, "depth", 0):
        return True
    lock_path = Path(LocalTarget().directory) / ".lock"
    try:
        handle = lock_path.open("a")
    except OSError:
        return False  # no backup directory yet: no job ever ran
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def recover_interrupted(target: LocalTarget) -> None:
    """Repair what a killed job left; call only while holding the lock.

    A backup that was being written is marked failed (its temp file is
    deleted, so nothing looks good); a verification that was cut short goes
    back to "created" so it can be verified again.
    """
    for temp in target.remove_stale_temp_files():
        logger.warning("Removed %s, left by an interrupted backup job", temp)
    for backup in Backup.objects.filter(status=Backup.Status.RUNNING):
        backup.fail(
            "The backup process stopped before the backup was complete (the machine "
            "or the worker was restarted or killed). Its partial file was removed; "
            "run a new backup."
        )
    for backup in Backup.objects.filter(status=Backup.Status.VERIFYING):
        backup.interrupt_verify()
    try:
        from backups.engines import engine_for
        from backups.engines.postgres import PostgresEngine

        engine = engine_for()
        if isinstance(engine, PostgresEngine):
            for name in engine.drop_leftover_scratch_databases():
                logger.warning(
                    "Dropped scratch database %s left by a killed verify", name
                )
    except BackupError as e:
        logger.warning("Could not check for leftover scratch databases: %s", e)

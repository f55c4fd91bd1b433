"""Checks of a backup file against its manifest: present, whole, unchanged."""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import zstandard

from backups.errors import BackupError
from backups.models import Backup
from backups.storage import LocalTarget
from backups.streams import decompressed_chunks
from clms_updates.files import sha256_stream

COPY_CHUNK = 1024 * 1024


def _missing(backup: Backup, target: LocalTarget) -> str:
    if not backup.file_name or not target.exists(backup.file_name):
        return (
            f"The backup file {target.path(backup.file_name)} is missing: it was "
            "deleted or moved outside CLMS Updates. This backup cannot be restored; "
            "make a new one."
        )
    return ""


def _damage(backup: Backup, path: Path, size: int, digest: str) -> str:
    """What is wrong with a file of ``size`` bytes hashing to ``digest`` ('' if none)."""
    if backup.size is not None and size < backup.size:
        return (
            f"The backup file {path} is truncated: {size} bytes instead of "
            f"{backup.size}. It was cut short (disk error or an interrupted copy); "
            "this backup cannot be restored; make a new one."
        )
    if backup.size is not None and size > backup.size:
        return (
            f"The backup file {path} has {size} bytes instead of {backup.size}: "
            "something was appended to it. Make a new backup."
        )
    if digest != backup.sha256:
        return (
            f"The backup file {path} fails its checksum (sha256 {digest[:16]}... "
            f"instead of {backup.sha256[:16]}...): its content changed, for example "
            "a flipped byte from a failing disk. This backup cannot be trusted; make "
            "a new one."
        )
    return ""


def check_file(backup: Backup, target: LocalTarget | None = None) -> None:
    """Raise ``BackupError`` naming the problem: missing, truncated, changed."""
    target = target or LocalTarget()
    problem = _missing(backup, target)
    if not problem:
        path = target.path(backup.file_name)
        size = target.size(backup.file_name)
        if backup.size is not None and size < backup.size:
            digest = ""  # no need to read a file that is too short
        else:
            with target.open_read(backup.file_name) as handle:
                digest, _ = sha256_stream(handle)
        problem = _damage(backup, path, size, digest)
    if problem:
        raise BackupError(problem)


@contextmanager
def checked_copy(backup: Backup, target: LocalTarget | None = None) -> Iterator[Path]:
    """A private copy of the backup file, its size and sha256 checked as it was made.

    A restore reads this copy, never the file again: what is restored is what
    was checked, even if the file is swapped or rewritten after the check. The
    copy lives beside the backups (0600, a temp name the job lock's clean-up
    removes if the process is killed) and is deleted on exit.
    """
    target = target or LocalTarget()
    problem = _missing(backup, target)
    if problem:
        raise BackupError(problem)
    copy = target.temp_path(f"restore-{backup.file_name}")
    try:
        _copy_checked(backup, target, copy)
        yield copy
    finally:
        copy.unlink(missing_ok=True)


def _copy_checked(backup: Backup, target: LocalTarget, copy: Path) -> None:
    digest = hashlib.sha256()
    size = 0
    try:
        with target.open_read(backup.file_name) as source, _private(copy) as sink:
            while block := source.read(COPY_CHUNK):
                digest.update(block)
                sink.write(block)
                size += len(block)
    except OSError as e:
        full = e.errno == errno.ENOSPC
        raise BackupError(
            f"The backup file could not be copied for the restore ({e}); nothing "
            "was restored."
            + (
                f" The disk holding {target.directory} is full: a restore needs room "
                f"for a copy of the backup file ({backup.size or 0} bytes). Free space "
                "there (prune old backups) and restore again."
                if full
                else ""
            )
        ) from None
    problem = _damage(backup, target.path(backup.file_name), size, digest.hexdigest())
    if problem:
        raise BackupError(problem)


def _private(path: Path) -> BinaryIO:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    return os.fdopen(descriptor, "wb")


class CopyChunks:
    """The decompressed dump in ``checked_copy``'s file, afresh on every iteration."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __iter__(self) -> Iterator[bytes]:
        with self.path.open("rb") as handle:
            try:
                yield from decompressed_chunks(handle)
            except zstandard.ZstdError as e:
                raise BackupError(
                    f"The backup cannot be decompressed ({e}); it is damaged. Make a "
                    "new backup."
                ) from e


def dump_chunks(backup: Backup, target: LocalTarget | None = None) -> Iterator[bytes]:
    """The decompressed dump of ``backup``; damage becomes a ``BackupError``."""
    target = target or LocalTarget()
    with target.open_read(backup.file_name) as handle:
        try:
            yield from decompressed_chunks(handle)
        except zstandard.ZstdError as e:
            raise BackupError(
                f"The backup file {target.path(backup.file_name)} cannot be "
                f"decompressed ({e}); it is damaged. Make a new backup."
            ) from e


class BackupChunks:
    """The decompressed dump of ``backup``, streamed afresh each time it is
    iterated (engines that read a dump in several passes need that)."""

    def __init__(self, backup: Backup, target: LocalTarget | None = None) -> None:
        self.backup = backup
        self.target = target

    def __iter__(self) -> Iterator[bytes]:
        return dump_chunks(self.backup, self.target)


def compare_counts(expected: dict[str, int], actual: dict[str, int]) -> None:
    """Raise ``BackupError`` listing tables whose row counts differ."""
    differences = []
    for table in sorted(set(expected) | set(actual)):
        want, got = expected.get(table), actual.get(table)
        if want != got:
            differences.append(
                f"{table}: manifest {'absent' if want is None else want}, "
                f"restored {'absent' if got is None else got}"
            )
    if differences:
        shown = "; ".join(differences[:10])
        more = f" (and {len(differences) - 10} more)" if len(differences) > 10 else ""
        raise BackupError(f"Row counts differ from the manifest: {shown}{more}.")

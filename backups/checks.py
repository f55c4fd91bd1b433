"""Checks of a backup file against its manifest: present, whole, unchanged."""

from __future__ import annotations

from collections.abc import Iterator

import zstandard

from backups.errors import BackupError
from backups.models import Backup
from backups.storage import LocalTarget
from backups.streams import decompressed_chunks
from clms_updates.files import sha256_stream


def check_file(backup: Backup, target: LocalTarget | None = None) -> None:
    """Raise ``BackupError`` naming the problem: missing, truncated, changed."""
    target = target or LocalTarget()
    path = target.path(backup.file_name)
    if not backup.file_name or not target.exists(backup.file_name):
        raise BackupError(
            f"The backup file {path} is missing: it was deleted or moved outside "
            "CLMS Updates. This backup cannot be restored; make a new one."
        )
    size = target.size(backup.file_name)
    if backup.size is not None and size < backup.size:
        raise BackupError(
            f"The backup file {path} is truncated: {size} bytes instead of "
            f"{backup.size}. It was cut short (disk error or an interrupted copy); "
            "this backup cannot be restored; make a new one."
        )
    if backup.size is not None and size > backup.size:
        raise BackupError(
            f"The backup file {path} has {size} bytes instead of {backup.size}: "
            "something was appended to it. Make a new backup."
        )
    with target.open_read(backup.file_name) as handle:
        digest, _ = sha256_stream(handle)
    if digest != backup.sha256:
        raise BackupError(
            f"The backup file {path} fails its checksum (sha256 {digest[:16]}... "
            f"instead of {backup.sha256[:16]}...): its content changed, for example "
            "a flipped byte from a failing disk. This backup cannot be trusted; make "
            "a new one."
        )


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

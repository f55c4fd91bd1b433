"""A verified backup of any database by URL into a folder, outside the CLMS backup list.

The vendor server backs its own database up with this (``manage.py
vendor_backup``): the same engines, compression and proof as a school's CLMS
backups (a restore into a scratch database gives the dump's row counts), but
no ``Backup`` row, no hold and no retention; the caller owns the folder.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backups.checks import compare_counts
from backups.engines import engine_for
from backups.errors import BackupError
from backups.streams import HashingWriter, compressor, decompressed_chunks
from clms_updates.files import sha256_and_size


class _Chunks:
    """The dump in a file, decompressed; each iteration reads it from the start
    (the engines read a dump of parallel streams more than once)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __iter__(self) -> Iterator[bytes]:
        with self.path.open("rb") as handle:
            yield from decompressed_chunks(handle)


def backup_database(url: str, folder: Path, name: str) -> dict[str, Any]:
    """Dump ``url`` to ``folder/name<suffix>``, prove it restores, write its manifest.

    Returns the manifest (file, sha256, size, row counts). A dump that does not
    restore to its own row counts is removed and ``BackupError`` says why.
    """
    engine = engine_for(url)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / (name + engine.suffix)
    partial = path.with_name(path.name + ".part")
    try:
        with partial.open("wb") as raw:
            os.chmod(partial, 0o600)
            hashing = HashingWriter(raw)
            with compressor().stream_writer(hashing, closefd=False) as packed:  # type: ignore[arg-type]
                result = engine.dump(packed, lambda total: None)
        partial.replace(path)
    except OSError as e:
        partial.unlink(missing_ok=True)
        raise BackupError(f"the dump could not be written to {folder}: {e}") from None

    try:
        counts = engine.scratch_restore_counts(
            lambda: _Chunks(path), size_hint=hashing.size
        )
        compare_counts(result.row_counts, counts)
    except BackupError:
        path.unlink(missing_ok=True)
        raise
    manifest = {
        "file": path.name,
        "sha256": hashing.hexdigest(),
        "size": hashing.size,
        "engine": engine.kind,
        "server_version": result.server_version,
        "row_counts": result.row_counts,
        "created_at": datetime.now(UTC).isoformat(),
        "verified": "restored into a scratch database with the same row counts",
    }
    (folder / f"{name}.manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest


def restore_database(url: str, dump: Path) -> dict[str, int]:
    """Restore ``dump`` (made by ``backup_database``) into ``url``, replacing its contents.

    The file must match its manifest (size and sha256) before anything is
    touched; the restore runs in one transaction and must give the manifest's
    row counts. Returns them.
    """
    name = dump.name
    for suffix in (".dump.zst", ".sqlite3.zst"):
        name = name.removesuffix(suffix)
    manifest_path = dump.with_name(f"{name}.manifest.json")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as e:
        raise BackupError(
            f"{manifest_path} cannot be read ({e}); restore only a dump with its "
            "manifest"
        ) from None
    try:
        digest, size = sha256_and_size(dump)
    except OSError as e:
        raise BackupError(f"{dump} cannot be read ({e})") from None
    if (size, digest) != (manifest.get("size"), manifest.get("sha256")):
        raise BackupError(
            f"{dump} is not the file its manifest describes (size or sha256 differ): "
            "it was damaged or swapped; nothing was restored"
        )
    engine = engine_for(url)
    if engine.kind != manifest.get("engine"):
        raise BackupError(
            f"the dump is of a {manifest.get('engine')} database, the target is "
            f"{engine.kind}; nothing was restored"
        )

    counts = engine.restore(_Chunks(dump))
    compare_counts(manifest["row_counts"], counts)
    return counts

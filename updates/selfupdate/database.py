"""The agent's own database: a verified copy before a self-update, put back after.

The copy is a dump (the backup engines of ``backups``) checked by restoring it
into a scratch database and comparing every table's row count; its sha256 is
kept. It is restored only from a private copy whose sha256 was checked, so
what is restored is what was verified.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.conf import settings

from backups.engines import engine_for
from backups.errors import BackupError
from clms_updates.files import sha256_file

CHUNK = 1024 * 1024


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            yield block


class FileChunks:
    """The file's bytes, read afresh on every iteration (the engine reads them
    more than once: its streams one after another)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __iter__(self) -> Iterator[bytes]:
        return _chunks(self.path)


def back_up(path: Path) -> dict[str, Any]:
    """Dump the agent's database to ``path`` (0600) and verify it; what was checked."""
    engine = engine_for(settings.DATABASE_URL)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with path.open("wb") as sink:
        path.chmod(0o600)
        result = engine.dump(sink, lambda _total: None)
    counts = engine.scratch_restore_counts(
        lambda: _chunks(path), size_hint=path.stat().st_size
    )
    if counts != result.row_counts:
        raise BackupError(
            "the copy of the agent's database did not restore to the same rows "
            f"({sum(counts.values())} rows instead of {sum(result.row_counts.values())})"
        )
    return {
        "path": str(path),
        "sha256": sha256_file(path),
        "rows": sum(counts.values()),
    }


def restore(saved: dict[str, Any]) -> int:
    """Put the agent's database back as it was when ``saved`` was taken; rows."""
    source = Path(saved["path"])
    with tempfile.TemporaryDirectory(prefix="clms-agent-restore-") as tmp:
        copy = Path(tmp) / "agent.dump"
        shutil.copyfile(source, copy)
        if sha256_file(copy) != saved["sha256"]:
            raise BackupError(
                f"the copy of the agent's database at {source} changed since it was "
                "verified; it was not restored"
            )
        counts = engine_for(settings.DATABASE_URL).restore(FileChunks(copy))
    return sum(counts.values())

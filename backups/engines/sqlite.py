"""SQLite: the online backup API out, the same API back in.

SQLite's backup API needs a database file as its destination, so the dump is
first made into a temp file in the backup directory, then streamed through the
compressor and removed. SQLite databases here are the small demo kind; for
large installations CLMS runs on PostgreSQL.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Callable, Iterable
from contextlib import closing
from pathlib import Path
from typing import Any

import dj_database_url
from django.conf import settings

from backups.engines.base import DumpResult, Engine
from backups.errors import BackupError
from backups.storage import TEMP_SUFFIX


def _counts(conn: sqlite3.Connection) -> dict[str, int]:
    names = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' "
            "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
        )
    ]
    counts = {}
    for name in names:
        quoted = '"' + name.replace('"', '""') + '"'
        query = "SELECT count(*) FROM " + quoted  # noqa: S608 - quoted identifier
        counts[f"main.{name}"] = int(conn.execute(query).fetchone()[0])
    return counts


class SqliteEngine(Engine):
    """A SQLite database file."""

    kind = "sqlite"
    suffix = ".sqlite3.zst"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        name = dj_database_url.parse(url)["NAME"]
        if not name or ":memory:" in str(name):
            raise BackupError(
                "CLMS_DATABASE_URL points at an in-memory SQLite database, which "
                "cannot be backed up. Use sqlite:////absolute/path/to/file.sqlite3."
            )
        self.path = Path(str(name))

    def _scratch_file(self, directory: Path | None = None) -> Path:
        directory = directory or Path(settings.BACKUP_DIR)
        directory.mkdir(parents=True, exist_ok=True)
        return directory / f".sqlite-{uuid.uuid4().hex[:8]}{TEMP_SUFFIX}"

    def _open_source(self) -> sqlite3.Connection:
        if not self.path.is_file():
            raise BackupError(
                f"The SQLite database {self.path} does not exist. Check "
                "CLMS_DATABASE_URL."
            )
        return sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)

    def server_version(self) -> str:
        return sqlite3.sqlite_version

    def tool_versions(self, server: str | None = None) -> dict[str, str]:
        # The backup API is the library itself, so it is never older than the file.
        return {"sqlite3": sqlite3.sqlite_version}

    def estimated_size(self) -> int:
        return self.path.stat().st_size if self.path.is_file() else 0

    def dump(self, sink: Any, on_bytes: Callable[[int], None]) -> DumpResult:
        """Online-backup to a temp file, count its rows, stream it to ``sink``."""
        temp = self._scratch_file()
        try:
            with (
                closing(self._open_source()) as source,
                closing(sqlite3.connect(temp)) as copy,
            ):
                source.backup(copy, pages=1024)
                counts = _counts(copy)
            total = 0
            with temp.open("rb") as handle:
                while chunk := handle.read(1 << 20):
                    sink.write(chunk)
                    total += len(chunk)
                    on_bytes(total)
        except sqlite3.Error as e:
            raise BackupError(f"SQLite backup of {self.path} failed: {e}.") from e
        finally:
            temp.unlink(missing_ok=True)
        return DumpResult(counts, sqlite3.sqlite_version, self.tool_versions())

    def _materialise(
        self, chunks: Iterable[bytes], directory: Path | None = None
    ) -> Path:
        temp = self._scratch_file(directory)
        with temp.open("wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
        return temp

    def _checked_counts(self, path: Path) -> dict[str, int]:
        try:
            with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
                result = conn.execute("PRAGMA integrity_check").fetchone()
                if not result or result[0] != "ok":
                    raise BackupError(f"SQLite integrity check failed: {result}.")
                return _counts(conn)
        except sqlite3.DatabaseError as e:
            raise BackupError(
                f"The backup is not a readable SQLite database: {e}."
            ) from e

    def list_tables(self, chunks: Iterable[bytes]) -> set[str]:
        temp = self._materialise(chunks)
        try:
            return set(self._checked_counts(temp))
        finally:
            temp.unlink(missing_ok=True)

    def scratch_restore_counts(
        self, open_chunks: Callable[[], Iterable[bytes]], *, size_hint: int = 0
    ) -> dict[str, int]:
        temp = self._materialise(open_chunks())
        try:
            return self._checked_counts(temp)
        finally:
            temp.unlink(missing_ok=True)

    def restore(self, chunks: Iterable[bytes]) -> dict[str, int]:
        """Check the backup in a temp file, then copy it over the live database
        with the backup API (atomic for other connections)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temp = self._materialise(chunks, self.path.parent)
        try:
            self._checked_counts(temp)
            with (
                closing(sqlite3.connect(temp)) as source,
                closing(sqlite3.connect(self.path, timeout=30)) as target,
            ):
                source.backup(target)
                return _counts(target)
        except sqlite3.Error as e:
            raise BackupError(
                f"Restoring into {self.path} failed: {e}. SQLite rolled the copy "
                "back; close programs holding the database and try again."
            ) from e
        finally:
            temp.unlink(missing_ok=True)
            # Leave no stray journal of the temp copy either.
            for extra in (f"{temp}-journal", f"{temp}-wal", f"{temp}-shm"):
                if os.path.exists(extra):
                    os.unlink(extra)

"""What every engine provides."""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class DumpResult:
    """What a dump learned about the database, for the manifest."""

    row_counts: dict[str, int]
    server_version: str
    tool_versions: dict[str, str] = field(default_factory=dict)
    # The layout of the backup file (recorded in the manifest): 1 = one dump
    # stream; 2 = PostgreSQL's container of parallel dumps (see pgcontainer).
    format: int = 1


class Engine(abc.ABC):
    """Dump, list, test-restore and restore one database given by URL."""

    kind: str = ""
    suffix: str = ""

    def __init__(self, url: str) -> None:
        self.url = url

    @abc.abstractmethod
    def server_version(self) -> str:
        """The database server's version."""

    @abc.abstractmethod
    def tool_versions(self, server: str | None = None) -> dict[str, str]:
        """Versions of the tools used; raises BackupError if one is unusable."""

    @abc.abstractmethod
    def estimated_size(self) -> int:
        """About how many bytes the uncompressed dump will have (for progress)."""

    @abc.abstractmethod
    def dump(self, sink: Any, on_bytes: Callable[[int], None]) -> DumpResult:
        """Write the uncompressed dump to ``sink``, calling ``on_bytes(total)``."""

    @abc.abstractmethod
    def list_tables(self, chunks: Iterable[bytes]) -> set[str]:
        """Tables whose data the dump holds (the archive listing)."""

    @abc.abstractmethod
    def scratch_restore_counts(
        self, open_chunks: Callable[[], Iterable[bytes]], *, size_hint: int = 0
    ) -> dict[str, int]:
        """Restore into a throwaway database, count rows, always drop it.

        ``open_chunks()`` gives a fresh stream of the dump each time it is called.
        """

    @abc.abstractmethod
    def restore(self, chunks: Iterable[bytes]) -> dict[str, int]:
        """Replace the database's contents with the dump, atomically; row counts."""

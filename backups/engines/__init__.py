"""Database engines: how to dump, list, test-restore and restore one database.

``engine_for(url)`` picks the engine from the URL scheme.
"""

from __future__ import annotations

from django.conf import settings

from backups.engines.base import DumpResult, Engine
from backups.errors import BackupError

__all__ = ["DumpResult", "Engine", "engine_for"]


def engine_for(url: str | None = None) -> Engine:
    """The engine for ``url`` (default ``settings.CLMS_DATABASE_URL``)."""
    url = url or settings.CLMS_DATABASE_URL
    scheme = url.split(":", 1)[0].lower()
    if scheme in ("postgres", "postgresql", "pgsql"):
        from backups.engines.postgres import PostgresEngine

        return PostgresEngine(url)
    if scheme == "sqlite":
        from backups.engines.sqlite import SqliteEngine

        return SqliteEngine(url)
    raise BackupError(
        f"CLMS_DATABASE_URL uses {scheme!r}, which backups do not support. Use a "
        "postgresql:// or sqlite:/// URL."
    )

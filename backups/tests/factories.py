"""Factories for backup rows (no real file unless a test makes one)."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from django.utils import timezone

from backups.models import Backup


def make_backup(
    *,
    status: str = Backup.Status.VERIFIED,
    created_at: dt.datetime | None = None,
    **fields: Any,
) -> Backup:
    """A settled backup row with a unique name."""
    created_at = created_at or timezone.now()
    return Backup.objects.create(
        name=f"clms-test-{secrets.token_hex(4)}",
        status=status,
        engine="postgresql",
        created_at=created_at,
        verified_at=created_at if status == Backup.Status.VERIFIED else None,
        **fields,
    )

"""The audit log: one call records an action, by whom, from where, through what."""

from __future__ import annotations

from typing import Any

from clms_updates.actions import Actor
from clms_updates.models import AuditEntry


def record(
    action: str, *, actor: Actor | None = None, target: str = "", **detail: Any
) -> AuditEntry:
    """Record ``action`` by ``actor`` (the system when ``None``) on ``target``.

    ``detail`` must be JSON-serialisable; keep secrets out of it. The entry
    point (``actor.via``) is kept in its own column, so the same action taken
    from a page and from the API records the same ``detail``.
    """
    actor = actor or Actor.system()
    user = actor.user
    return AuditEntry.objects.create(
        user=user,
        username=actor.username,
        action=action,
        target=target,
        detail=detail,
        address=actor.address,
        via=actor.via,
    )

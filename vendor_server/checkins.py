"""Check-ins: buffered per request, flushed to the database each minute.

Polling at fleet scale cannot afford a database write per request, so a poll only
overwrites its school's entry in one Redis hash (``fastpath.buffer_checkin``).
The beat task ``flush_checkins`` takes the whole hash atomically, writes one
``CheckIn`` row per school that polled since the last flush and updates
``School.last_seen`` / ``current_version`` / ``agent_version``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import transaction

from vendor_server import fastpath
from vendor_server.models import CheckIn, School


def record_checkin(school_id: int, clms_version: str, agent_version: str) -> None:
    """Remember this poll (one Redis write, no database write)."""
    fastpath.buffer_checkin(school_id, clms_version, agent_version)


def flush_checkins() -> int:
    """Move buffered check-ins into the database; return how many schools polled."""
    taken = fastpath.take_checkins()
    if not taken:
        return 0
    known = set(School.objects.filter(pk__in=taken).values_list("id", flat=True))
    rows = []
    with transaction.atomic():
        for school_id, (stamp, clms_version, agent_version) in taken.items():
            if school_id not in known:
                continue  # deleted since it polled
            seen_at = datetime.fromtimestamp(stamp, tz=UTC)
            rows.append(
                CheckIn(
                    school_id=school_id,
                    seen_at=seen_at,
                    clms_version=clms_version,
                    agent_version=agent_version,
                )
            )
            changes: dict[str, object] = {"last_seen": seen_at}
            if clms_version:
                changes["current_version"] = clms_version
            if agent_version:
                changes["agent_version"] = agent_version
            School.objects.filter(pk=school_id).update(**changes)
        CheckIn.objects.bulk_create(rows)
    return len(rows)

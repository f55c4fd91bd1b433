"""Check-ins: buffered per request, flushed to the database each minute.

Polling at fleet scale cannot afford a database write per request, so a poll only
overwrites its school's entry in one Redis hash (``fastpath.buffer_checkin``).
The beat task ``flush_checkins`` takes the whole hash atomically, writes one
``CheckIn`` row per school that polled since the last flush and updates
``School.last_seen`` / ``current_version`` / ``agent_version``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from vendor_server import fastpath
from vendor_server.models import CheckIn, School

# Schools written per statement.
BATCH = 10_000


def record_checkin(school_id: int, clms_version: str, agent_version: str) -> None:
    """Remember this poll (one Redis write, no database write)."""
    fastpath.buffer_checkin(school_id, clms_version, agent_version)


def flush_checkins() -> int:
    """Move buffered check-ins into the database; return how many schools polled.

    One ``CheckIn`` row per school that still exists, and the school's
    ``last_seen`` and versions (a poll's versions change the school only when
    it sent them). On PostgreSQL each batch is one statement that updates the
    schools and inserts their check-ins together; elsewhere the ORM does it in
    bulk.
    """
    taken = fastpath.take_checkins()
    if not taken:
        return 0
    polls = [
        (school_id, datetime.fromtimestamp(stamp, tz=UTC), clms, agent)
        for school_id, (stamp, clms, agent) in taken.items()
    ]
    with transaction.atomic():
        if connection.vendor == "postgresql":
            return _flush_on_postgresql(polls)
        return _flush_with_the_orm(polls)


def prune_checkins(*, now: datetime | None = None, batch: int = 50_000) -> int:
    """Delete check-ins older than VENDOR_CHECKIN_KEEP_DAYS, a batch at a time.

    The history would otherwise grow by a row per poll for ever; each school's
    ``last_seen`` and versions are on the school and stay. Returns how many
    rows went.
    """
    cutoff = (now or timezone.now()) - timedelta(days=settings.VENDOR_CHECKIN_KEEP_DAYS)
    deleted = 0
    while True:
        ids = list(
            CheckIn.objects.filter(seen_at__lt=cutoff).values_list("pk", flat=True)[
                :batch
            ]
        )
        if not ids:
            return deleted
        deleted += CheckIn.objects.filter(pk__in=ids).delete()[0]


def _flush_on_postgresql(polls: list[tuple[int, datetime, str, str]]) -> int:
    school = connection.ops.quote_name(School._meta.db_table)
    checkin = connection.ops.quote_name(CheckIn._meta.db_table)
    # The table names are the models' own; every value is a bound parameter.
    statement = (
        "WITH v AS (SELECT unnest(%s::bigint[]) AS id, unnest(%s::timestamptz[]) "  # noqa: S608
        "AS seen, unnest(%s::text[]) AS clms, unnest(%s::text[]) AS agent), "
        f"u AS (UPDATE {school} AS s SET last_seen = v.seen, "
        "current_version = COALESCE(NULLIF(v.clms, ''), s.current_version), "
        "agent_version = COALESCE(NULLIF(v.agent, ''), s.agent_version) "
        "FROM v WHERE s.id = v.id RETURNING s.id) "
        f"INSERT INTO {checkin} (school_id, seen_at, clms_version, agent_version, "
        "requests) SELECT v.id, v.seen, v.clms, v.agent, 1 FROM v JOIN u ON u.id = v.id"
    )
    written = 0
    with connection.cursor() as cursor:
        for start in range(0, len(polls), BATCH):
            columns = zip(*polls[start : start + BATCH], strict=True)
            cursor.execute(statement, [list(column) for column in columns])
            written += cursor.rowcount
    return written


def _flush_with_the_orm(polls: list[tuple[int, datetime, str, str]]) -> int:
    schools = School.objects.in_bulk([p[0] for p in polls])
    rows = []
    for school_id, seen_at, clms, agent in polls:
        school = schools.get(school_id)
        if school is None:
            continue  # deleted since it polled
        school.last_seen = seen_at
        school.current_version = clms or school.current_version
        school.agent_version = agent or school.agent_version
        rows.append(
            CheckIn(
                school_id=school_id,
                seen_at=seen_at,
                clms_version=clms,
                agent_version=agent,
            )
        )
    School.objects.bulk_update(
        schools.values(),
        ["last_seen", "current_version", "agent_version"],
        batch_size=500,
    )
    CheckIn.objects.bulk_create(rows, batch_size=BATCH)
    return len(rows)

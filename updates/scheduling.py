"""When updates run: maintenance windows, blackouts, school time, beat entries.

Times the admin gives are wall-clock times in ``UPDATES_SCHOOL_TIME_ZONE`` and
are stored in UTC. Daylight-saving rules:

- a time that does not exist (in the spring-forward gap, e.g. 01:30 on
  2026-03-29 in Europe/London) is refused with a message naming the gap;
- a time that exists twice (the autumn overlap, e.g. 01:30 on 2026-10-25) is
  taken as its *first* occurrence (``fold=0``, still summer time) and the
  stored UTC time says which one it is;
- a maintenance window whose start falls in a gap starts when the clocks have
  gone forward (the same instant, read on the new clock).

A window counts on a date when neither the date it starts on nor the date it
ends on is inside a blackout period.

Every scheduled run is triggered by django-celery-beat: a one-off
``PeriodicTask`` on a ``ClockedSchedule`` that calls ``updates.execute_run``.
Creating and cancelling runs, with their rules, is ``updates.actions``'s job;
this module only knows time.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import (
    ClockedSchedule,
    PeriodicTask,
)

from updates.models import (
    AgentState,
    BlackoutPeriod,
    MaintenanceWindow,
    UpdateRun,
)

# The school's clock is its own module (the models use it); callers keep
# finding it here too.
from updates.school_time import SCHOOL_TIME_FORMAT as SCHOOL_TIME_FORMAT
from updates.school_time import format_school_time as format_school_time
from updates.school_time import school_zone

logger = logging.getLogger(__name__)

RUN_TASK = "updates.execute_run"
# How far ahead "next maintenance window" looks before giving up.
SEARCH_DAYS = 120


class SchedulingError(Exception):
    """A time cannot be used as asked (a DST gap, no window); the message says why."""


# ---------------------------------------------------------------------------
# School time <-> UTC
# ---------------------------------------------------------------------------


def local_to_utc(moment: datetime) -> datetime:
    """A naive wall-clock time in the school zone as an aware UTC time.

    Refuses a time in a DST gap; resolves a time in an overlap to its first
    occurrence (fold=0). See the module docstring.
    """
    zone = school_zone()
    local = moment.replace(tzinfo=zone, fold=0)
    back = local.astimezone(UTC).astimezone(zone)
    if back.replace(tzinfo=None) != moment.replace(tzinfo=None, fold=0):
        raise SchedulingError(
            f"{moment:%Y-%m-%d %H:%M} does not exist in {zone.key}: the clocks go "
            f"forward then (this time is skipped). Choose a time outside "
            f"{moment:%H}:00-{back:%H}:00 that day."
        )
    return local.astimezone(UTC)


def is_ambiguous(moment: datetime) -> bool:
    """True when a naive school time happens twice (autumn clock change)."""
    zone = school_zone()
    first = moment.replace(tzinfo=zone, fold=0)
    second = moment.replace(tzinfo=zone, fold=1)
    return first.utcoffset() != second.utcoffset() and not _in_gap(moment)


def _in_gap(moment: datetime) -> bool:
    zone = school_zone()
    local = moment.replace(tzinfo=zone, fold=0)
    back = local.astimezone(UTC).astimezone(zone)
    return back.replace(tzinfo=None) != moment.replace(tzinfo=None, fold=0)


def _wall_to_utc(day: date, at: time) -> datetime:
    """A window boundary as UTC; a boundary in a gap becomes the same instant."""
    return datetime.combine(day, at, tzinfo=school_zone()).astimezone(UTC)


# ---------------------------------------------------------------------------
# Windows and blackouts
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Slot:
    """One occurrence of a maintenance window, in UTC."""

    start: datetime
    end: datetime

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


def _blacked_out(days: list[date], blackouts: list[BlackoutPeriod]) -> bool:
    return any(b.start_date <= d <= b.end_date for b in blackouts for d in days)


def window_slots(after: datetime, *, days: int = SEARCH_DAYS) -> list[Slot]:
    """Window occurrences that end after ``after``, in order, blackouts removed."""
    windows = list(MaintenanceWindow.objects.filter(enabled=True))
    blackouts = list(BlackoutPeriod.objects.all())
    first_day = after.astimezone(school_zone()).date() - timedelta(days=1)
    slots: list[Slot] = []
    for offset in range(days + 1):
        day = first_day + timedelta(days=offset)
        for window in windows:
            if day.weekday() not in window.weekdays:
                continue
            end_day = day + timedelta(days=1) if window.crosses_midnight else day
            if _blacked_out([day, end_day], blackouts):
                continue
            slot = Slot(
                _wall_to_utc(day, window.start), _wall_to_utc(end_day, window.end)
            )
            if slot.end > after:
                slots.append(slot)
    return sorted(slots, key=lambda s: s.start)


def next_window_start(after: datetime) -> datetime:
    """The earliest moment at or after ``after`` inside a window (``after`` itself if inside)."""
    slots = window_slots(after)
    if not slots:
        raise SchedulingError(
            f"no maintenance window is open in the next {SEARCH_DAYS} days (none is "
            "configured or enabled, or blackouts cover them all); add a window or "
            "schedule a time with force"
        )
    first = slots[0]
    return max(first.start, after)


def slot_at(moment: datetime) -> Slot | None:
    """The window occurrence containing ``moment``, if any."""
    return next((s for s in window_slots(moment, days=3) if s.contains(moment)), None)


def is_inside_window(moment: datetime) -> bool:
    return slot_at(moment) is not None


# ---------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------


def _task_name(run_id: int) -> str:
    return f"updates: run {run_id}"


def plan_trigger(run: UpdateRun, at: datetime) -> None:
    """Create (or move) the one-off beat entry that starts ``run`` at ``at``."""
    clocked = ClockedSchedule.objects.create(clocked_time=at)
    PeriodicTask.objects.update_or_create(
        name=_task_name(run.pk),
        defaults={
            "task": RUN_TASK,
            "clocked": clocked,
            "interval": None,
            "crontab": None,
            "one_off": True,
            "enabled": True,
            "args": json.dumps([run.pk]),
            "description": f"{run.kind} to CLMS {run.to_version}",
        },
    )


def drop_trigger(run: UpdateRun) -> None:
    for task in PeriodicTask.objects.filter(name=_task_name(run.pk)):
        clocked = task.clocked
        task.delete()
        if clocked is not None and not clocked.periodictask_set.exists():
            clocked.delete()


def previous_version() -> str | None:
    """The version the installation ran before its current one, if recorded."""
    installed = AgentState.load().installed_version
    last = (
        UpdateRun.objects.filter(
            kind=UpdateRun.Kind.UPDATE,
            state=UpdateRun.State.SUCCEEDED,
            to_version=installed,
        )
        .order_by("-finished_at", "-id")
        .first()
    )
    return last.from_version if last else None


def retry_or_fail(
    run: UpdateRun, error_code: str, message: str, *, now: datetime | None = None
) -> bool:
    """After a transient failure: retry with backoff inside the window, else fail.

    Returns True when a retry was planned. The wait doubles each attempt
    (``UPDATES_RETRY_BASE_SECONDS * 2**(attempts-1)``); a retry is planned only
    while attempts remain and the retry time is still inside the maintenance
    window the run started in (or the run was forced outside windows).
    """
    now = now or timezone.now()
    delay = timedelta(
        seconds=settings.UPDATES_RETRY_BASE_SECONDS * 2 ** max(run.attempts - 1, 0)
    )
    at = now + delay
    slot = slot_at(now)
    inside = run.forced or (slot is not None and at < slot.end)
    if run.attempts <= settings.UPDATES_RETRY_MAX_ATTEMPTS and inside:
        with transaction.atomic():
            run.defer_retry(at, f"{error_code}: {message}")
            plan_trigger(run, at)
        return True
    why = (
        "no retries left"
        if run.attempts > settings.UPDATES_RETRY_MAX_ATTEMPTS
        else "the maintenance window ends before the next retry"
    )
    run.fail(error_code, f"{message} ({why}; schedule it again)")
    return False

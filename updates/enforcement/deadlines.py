"""Before the deadline: warnings by email and the automatic (or moved) schedule."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from clms_updates import audit
from clms_updates.permissions import is_school_admin
from updates import scheduling
from updates.enforcement.overrides import record_expired_overrides
from updates.enforcement.state import EnforcementState, enforcement_state
from updates.models import DeadlineWarning, UpdateRun

logger = logging.getLogger(__name__)


def _describe_left(seconds: int) -> str:
    if seconds >= 2 * 86400:
        return f"{seconds // 86400} days"
    if seconds >= 2 * 3600:
        return f"{seconds // 3600} hours"
    return f"{max(seconds // 60, 0)} minutes"


def send_deadline_warnings(now: datetime | None = None) -> list[int]:
    """Email admins for each warning threshold crossed, once each; return hours sent.

    When several thresholds are crossed at once (a release found two days
    before its deadline), only the most urgent one is emailed and the earlier
    ones are recorded as skipped: one email, not three.
    """
    now = now or timezone.now()
    state = enforcement_state(now)
    release = state.release
    if release is None or state.deadline is None or state.deadline_passed:
        return []
    left = state.seconds_left or 0
    crossed = [h for h in settings.UPDATES_CRITICAL_WARNING_HOURS if left <= h * 3600]
    if not crossed:
        return []
    most_urgent = min(crossed)
    done = set(
        DeadlineWarning.objects.filter(release_version=release.version).values_list(
            "hours_before", flat=True
        )
    )
    if most_urgent in done:
        return []
    for hours in crossed:
        if hours in done or hours == most_urgent:
            continue
        try:
            with transaction.atomic():
                DeadlineWarning.objects.create(
                    release_version=release.version, hours_before=hours, skipped=True
                )
        except IntegrityError:
            pass
    try:
        with transaction.atomic():
            warning = DeadlineWarning.objects.create(
                release_version=release.version, hours_before=most_urgent, sent_at=now
            )
    except IntegrityError:
        return []  # another tick sent it
    if not _email_warning(state, left, most_urgent):
        warning.delete()  # SMTP down: the next tick tries again
        return []
    return [most_urgent]


def _threshold_words(hours: int) -> str:
    if hours % 24 == 0:
        days = hours // 24
        return f"{days} day" + ("s" if days != 1 else "")
    return f"{hours} hour" + ("s" if hours != 1 else "")


def _email_warning(state: EnforcementState, seconds_left: int, hours: int) -> bool:
    release = state.release
    assert release is not None and state.deadline is not None
    if not settings.ADMIN_EMAILS:
        return True
    run = state.scheduled_run
    plan = (
        f"It is scheduled for {run.scheduled_for:%Y-%m-%d %H:%M} UTC."
        if run
        else "It is NOT scheduled yet: schedule it now."
    )
    body = (
        f"CLMS {release.version} is a critical update and must be installed by "
        f"{state.deadline:%Y-%m-%d %H:%M} UTC ({_describe_left(seconds_left)} from "
        f"now). {plan}\n\nAfter the deadline CLMS is blocked (its pages and API "
        "answer 'blocked') until the update is installed.\n\n"
        f"Updates page: {settings.SITE_URL}/updates/"
    )
    try:
        send_mail(
            f"CLMS critical update {release.version}: less than "
            f"{_threshold_words(hours)} left",
            body,
            settings.DEFAULT_FROM_EMAIL,
            settings.ADMIN_EMAILS,
        )
    except Exception:
        logger.exception("Could not email the deadline warning for %s", release.version)
        return False
    return True


def critical_slot_start(deadline: datetime, now: datetime) -> datetime | None:
    """The start of the last maintenance window that begins before ``deadline``."""
    days = min(max((deadline - now).days + 2, 1), scheduling.SEARCH_DAYS)
    slots = scheduling.window_slots(now, days=days)
    # A window open right now counts from now.
    starts = [max(s.start, now) for s in slots if s.start < deadline]
    return max(starts, default=None)


def plan_critical_update(now: datetime | None = None) -> UpdateRun | None:
    """Schedule the pending critical release before its deadline; return the new run.

    1. Nothing to do when no critical release is pending, its deadline passed,
       or any run is already pending (an admin's earlier schedule wins).
    2. Otherwise the run goes into the last maintenance window starting before
       the deadline; without one, one hour before the deadline (or now),
       forced, since a missed deadline blocks the school.
    """
    now = now or timezone.now()
    state = enforcement_state(now)
    release = state.release
    if release is None or state.deadline is None or state.deadline_passed:
        return None
    if UpdateRun.active() is not None:
        return None
    at = critical_slot_start(state.deadline, now)
    forced = at is None
    if at is None:
        at = max(now, state.deadline - timedelta(hours=1))
    try:
        run = scheduling.schedule_update(release, at=at, forced=forced, now=now)
    except scheduling.SchedulingError as e:
        logger.info("Critical update %s not scheduled: %s", release.version, e)
        return None
    audit.record(
        "updates.critical.scheduled",
        target=f"run {run.pk}",
        release=release.version,
        deadline=state.deadline.isoformat(),
        scheduled_for=at.isoformat(),
        outside_window=forced,
    )
    return run


def move_critical_update(
    at: datetime,
    *,
    user: Any,
    request: HttpRequest | None = None,
    now: datetime | None = None,
) -> UpdateRun:
    """Move the scheduled critical update to ``at`` (UTC), which must be before the deadline.

    The old run is cancelled and the new one created in one transaction, so
    the periodic pass cannot slip its own schedule in between. A time outside
    the maintenance windows is allowed (forced): the admin chose it.
    """
    now = now or timezone.now()
    if not is_school_admin(user):
        raise scheduling.SchedulingError("only a school admin may move the update")
    state = enforcement_state(now)
    if state.release is None or state.deadline is None:
        raise scheduling.SchedulingError("no critical update is pending")
    if not now - timedelta(minutes=1) <= at < state.deadline:
        raise scheduling.SchedulingError(
            f"choose a time from now until the deadline "
            f"({state.deadline:%Y-%m-%d %H:%M} UTC)"
        )
    release = state.release
    with transaction.atomic():
        if state.scheduled_run is not None:
            scheduling.cancel_run(state.scheduled_run)
        run = scheduling.schedule_update(
            release,
            at=at,
            user=user,
            forced=not scheduling.is_inside_window(at),
            now=now,
        )
    audit.record(
        "updates.critical.moved",
        user=user,
        request=request,
        target=f"run {run.pk}",
        release=release.version,
        scheduled_for=at.isoformat(),
    )
    return run


def enforcement_tick(now: datetime | None = None) -> dict[str, Any]:
    """The periodic pass: record expired overrides, plan the update, send warnings."""
    now = now or timezone.now()
    expired = record_expired_overrides(now)
    run = plan_critical_update(now)
    warned = send_deadline_warnings(now)
    return {
        "expired_overrides": expired,
        "scheduled_run": run.pk if run else None,
        "warnings": warned,
    }

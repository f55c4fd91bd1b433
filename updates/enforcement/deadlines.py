"""Before the deadline: warnings to the admins, and where the critical update fits.

Planning or moving the critical update is an action (``updates.actions``);
this module only knows the deadline's clock.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from clms_updates.notify import notify
from updates import scheduling
from updates.enforcement.state import EnforcementState, enforcement_state
from updates.models import DeadlineWarning

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
    assert state.release is not None and state.deadline is not None
    return notify(
        "deadline_warning",
        {
            "release": state.release,
            "deadline": state.deadline,
            "left": _describe_left(seconds_left),
            "threshold": _threshold_words(hours),
            "run": state.scheduled_run,
        },
        key=f"{state.release.version}:{hours}",
    )


def critical_slot_start(deadline: datetime, now: datetime) -> datetime | None:
    """The start of the last maintenance window that begins before ``deadline``."""
    days = min(max((deadline - now).days + 2, 1), scheduling.SEARCH_DAYS)
    slots = scheduling.window_slots(now, days=days)
    # A window open right now counts from now.
    starts = [max(s.start, now) for s in slots if s.start < deadline]
    return max(starts, default=None)

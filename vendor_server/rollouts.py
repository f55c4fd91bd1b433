"""Who sees a release (staged rollouts) and when a rollout pauses itself."""

from __future__ import annotations

import hashlib
import logging
from typing import NamedTuple

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from vendor_server.models import FAILURE_OUTCOMES, Channel, Release

logger = logging.getLogger(__name__)


class ListedRelease(NamedTuple):
    """What visibility needs to know about a listed release."""

    id: int
    channel: str
    critical: bool
    rollout_percent: int


def bucket(school_id: int, release_id: int) -> int:
    """A stable number 0-99 for (school, release): the same on every server, every time."""
    digest = hashlib.sha256(f"{school_id}:{release_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100


def is_visible(release: ListedRelease, school_id: int, school_channel: str) -> bool:
    """Channel matches (beta schools also see stable); critical, or inside the bucket."""
    if release.channel == Channel.BETA and school_channel != Channel.BETA:
        return False
    if release.critical:
        return True
    return bucket(school_id, release.id) < release.rollout_percent


class FailureFigures(NamedTuple):
    """Reports of one release: how many, how many failed or rolled back."""

    total: int
    failed: int

    @property
    def failure_percent(self) -> float:
        return 100.0 * self.failed / self.total if self.total else 0.0


def failure_figures(release: Release) -> FailureFigures:
    """Count the release's reports and its failures (failed or rolled back)."""
    counts = release.reports.aggregate(
        total=Count("id"), failed=Count("id", filter=Q(outcome__in=FAILURE_OUTCOMES))
    )
    return FailureFigures(counts["total"], counts["failed"])


def should_pause(figures: FailureFigures) -> bool:
    """At least the minimum reports, and the failure share at or past the threshold."""
    return (
        figures.total >= settings.VENDOR_PAUSE_MIN_REPORTS
        and figures.failed * 100
        >= settings.VENDOR_PAUSE_FAILURE_PERCENT * figures.total
    )


def pause_if_failing(release_id: int) -> bool:
    """Pause the release's rollout when its failure rate passes the threshold.

    Takes the row lock so two reports arriving together pause (and email) once.
    """
    from vendor_server import releases as release_actions

    with transaction.atomic():
        release = Release.objects.select_for_update().get(pk=release_id)
        if release.is_paused or not release.enabled:
            return False
        figures = failure_figures(release)
        if not should_pause(figures):
            return False
        reason = (
            f"Paused automatically: {figures.failed} of {figures.total} reports failed "
            f"or rolled back ({figures.failure_percent:.0f}%, threshold "
            f"{settings.VENDOR_PAUSE_FAILURE_PERCENT}% of at least "
            f"{settings.VENDOR_PAUSE_MIN_REPORTS} reports)."
        )
        release_actions.pause_release(release, reason=reason)
        transaction.on_commit(lambda: _email_staff(release, reason))
    return True


def _email_staff(release: Release, reason: str) -> None:
    recipients = list(settings.VENDOR_STAFF_EMAILS)
    if not recipients:
        logger.warning("Rollout of %s paused; no VENDOR_STAFF_EMAILS to tell", release)
        return
    send_mail(
        subject=f"[CLMS vendor] rollout of {release.version} paused",
        message=(
            f"{reason}\n\nThe release has left every school's index. Look at the "
            f"reports in the admin, then resume the rollout or disable the release.\n"
            f"{settings.SITE_URL}/admin/vendor_server/release/{release.pk}/change/\n"
            f"(paused at {timezone.now():%Y-%m-%d %H:%M} UTC)"
        ),
        from_email=None,
        recipient_list=recipients,
        fail_silently=False,
    )

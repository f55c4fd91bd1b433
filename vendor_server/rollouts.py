"""Who sees a release (staged rollouts), and the figures that pause a rollout.

The pause itself is an action (``vendor_server.actions.pause_if_failing``).
"""

from __future__ import annotations

import hashlib
import logging
from typing import NamedTuple

from django.conf import settings
from django.db.models import Count, Q

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

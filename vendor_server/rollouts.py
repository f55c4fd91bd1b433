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


def listed(release: Release) -> ListedRelease:
    """What visibility needs to know about ``release``."""
    return ListedRelease(
        release.pk, release.channel, release.critical, release.rollout_percent
    )


class FailureFigures(NamedTuple):
    """Schools that reported a release: how many, how many failed or rolled back."""

    total: int
    failed: int

    @property
    def failure_percent(self) -> float:
        return 100.0 * self.failed / self.total if self.total else 0.0


def figure_expressions(prefix: str = "") -> dict[str, Count]:
    """The counts of ``failure_figures`` as expressions (``prefix`` "reports__"
    annotates releases): distinct schools among the reports that count."""
    counted = Q(**{f"{prefix}counted": True})
    failed = counted & Q(**{f"{prefix}outcome__in": FAILURE_OUTCOMES})
    school = f"{prefix}school"
    return {
        "report_total": Count(school, distinct=True, filter=counted),
        "report_failed": Count(school, distinct=True, filter=failed),
    }


def failure_figures(release: Release) -> FailureFigures:
    """Distinct schools that reported the release, and those whose run failed.

    Only reports that count (the school could see the release) are weighed,
    and each school once, however many reports it sends: one school, or one
    stolen school key, can never pause a rollout by itself.
    """
    counts = release.reports.aggregate(**figure_expressions())
    return FailureFigures(counts["report_total"], counts["report_failed"])


def should_pause(figures: FailureFigures) -> bool:
    """At least the minimum reports, and the failure share at or past the threshold."""
    return (
        figures.total >= settings.VENDOR_PAUSE_MIN_REPORTS
        and figures.failed * 100
        >= settings.VENDOR_PAUSE_FAILURE_PERCENT * figures.total
    )

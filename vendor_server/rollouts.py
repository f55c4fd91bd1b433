"""Who sees a release (staged rollouts), and the figures that pause a rollout.

The pause itself is an action (``vendor_server.actions.pause_if_failing``).
"""

from __future__ import annotations

import logging
from typing import NamedTuple

from django.conf import settings
from django.db.models import Count, Q

from clms_updates.manifest.rollout import has_reached
from vendor_server.models import FAILURE_OUTCOMES, Channel, Release

logger = logging.getLogger(__name__)


class ListedRelease(NamedTuple):
    """What visibility needs to know about a listed release."""

    id: int
    channel: str
    critical: bool
    rollout_percent: int
    product: str
    version: str


def on_channel(release_channel: str, school_channel: str) -> bool:
    """Beta schools see stable releases too; stable schools only stable ones."""
    return release_channel != Channel.BETA or school_channel == Channel.BETA


def is_visible(release: ListedRelease, school_token: str, school_channel: str) -> bool:
    """On the school's channel, and critical or reached by the rollout.

    The rollout rule is the shared one (``clms_updates.manifest.rollout``),
    which agents apply to a channel index themselves.
    """
    if not on_channel(release.channel, school_channel):
        return False
    return has_reached(
        school_token,
        release.product,
        release.version,
        percent=release.rollout_percent,
        critical=release.critical,
    )


def listed(release: Release) -> ListedRelease:
    """What visibility needs to know about ``release``."""
    return ListedRelease(
        release.pk,
        release.channel,
        release.critical,
        release.rollout_percent,
        release.product,
        release.version,
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

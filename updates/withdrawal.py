"""Releases the vendor withdrew: no longer listed by a verified, fresh index.

The vendor withdraws a release by leaving it out of the signed index (it was
disabled, or its rollout paused). The agent then stops offering it: the row is
kept (runs and history refer to it) but marked ``withdrawn_at``; the check's
action then cancels a run scheduled for it that has not started, with the
reason (``updates.actions.check_for_updates``). If a later index lists it
again, unchanged, it is offered again.

Only the vendor's index speaks here, as served by the vendor server or a LAN
mirror: both serve the same vendor-signed index behind the same replay guard,
so a fresh one is the current list for either. Releases that came from an
offline bundle are not the index's to withdraw.
"""

from __future__ import annotations

import logging
from datetime import datetime

import semver

from clms_updates.manifest import (
    IndexEntry,
    ManifestError,
    ReleaseIndex,
    parse_version,
)
from updates.models import AgentState, AvailableRelease

logger = logging.getLogger(__name__)

# Sources that deliver the vendor's signed index.
INDEX_SOURCES = ("vendor", "mirror")


def apply_index(index: ReleaseIndex, *, now: datetime) -> list[str]:
    """Withdraw stored releases ``index`` no longer lists; reinstate listed ones.

    ``index`` must already be verified and fresh. Only releases above the
    installed version are withdrawn (older ones are simply no longer current).
    Returns the versions withdrawn by this call.
    """
    listed = {entry.version: entry for entry in index.releases}
    _reinstate_listed(listed, index)
    installed = parse_version(AgentState.load().installed_version)
    withdrawn: list[str] = []
    candidates = AvailableRelease.objects.filter(
        source__in=INDEX_SOURCES, withdrawn_at__isnull=True
    ).exclude(version__in=listed)
    for release in candidates:
        if semver.Version.parse(release.version) <= installed:
            continue
        marked = AvailableRelease.objects.filter(
            pk=release.pk, withdrawn_at__isnull=True
        ).update(withdrawn_at=now)
        if not marked:  # another check withdrew it first
            continue
        withdrawn.append(release.version)
        logger.warning(
            "CLMS %s was withdrawn by the vendor (index %s)",
            release.version,
            index.sequence,
        )
    return withdrawn


def withdrawn_releases() -> list[AvailableRelease]:
    """Withdrawn releases above the installed version, newest first (for the page)."""
    installed = parse_version(AgentState.load().installed_version)
    releases = [
        r
        for r in AvailableRelease.objects.filter(withdrawn_at__isnull=False)
        if semver.Version.parse(r.version) > installed
    ]
    return sorted(releases, key=lambda r: semver.Version.parse(r.version), reverse=True)


def _reinstate_listed(listed: dict[str, IndexEntry], index: ReleaseIndex) -> None:
    """Offer again a withdrawn release the index lists, if its manifest is the same."""
    for release in AvailableRelease.objects.filter(
        version__in=listed, withdrawn_at__isnull=False
    ):
        try:
            listed[release.version].check_matches(
                release.manifest(), release.manifest_bytes
            )
        except ManifestError:
            # A different build under the same version: stays withdrawn until the
            # check fetches and verifies the new manifest (which clears the mark).
            continue
        AvailableRelease.objects.filter(pk=release.pk).update(withdrawn_at=None)
        logger.info(
            "CLMS %s is listed again (index %s)", release.version, index.sequence
        )

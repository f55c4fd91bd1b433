"""The verified releases this installation knows: which it may take, which is newest.

Read by the check, the offline bundles and the pages alike; the one place that
says "a beta installation takes stable releases too" and that tells the admins,
once, that a release is available.
"""

from __future__ import annotations

import semver
from django.utils import timezone

from clms_updates.manifest import parse_version
from clms_updates.notify import notify
from updates.models import AgentState, AvailableRelease


def channels_for(channel: str) -> set[str]:
    """A beta installation also takes stable releases; a stable one only stable."""
    return {"stable", "beta"} if channel == "beta" else {"stable"}


def notify_admins_once(release: AvailableRelease) -> bool:
    """Email ``ADMIN_EMAILS`` about ``release`` once; return True if this call sent it.

    The row is marked first with a conditional update, so two checks never both
    send; if the mail cannot be sent the mark is undone and the next check retries.
    """
    now = timezone.now()
    marked = AvailableRelease.objects.filter(
        pk=release.pk, notified_at__isnull=True
    ).update(notified_at=now)
    if not marked:
        return False
    release.notified_at = now
    if notify("release_available", {"release": release}):
        return True
    # Delivery failed: unmark so the next check tries again.
    AvailableRelease.objects.filter(pk=release.pk).update(notified_at=None)
    release.notified_at = None
    return False


def latest_release() -> AvailableRelease | None:
    """The newest verified release above the installed version.

    Not one that was rolled back, nor one the vendor withdrew.
    """
    installed = parse_version(AgentState.load().installed_version)
    candidates = [
        r
        for r in AvailableRelease.objects.filter(
            rolled_back=False, withdrawn_at__isnull=True
        )
        if semver.Version.parse(r.version) > installed
    ]
    return max(candidates, key=lambda r: semver.Version.parse(r.version), default=None)

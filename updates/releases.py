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
from updates.enforcement.state import pending_critical_release
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
    if notify("release_available", {"release": release}, key=release.version):
        return True
    # Delivery failed: unmark so the next check tries again.
    AvailableRelease.objects.filter(pk=release.pk).update(notified_at=None)
    release.notified_at = None
    return False


def latest_release() -> AvailableRelease | None:
    """The release this installation is offered next, above the installed version.

    The newest one that was not rolled back here, unless a pending critical
    release is newer than it: that one's deadline governs, so it is offered
    even when it was rolled back (only installing it, or a later version, lifts
    the block). With nothing else left, the newest rolled-back release is
    offered too, as a retry an admin must override. Never one the vendor
    withdrew. The pages, the banner and the API all show this one.
    """
    installed = parse_version(AgentState.load().installed_version)
    candidates = sorted(
        (
            r
            for r in AvailableRelease.objects.filter(withdrawn_at__isnull=True)
            if semver.Version.parse(r.version) > installed
        ),
        key=lambda r: semver.Version.parse(r.version),
    )
    fresh = [r for r in candidates if not r.rolled_back]
    critical = pending_critical_release(str(installed))
    if critical is not None and (
        not fresh
        or semver.Version.parse(fresh[-1].version)
        < semver.Version.parse(critical.version)
    ):
        return critical
    if fresh:
        return fresh[-1]
    return candidates[-1] if candidates else None


def found_note(release: AvailableRelease, note: str) -> str:
    """What a check says it found, true also for a release rolled back here."""
    if not release.rolled_back:
        return note
    return (
        f"{note}, but it was rolled back here, so it is only installed again if an "
        "admin overrides that (“Retry it anyway” on the Updates page)"
    )

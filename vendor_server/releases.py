"""Changes to a published release; each one re-signs what it alters and bumps the index.

Every function here runs in one transaction: the row change, the new signature
(when the manifest changes) and the sequence bump commit together or not at all.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from clms_updates.manifest import (
    Bundle,
    HealthCheck,
    Image,
    Migration,
    ReleaseManifest,
    sha256_hex,
)
from vendor_server import indexing, keys
from vendor_server.models import Outcome, Release


class ReleaseActionError(ValueError):
    """A change to a release was refused; says why and what to do instead."""


def build_manifest(release: Release, *, signed_at: datetime) -> ReleaseManifest:
    """The manifest the release's fields describe, valid for VENDOR_MANIFEST_TTL_DAYS."""
    bundle = None
    if release.bundle_file:
        bundle = Bundle(
            filename=release.bundle_file.rsplit("/", 1)[-1],
            sha256=release.bundle_sha256,
            size=int(release.bundle_size or 0),
        )
    return ReleaseManifest(
        product=release.product,
        version=release.version,
        channel=release.channel,
        released_at=release.published_at,
        expires=signed_at + timedelta(days=settings.VENDOR_MANIFEST_TTL_DAYS),
        images=tuple(Image.from_dict(i, "images") for i in release.images),
        health=HealthCheck.from_dict(release.health_check, "health")
        if release.health_check
        else HealthCheck(),
        critical=release.critical,
        force_after=release.force_after if release.critical else None,
        min_version=release.min_version or None,
        changelog=release.changelog,
        bundle=bundle,
        migration=Migration.from_dict(release.migration, "migration")
        if release.migration
        else None,
    )


def sign_release(release: Release, *, now: datetime | None = None) -> None:
    """Rebuild and sign the release's manifest onto the row (caller saves)."""
    now = now or timezone.now()
    data = build_manifest(release, signed_at=now).to_bytes()
    release.manifest_signature = keys.sign(data)
    release.manifest_json = data.decode("utf-8")
    release.manifest_sha256 = sha256_hex(data)
    release.signed_at = now


def set_enabled(release: Release, enabled: bool) -> None:
    """Enable or disable a release (disabling also ends a pause)."""
    with transaction.atomic():
        release.enabled = enabled
        if not enabled:
            release.paused_at = None
        release.save(update_fields=["enabled", "paused_at"])
        indexing.bump_sequence()


def pause_release(release: Release, *, reason: str) -> None:
    """Take the release out of every index until staff resume it."""
    if release.is_paused:
        raise ReleaseActionError(f"{release.version} is already paused")
    with transaction.atomic():
        release.paused_at = timezone.now()
        release.pause_reason = reason
        release.save(update_fields=["paused_at", "pause_reason"])
        indexing.bump_sequence()


def resume_release(release: Release) -> None:
    """Put a paused release back into the indexes."""
    if not release.is_paused:
        raise ReleaseActionError(f"{release.version} is not paused")
    with transaction.atomic():
        release.paused_at = None
        release.pause_reason = ""
        release.save(update_fields=["paused_at", "pause_reason"])
        indexing.bump_sequence()


def set_rollout_percent(release: Release, percent: int) -> None:
    """Show the release to ``percent`` of the schools on its channel."""
    if not 0 <= percent <= 100:
        raise ReleaseActionError("the rollout percentage must be from 0 to 100")
    with transaction.atomic():
        release.rollout_percent = percent
        release.save(update_fields=["rollout_percent"])
        indexing.bump_sequence()


def mark_critical(release: Release, force_after: datetime) -> None:
    """Make the release critical with a deadline; re-signs its manifest."""
    if force_after <= timezone.now():
        raise ReleaseActionError(
            f"the deadline {force_after:%Y-%m-%d %H:%M} is in the past; give a future time"
        )
    with transaction.atomic():
        release.critical = True
        release.force_after = force_after
        sign_release(release)
        release.save()
        indexing.bump_sequence()


def resign(release: Release) -> None:
    """Sign the release's manifest again (new expiry, or after a key rotation)."""
    with transaction.atomic():
        sign_release(release)
        release.save()
        indexing.bump_sequence()


def installed_anywhere(release: Release) -> bool:
    """Has any school reported installing this release?"""
    return release.reports.filter(outcome=Outcome.SUCCEEDED).exists()


def delete_release(release: Release) -> None:
    """Delete a release nobody has installed; refused otherwise (disable it instead)."""
    if installed_anywhere(release):
        raise ReleaseActionError(
            f"{release.version} was installed by at least one school, so it cannot be "
            "deleted (schools and reports refer to it); disable it instead"
        )
    with transaction.atomic():
        release.delete()
        indexing.bump_sequence()

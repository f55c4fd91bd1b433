"""A published release's signed manifest (built from its fields, signed on the row),
and what its project changes against the release before it.

The changes staff make to a release (and their rules) are ``vendor_server.actions``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from clms_updates.manifest import (
    Bundle,
    HealthCheck,
    Image,
    Migration,
    ReleaseManifest,
    parse_version,
    sha256_hex,
)
from clms_updates.manifest.compose import ProjectDiff, Setting, diff_projects
from clms_updates.manifest.schema import SourceBuild
from vendor_server import keys, roots
from vendor_server.models import Outcome, Release


def build_manifest(release: Release, *, signed_at: datetime) -> ReleaseManifest:
    """The manifest the release's fields describe, valid for VENDOR_MANIFEST_TTL_DAYS."""
    bundle = None
    if release.bundle_file:
        bundle = Bundle(
            filename=release.bundle_file.rsplit("/", 1)[-1],
            sha256=release.bundle_sha256,
            size=int(release.bundle_size or 0),
        )
    compose = release.compose or None
    return ReleaseManifest(
        compose=compose,
        settings=_settings(release),
        source=SourceBuild.from_dict(release.source, "source")
        if release.source
        else None,
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


def project_of(release: Release) -> dict[str, Any]:
    """The release's compose project; an image-only release's as services with images."""
    if release.compose:
        return dict(release.compose)
    return {
        "services": {
            str(i["service"]): {"image": str(i["reference"])} for i in release.images
        }
    }


def previous_release(release: Release) -> Release | None:
    """The highest release of the same channel and product below this one."""
    version = parse_version(release.version)
    lower = [
        r
        for r in Release.objects.filter(
            channel=release.channel, product=release.product
        ).exclude(pk=release.pk)
        if parse_version(r.version) < version
    ]
    return max(lower, key=lambda r: parse_version(r.version), default=None)


def project_changes(release: Release, against: Release | None) -> ProjectDiff:
    """What ``release``'s project changes against ``against`` (None: the first one)."""
    return diff_projects(
        project_of(against) if against is not None else None,
        project_of(release),
        old_settings=_settings(against) if against is not None else (),
        new_settings=_settings(release),
    )


def _settings(release: Release) -> tuple[Setting, ...]:
    return tuple(
        Setting.from_dict(item, f"settings[{i}]")
        for i, item in enumerate(release.settings or [])
    )


def sign_release(release: Release, *, now: datetime | None = None) -> None:
    """Rebuild and sign the release's manifest onto the row (caller saves).

    The online key's signature alone lists the release only while that key is
    a release key of the current root; otherwise it waits for ``sign_release``.
    """
    now = now or timezone.now()
    data = build_manifest(release, signed_at=now).to_bytes()
    release.manifest_signature = keys.sign(data)
    release.manifest_json = data.decode("utf-8")
    release.manifest_sha256 = sha256_hex(data)
    release.signed_at = now
    # New bytes: release managers' signatures over the old ones no longer count.
    release.release_signed = roots.signed_enough(release)


def installed_anywhere(release: Release) -> bool:
    """Has any school reported installing this release?"""
    return release.reports.filter(outcome=Outcome.SUCCEEDED).exists()

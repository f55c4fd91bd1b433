"""Factories for the updates tests: signed metadata and rows."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from django.utils import timezone

from clms_updates import manifest as m
from updates.models import AvailableRelease, MaintenanceWindow, UpdateRun

DIGEST = "sha256:" + "cd" * 32


def make_manifest(version: str, **overrides: Any) -> m.ReleaseManifest:
    """A valid release manifest for ``version``."""
    now = datetime.now(UTC).replace(microsecond=0)
    values: dict[str, Any] = dict(
        product="clms",
        version=version,
        channel="stable",
        released_at=now - timedelta(hours=1),
        expires=now + timedelta(days=30),
        images=(m.Image("app", f"127.0.0.1:5000/clms/app@{DIGEST}"),),
        health=m.HealthCheck(path="/health", body_field="status", body_value="ok"),
        changelog=f"## {version}\n- Faster loans",
        migration=m.Migration("app", ("migrate",)),
    )
    values.update(overrides)
    return m.ReleaseManifest(**values)


def make_index(
    manifests: list[m.ReleaseManifest], *, sequence: int = 1, **overrides: Any
) -> m.ReleaseIndex:
    """An index listing ``manifests``."""
    now = datetime.now(UTC).replace(microsecond=0)
    values: dict[str, Any] = dict(
        product="clms",
        sequence=sequence,
        generated_at=now - timedelta(minutes=5),
        expires=now + timedelta(days=7),
        releases=tuple(m.IndexEntry.for_manifest(x) for x in manifests),
    )
    values.update(overrides)
    return m.ReleaseIndex(**values)


def make_release(version: str = "1.1.0", **overrides: Any) -> AvailableRelease:
    """An AvailableRelease row (as if verified)."""
    manifest = make_manifest(version)
    values: dict[str, Any] = dict(
        version=version,
        channel="stable",
        changelog=manifest.changelog,
        manifest_text=manifest.to_bytes().decode(),
        signature="-----BEGIN PGP SIGNATURE-----\n(test)\n-----END PGP SIGNATURE-----",
        signer_fingerprint="A" * 40,
        source="vendor",
        index_sequence=1,
        verified_at=timezone.now(),
    )
    values.update(overrides)
    return AvailableRelease.objects.create(**values)


def make_run(release: AvailableRelease | None = None, **overrides: Any) -> UpdateRun:
    """A scheduled run for ``release`` in an hour."""
    release = release or make_release()
    values: dict[str, Any] = dict(
        release=release,
        from_version="1.0.0",
        to_version=release.version,
        scheduled_for=timezone.now() + timedelta(hours=1),
    )
    values.update(overrides)
    return UpdateRun.objects.create(**values)


def make_weeknight_window() -> MaintenanceWindow:
    """Mon-Fri 22:00-05:00 school time."""
    return MaintenanceWindow.objects.create(
        weekdays=[0, 1, 2, 3, 4], start=time(22, 0), end=time(5, 0)
    )

"""Publishing a release: validate everything, then write it in one transaction.

The admin form and ``manage.py publish_release`` both build a ``ReleaseDraft``
and call ``publish``. Nothing is written until every check passed; the bundle
file is copied into place only after validation, and removed again if the
transaction fails, so a refused release leaves no trace.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from clms_updates.actions import ActionRefused
from clms_updates.files import sha256_file
from clms_updates.manifest import (
    HealthCheck,
    Image,
    ManifestError,
    Migration,
    SignatureError,
    parse_manifest,
    parse_version,
    verify_detached,
)
from clms_updates.manifest.schema import CHANNELS, parse_time
from vendor_server import indexing, keys, registry
from vendor_server.models import Release
from vendor_server.releases import sign_release

BUNDLE_MANIFEST = "manifest.json"
BUNDLE_SIGNATURE = "manifest.json.asc"
# Fields of the embedded manifest that must agree with the release published.
MATCHED_FIELDS = ("version", "channel", "critical", "min_version", "images")


class PublishError(ActionRefused):
    """A release was refused; ``messages`` says every problem found, nothing was written."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages), code="publish_refused")
        self.messages = messages


@dataclass
class ReleaseDraft:
    """What staff asked to publish, before any check."""

    version: str
    channel: str = "stable"
    changelog: str = ""
    critical: bool = False
    force_after: datetime | None = None
    min_version: str = ""
    images: list[dict[str, Any]] = field(default_factory=list)
    migration: dict[str, Any] | None = None
    health_check: dict[str, Any] = field(default_factory=dict)
    rollout_percent: int = 100
    bundle_path: Path | None = None
    bundle_name: str = ""
    product: str = ""

    @classmethod
    def from_manifest_file(
        cls, data: dict[str, Any], bundle_path: Path | None = None
    ) -> ReleaseDraft:
        """A draft from a manifest-like JSON object (``publish_release --manifest``)."""
        if not isinstance(data, dict):
            raise PublishError(["the manifest file must hold a JSON object"])
        known = {
            "version",
            "channel",
            "changelog",
            "critical",
            "force_after",
            "min_version",
            "images",
            "migration",
            "health",
            "rollout_percent",
            "product",
            # Written by the vendor when the file is a full manifest; recomputed here.
            "format",
            "kind",
            "released_at",
            "expires",
            "bundle",
        }
        unknown = sorted(set(data) - known)
        if unknown:
            raise PublishError(
                [f"unknown field(s) in the manifest file: {', '.join(unknown)}"]
            )
        force_after = None
        if data.get("force_after"):
            try:
                force_after = parse_time(data["force_after"], "force_after")
            except ManifestError as e:
                raise PublishError([str(e)]) from None
        return cls(
            version=str(data.get("version", "")),
            channel=str(data.get("channel", "stable")),
            changelog=str(data.get("changelog", "")),
            critical=bool(data.get("critical", False)),
            force_after=force_after,
            min_version=str(data.get("min_version") or ""),
            images=list(data.get("images") or []),
            migration=data.get("migration") or None,
            health_check=dict(data.get("health") or {}),
            rollout_percent=int(data.get("rollout_percent", 100)),
            bundle_path=bundle_path,
            bundle_name=bundle_path.name if bundle_path else "",
            product=str(data.get("product") or ""),
        )


def validate(draft: ReleaseDraft, *, now: datetime) -> list[str]:
    """Every problem with ``draft``, each saying what and why (empty when valid)."""
    problems: list[str] = []
    try:
        parse_version(draft.version)
    except ManifestError as e:
        problems.append(str(e))
    else:
        if Release.objects.filter(version=draft.version).exists():
            problems.append(
                f"version {draft.version} is already published; versions are never "
                "reused (publish a higher one, or re-sign/enable the existing one)"
            )
    if draft.channel not in CHANNELS:
        problems.append(
            f"channel {draft.channel!r} is not one of {', '.join(CHANNELS)}"
        )
    if draft.min_version:
        try:
            if parse_version(
                draft.min_version, field_name="min_version"
            ) >= parse_version(draft.version):
                problems.append("min_version must be lower than the version published")
        except ManifestError as e:
            problems.append(str(e))
    if draft.critical and draft.force_after is None:
        problems.append("a critical release needs a deadline (force_after)")
    if draft.force_after is not None and not draft.critical:
        problems.append(
            "only a critical release has a deadline; tick critical or clear it"
        )
    if draft.force_after is not None and draft.force_after <= now:
        problems.append(
            f"the deadline {draft.force_after:%Y-%m-%d %H:%M} UTC is in the past; "
            "schools could never meet it. Give a future time"
        )
    if not 0 <= draft.rollout_percent <= 100:
        problems.append("the rollout percentage must be from 0 to 100")
    images = _validate_images(draft, problems)
    if draft.migration:
        try:
            migration = Migration.from_dict(draft.migration, "migration")
            if migration.service not in {i.service for i in images}:
                problems.append(
                    f"migration service {migration.service!r} is not one of the images"
                )
        except ManifestError as e:
            problems.append(str(e))
    if draft.health_check:
        try:
            HealthCheck.from_dict(draft.health_check, "health")
        except ManifestError as e:
            problems.append(str(e))
    if draft.bundle_path is not None:
        problems.extend(_validate_bundle(draft, images))
    return problems


def _validate_images(draft: ReleaseDraft, problems: list[str]) -> list[Image]:
    if not draft.images:
        problems.append(
            "a release needs at least one image (service and reference@digest)"
        )
        return []
    images = []
    for i, item in enumerate(draft.images):
        try:
            images.append(Image.from_dict(item, f"images[{i}]"))
        except ManifestError as e:
            problems.append(str(e))
    services = [image.service for image in images]
    if len(set(services)) != len(services):
        problems.append("images: a service is named twice")
    if settings.VENDOR_REGISTRY_CHECK and len(images) == len(draft.images):
        for image in images:
            try:
                registry.check_image(image.reference)
            except registry.RegistryError as e:
                problems.append(str(e))
    return images


def _validate_bundle(draft: ReleaseDraft, images: list[Image]) -> list[str]:
    path = draft.bundle_path
    assert path is not None
    limit = settings.VENDOR_MAX_BUNDLE_MB * 1024 * 1024
    size = path.stat().st_size
    if size > limit:
        return [
            f"the bundle is {size / 1048576:.0f} MiB, over the {settings.VENDOR_MAX_BUNDLE_MB} "
            "MiB limit (VENDOR_MAX_BUNDLE_MB); nothing was published"
        ]
    if not zipfile.is_zipfile(path):
        return ["the bundle is not a valid ZIP file; build it again and re-upload"]
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if BUNDLE_MANIFEST not in names or BUNDLE_SIGNATURE not in names:
                return [
                    f"the bundle must hold {BUNDLE_MANIFEST} and {BUNDLE_SIGNATURE} at its "
                    "top level (the signed manifest schools check offline)"
                ]
            broken = archive.testzip()
            if broken:
                return [f"the bundle is corrupt: {broken} fails its CRC check"]
            data = archive.read(BUNDLE_MANIFEST)
            signature = archive.read(BUNDLE_SIGNATURE)
    except zipfile.BadZipFile as e:
        return [f"the bundle is not a valid ZIP file ({e})"]
    try:
        verify_detached(
            data,
            signature,
            gnupghome=keys.gnupg_home(),
            pinned=keys.secret_fingerprints(),
            what="the bundle's manifest",
        )
        embedded = parse_manifest(data)
    except (SignatureError, ManifestError) as e:
        return [f"{e} (the bundle was refused)"]
    wanted = {
        "version": draft.version,
        "channel": draft.channel,
        "critical": draft.critical,
        "min_version": draft.min_version or None,
        "images": tuple(images),
    }
    return [
        f"the bundle's manifest says {name} {getattr(embedded, name)!r} but the release "
        f"says {wanted[name]!r}; the bundle belongs to another release"
        for name in MATCHED_FIELDS
        if getattr(embedded, name) != wanted[name]
    ]


def publish(draft: ReleaseDraft, *, published_by: str = "") -> Release:
    """Validate ``draft`` and publish it: signed manifest, bundle, index bump.

    Raises ``PublishError`` listing every problem; nothing is written then.
    """
    now = timezone.now()
    problems = validate(draft, now=now)
    if problems:
        raise PublishError(problems)
    release = Release(
        product=draft.product or settings.VENDOR_PRODUCT,
        version=draft.version,
        channel=draft.channel,
        changelog=draft.changelog,
        critical=draft.critical,
        force_after=draft.force_after,
        min_version=draft.min_version,
        rollout_percent=100 if draft.critical else draft.rollout_percent,
        images=[Image.from_dict(i, "images").to_dict() for i in draft.images],
        migration=draft.migration or None,
        health_check=draft.health_check or HealthCheck().to_dict(),
        published_at=now,
        published_by=published_by,
    )
    target: Path | None = None
    if draft.bundle_path is not None:
        name = draft.bundle_name or f"clms-{draft.version}.zip"
        target = Path(settings.VENDOR_BUNDLE_DIR) / draft.version / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(draft.bundle_path, target)
        release.bundle_file = f"{draft.version}/{name}"
        release.bundle_sha256 = sha256_file(target)
        release.bundle_size = target.stat().st_size
    try:
        with transaction.atomic():
            sign_release(release, now=now)
            release.save()
            indexing.bump_sequence(now=now)
    except Exception:
        if target is not None:
            shutil.rmtree(target.parent, ignore_errors=True)
        raise
    return release


def load_manifest_file(path: Path) -> dict[str, Any]:
    """Read the JSON file given to ``publish_release``, or raise ``PublishError``."""
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise PublishError([f"the manifest file {path} cannot be read: {e}"]) from e
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PublishError([f"the manifest file {path} is not valid JSON: {e}"]) from e
    return data

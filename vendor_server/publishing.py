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

import yaml
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
from clms_updates.manifest.compose import (
    ComposeError,
    check_project,
    from_compose_file,
    service_images,
)
from clms_updates.manifest.compose import services as compose_services
from clms_updates.manifest.schema import CHANNELS, parse_time
from vendor_server import compose_check, indexing, keys, registry, sources
from vendor_server.models import Release
from vendor_server.releases import (
    build_manifest,
    previous_release,
    project_changes,
    sign_release,
)

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
    # A compose release: the vendor's compose file (with its x-clms-* parts);
    # with ``resolve_tags`` an image given by tag is pinned to the registry's
    # digest (shown before signing: ``pinned``).
    compose_text: str = ""
    resolve_tags: bool = False
    # A source release: its ``source`` part (see ``vendor_server.sources``) and
    # the folder whose tree digest it signs.
    source: dict[str, Any] | None = None
    source_dir: Path | None = None
    # Filled by ``validate`` from ``compose_text``.
    compose: dict[str, Any] | None = None
    settings: list[dict[str, Any]] = field(default_factory=list)
    pinned: list[str] = field(default_factory=list)

    @classmethod
    def from_manifest_file(
        cls,
        data: dict[str, Any],
        bundle_path: Path | None = None,
        *,
        compose_text: str = "",
        resolve_tags: bool = False,
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
            "source",
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
            compose_text=compose_text,
            resolve_tags=resolve_tags,
            source=data.get("source") or None,
        )


def validate(draft: ReleaseDraft, *, now: datetime) -> list[str]:
    """Every problem with ``draft``, each saying what and why (empty when valid)."""
    problems: list[str] = []
    if draft.product and draft.product not in indexing.products():
        problems.append(
            f"product {draft.product!r} is not one this vendor publishes "
            f"({', '.join(indexing.products())}; VENDOR_PRODUCT and "
            "VENDOR_AGENT_PRODUCT)"
        )
    try:
        parse_version(draft.version)
    except ManifestError as e:
        problems.append(str(e))
    else:
        if (
            Release.objects.of(draft.product or settings.VENDOR_PRODUCT)
            .filter(version=draft.version)
            .exists()
        ):
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
    if draft.source is not None:
        if not draft.compose_text:
            problems.append(
                "a source release is a compose release: give its compose file, whose "
                f"built services run {draft.source.get('image')!r}"
            )
        draft.source, found = sources.prepare(draft.source, draft.source_dir)
        problems.extend(found)
    if draft.compose_text:
        _prepare_compose(draft, problems)
    images = _validate_images(draft, problems)
    if draft.migration:
        try:
            migration = Migration.from_dict(draft.migration, "migration")
            runs = (
                set(compose_services(draft.compose))
                if draft.compose is not None
                else {i.service for i in images}
            )
            if migration.service not in runs:
                problems.append(
                    f"migration service {migration.service!r} is not one of the "
                    "release's services"
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
    if draft.compose is not None and not problems:
        problems.extend(_check_manifest(draft, now=now))
    return problems


def _prepare_compose(draft: ReleaseDraft, problems: list[str]) -> None:
    """Read the compose file into the draft: project, settings, migration, health."""
    try:
        release = from_compose_file(draft.compose_text)
    except ComposeError as e:
        problems.append(str(e))
        return
    project = release.project
    before = len(problems)
    built = set((draft.source or {}).get("services") or [])
    for name, spec in compose_services(project).items():
        image = str(spec.get("image", "")) if isinstance(spec, dict) else ""
        if name in built or not image or "@" in image:
            continue
        if not draft.resolve_tags:
            problems.append(
                f"compose.services.{name}.image: {image!r} is a tag, not a digest; pin "
                "it (repository@sha256:…) or ask to resolve tags against the registry "
                "(the pinned digests are shown before anything is signed)"
            )
            continue
        try:
            pinned = registry.resolve_tag(image)
        except registry.RegistryError as e:
            problems.append(str(e))
            continue
        spec["image"] = pinned
        draft.pinned.append(f"{name}: {image} -> {pinned}")
    if draft.images:
        problems.append(
            "give the images in the compose file only (a compose release's images "
            "are its services' images)"
        )
    draft.images = [
        {"service": name, "reference": image}
        for name, image in sorted(service_images(project).items())
        if name not in built
    ]
    if len(problems) == before:
        # What the signature must cover (built services run the image the build tags).
        try:
            check_project(
                project,
                settings=release.settings,
                built_image=(draft.source or {}).get("image"),
                built_services=tuple(sorted(built)),
            )
        except ComposeError as e:
            problems.append(str(e))
            return
    draft.compose = project
    draft.settings = [s.to_dict() for s in release.settings]
    if release.migration is not None:
        draft.migration = release.migration
    if release.health is not None:
        draft.health_check = release.health


def _check_manifest(draft: ReleaseDraft, *, now: datetime) -> list[str]:
    """The manifest this draft makes is valid, and compose itself can read the project."""
    release = _release_for(draft, now=now, published_by="")
    try:
        manifest = build_manifest(release, signed_at=now)
    except (ManifestError, ComposeError) as e:
        return [str(e)]
    return compose_check.problems(manifest)


def _validate_images(draft: ReleaseDraft, problems: list[str]) -> list[Image]:
    if not draft.images and draft.source is None:
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


def _release_for(draft: ReleaseDraft, *, now: datetime, published_by: str) -> Release:
    """The (unsaved, unsigned) row a valid draft becomes."""
    return Release(
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
        compose=draft.compose,
        settings=draft.settings,
        source=draft.source,
        published_at=now,
        published_by=published_by,
    )


@dataclass(frozen=True)
class Preview:
    """What publishing a draft would sign, shown before anything is signed.

    ``compose_text`` is the draft's compose file with every tag replaced by
    the digest it was pinned to (publish that text to sign exactly what was
    shown); ``changes`` is its project against the release before it.
    """

    problems: list[str]
    pinned: list[str]
    compose_text: str
    previous: str
    changes: list[str]


def preview(draft: ReleaseDraft, *, now: datetime | None = None) -> Preview:
    """Check ``draft`` (resolving tags if it asks) without signing or saving anything."""
    now = now or timezone.now()
    problems = validate(draft, now=now)
    text = _pinned_text(draft) if draft.pinned else draft.compose_text
    if problems:
        return Preview(problems, list(draft.pinned), text, "", [])
    release = _release_for(draft, now=now, published_by="")
    previous = previous_release(release)
    return Preview(
        [],
        list(draft.pinned),
        text,
        previous.version if previous is not None else "",
        project_changes(release, previous).lines(),
    )


def _pinned_text(draft: ReleaseDraft) -> str:
    """The compose file with the pinned digests in place of the tags (YAML again)."""
    data = yaml.safe_load(draft.compose_text)
    pinned = service_images(draft.compose or {})
    for name, spec in (data.get("services") or {}).items():
        if isinstance(spec, dict) and name in pinned:
            spec["image"] = pinned[name]
    return yaml.safe_dump(data, sort_keys=False)


def publish(draft: ReleaseDraft, *, published_by: str = "") -> Release:
    """Validate ``draft`` and publish it: signed manifest, bundle, index bump.

    Raises ``PublishError`` listing every problem; nothing is written then.
    """
    now = timezone.now()
    problems = validate(draft, now=now)
    if problems:
        raise PublishError(problems)
    release = _release_for(draft, now=now, published_by=published_by)
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

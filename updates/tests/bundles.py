"""Test helper: write offline bundles (good and deliberately bad) signed with real keys.

Follows ``clms_updates.manifest.bundle``; the vendor's ``build_bundle`` command writes
the same layout from real images.
"""

from __future__ import annotations

import hashlib
import io
import json
import stat
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import gnupg
import pytest

from clms_updates import manifest as m
from clms_updates.manifest import canonical_json
from updates.models import AgentState


@dataclass
class ImagePayload:
    """One service's registry manifest blob and ``docker save`` archive."""

    service: str
    repository: str
    registry_manifest: bytes
    archive: bytes

    @property
    def reference(self) -> str:
        return f"{self.repository}@sha256:{hashlib.sha256(self.registry_manifest).hexdigest()}"


def fake_image(
    service: str = "app", repository: str = "127.0.0.1:5000/clms/app"
) -> ImagePayload:
    """An image payload that is never loaded (for refusals that happen before)."""
    blob = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"digest": "sha256:" + "ab" * 32, "size": 10},
            "layers": [],
        }
    )
    return ImagePayload(service, repository, blob, b"not really a tar")


def real_image(
    client: docker.DockerClient,
    *,
    service: str = "app",
    repository: str = "127.0.0.1:5000/clms/offline-test",
    text: str = "hello",
) -> ImagePayload:
    """Build a tiny image (FROM scratch, one file), save it, then remove it from Docker.

    The registry manifest blob names the image's config digest, as the registry
    would; its own sha256 is the digest the signed manifest uses.
    """
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, data in (
            ("Dockerfile", b"FROM scratch\nCOPY hello.txt /hello.txt\n"),
            ("hello.txt", text.encode()),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    image, _ = client.images.build(fileobj=context, custom_context=True, rm=True)
    archive = b"".join(image.save(named=False))
    config = client.api.inspect_image(image.id)
    blob = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "digest": image.id,
                "size": int(config.get("Size", 0)),
            },
            "layers": [],
        }
    )
    client.images.remove(image.id, force=True)
    return ImagePayload(service, repository, blob, archive)


@dataclass
class BundleSpec:
    """What goes into a bundle; tests change fields to make it bad."""

    manifest: m.ReleaseManifest
    images: list[ImagePayload]
    key_home: Path
    fingerprint: str
    # Sign bundle.json / manifest.json with another key (home, fingerprint).
    contents_signer: tuple[Path, str] | None = None
    manifest_signer: tuple[Path, str] | None = None
    unsigned: bool = False
    # Change a file's bytes after its checksum went into bundle.json.
    tamper: dict[str, bytes] = field(default_factory=dict)
    # Raw extra ZIP entries (name -> bytes), not listed in bundle.json.
    extra: dict[str, bytes] = field(default_factory=dict)
    # Entry name -> unix mode bits for the external attributes (links).
    modes: dict[str, int] = field(default_factory=dict)
    compression: int = zipfile.ZIP_DEFLATED
    edit_contents: Callable[[dict[str, Any]], None] | None = None
    # Carry the vendor's public key (vendor-key.asc) for never-online agents.
    include_key: bool = True
    # A source release: its files (path below source/ -> bytes) and base images.
    source: dict[str, bytes] = field(default_factory=dict)
    base_images: list[ImagePayload] = field(default_factory=list)


def write_bundle(spec: BundleSpec, path: Path) -> Path:
    """Write the bundle described by ``spec`` to ``path``."""
    files: dict[str, bytes] = {}
    images: list[dict[str, str]] = []
    for image in spec.images:
        base = f"images/{image.service}"
        files[f"{base}/manifest.json"] = image.registry_manifest
        files[f"{base}/image.tar"] = image.archive
        images.append(
            {
                "service": image.service,
                "reference": image.reference,
                "registry_manifest": f"{base}/manifest.json",
                "archive": f"{base}/image.tar",
            }
        )
    for name, data in spec.source.items():
        files[f"source/{name}"] = data
    bases: list[dict[str, str]] = []
    for number, image in enumerate(spec.base_images):
        base = f"base-images/{number}"
        files[f"{base}/manifest.json"] = image.registry_manifest
        files[f"{base}/image.tar"] = image.archive
        bases.append(
            {
                "reference": image.reference,
                "registry_manifest": f"{base}/manifest.json",
                "archive": f"{base}/image.tar",
            }
        )
    manifest_bytes = spec.manifest.to_bytes()
    contents: dict[str, Any] = {
        "format": 1,
        "kind": "offline-bundle",
        "product": spec.manifest.product,
        "version": spec.manifest.version,
        "manifest_sha256": hashlib.sha256(manifest_bytes).hexdigest(),
        "images": images,
        "base_images": bases,
        "files": [
            {
                "path": name,
                "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data),
            }
            for name, data in sorted(files.items())
        ],
    }
    if spec.edit_contents:
        spec.edit_contents(contents)
    contents_bytes = canonical_json(contents)
    entries: dict[str, bytes] = {}
    entries["manifest.json"] = manifest_bytes
    entries["bundle.json"] = contents_bytes
    if not spec.unsigned:
        home, fpr = spec.manifest_signer or (spec.key_home, spec.fingerprint)
        entries["manifest.json.asc"] = m.sign_detached(
            manifest_bytes, gnupghome=home, fingerprint=fpr
        ).encode()
        home, fpr = spec.contents_signer or (spec.key_home, spec.fingerprint)
        entries["bundle.json.asc"] = m.sign_detached(
            contents_bytes, gnupghome=home, fingerprint=fpr
        ).encode()
    if spec.include_key:
        entries["vendor-key.asc"] = str(
            gnupg.GPG(gnupghome=str(spec.key_home)).export_keys(spec.fingerprint)
        ).encode()
    entries.update(files)
    entries.update(spec.tamper)
    entries.update(spec.extra)
    with zipfile.ZipFile(path, "w", compression=spec.compression) as archive:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name, date_time=(2026, 11, 27, 0, 0, 0))
            info.compress_type = spec.compression
            mode = spec.modes.get(name, stat.S_IFREG | 0o644)
            info.external_attr = mode << 16
            archive.writestr(info, data)
    return path


def manifest_for(
    images: list[ImagePayload], version: str = "1.0.2", **overrides: Any
) -> m.ReleaseManifest:
    """A release manifest naming ``images`` by digest."""
    from updates.tests.factories import make_manifest

    values: dict[str, Any] = {
        "images": tuple(m.Image(i.service, i.reference) for i in images),
        "migration": m.Migration(images[0].service, ("migrate",)),
    }
    values.update(overrides)
    return make_manifest(version, **values)


def source_digest(files: dict[str, bytes]) -> str:
    """The tree digest a manifest signs for these source files."""
    from clms_updates.manifest.bundle import tree_digest

    return tree_digest(
        (name, hashlib.sha256(data).hexdigest(), len(data))
        for name, data in files.items()
    )


def json_bytes(data: Any) -> bytes:
    return json.dumps(data).encode()


@pytest.fixture(name="agent")
def agent_fixture(settings, tmp_path, vendor_key, agent_gnupg_home, db):  # type: ignore[no-untyped-def]
    """Agent settings: pinned vendor key, offline/quarantine/work folders under tmp."""
    home, fingerprint = vendor_key
    key_file = tmp_path / "vendor.asc"
    key_file.write_text(str(gnupg.GPG(gnupghome=str(home)).export_keys(fingerprint)))
    settings.UPDATES_VENDOR_KEY_FINGERPRINTS = [fingerprint]
    settings.UPDATES_VENDOR_PUBLIC_KEY_FILE = str(key_file)
    settings.UPDATES_GNUPG_HOME = agent_gnupg_home
    settings.UPDATES_CHANNEL = "stable"
    settings.UPDATES_OFFLINE_DIR = tmp_path / "offline"
    settings.UPDATES_QUARANTINE_DIR = tmp_path / "quarantine"
    settings.UPDATES_OFFLINE_WORK_DIR = tmp_path / "work"
    settings.UPDATES_OFFLINE_GRACE_DAYS = 90
    settings.UPDATES_OFFLINE_SETTLE_SECONDS = 0
    settings.UPDATES_BUNDLE_MAX_ENTRIES = 50
    settings.UPDATES_BUNDLE_MAX_MB = 64
    settings.UPDATES_BUNDLE_MAX_RATIO = 100
    settings.ADMIN_EMAILS = []
    settings.UPDATES_OFFLINE_DIR.mkdir()
    AgentState.load()
    AgentState.record_installed("1.0.0")
    return tmp_path

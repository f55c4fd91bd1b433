"""``manage.py build_bundle VERSION``: write the signed offline bundle of a release.

The bundle (format 1, read by the school agent's ``updates.offline``) is a ZIP::

    manifest.json / manifest.json.asc   the release's signed manifest, as published
    bundle.json / bundle.json.asc       every other file with sha256 and size, and
                                        per service where its image is; signed
    vendor-key.asc                      the vendor public key (trusted by schools
                                        only if its fingerprint is pinned)
    images/<digest>/manifest.json       the registry manifest of an image
    images/<digest>/image.tar           the image as ``docker save`` writes it

Each image is pulled by digest from its registry; its registry manifest is
fetched and must hash to the signed digest, and the pulled image's id must be
the config digest that manifest names, so the bundle holds exactly what the
signed manifest describes.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import docker
import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from clms_updates.manifest import SignatureError, canonical_json, parse_manifest
from vendor_server import keys, registry
from vendor_server.models import Release

IMAGE_MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
)
CHUNK = 1024 * 1024


def _registry_url(host: str) -> str:
    """``http`` for loopback and the insecure hosts, else ``https`` (as on publish)."""
    hostname = host.rsplit(":", 1)[0]
    insecure = settings.VENDOR_REGISTRY_INSECURE_HOSTS
    plain = (
        hostname in ("localhost", "127.0.0.1", "::1")
        or host in insecure
        or hostname in insecure
    )
    return f"{'http' if plain else 'https'}://{host}"


def fetch_registry_manifest(reference: str) -> bytes:
    """The registry's manifest blob for ``repo@sha256:…``, checked against the digest."""
    host, repository, digest = registry.split_reference(reference)
    auth = (
        (settings.VENDOR_REGISTRY_USERNAME, settings.VENDOR_REGISTRY_PASSWORD)
        if settings.VENDOR_REGISTRY_USERNAME
        else None
    )
    try:
        answer = requests.get(
            f"{_registry_url(host)}/v2/{repository}/manifests/{digest}",
            headers={"Accept": ", ".join(IMAGE_MANIFEST_TYPES)},
            auth=auth,
            timeout=settings.VENDOR_REGISTRY_TIMEOUT,
        )
    except requests.RequestException as e:
        raise CommandError(f"the registry {host} could not be reached: {e}") from None
    if answer.status_code != 200:
        raise CommandError(
            f"the registry {host} answered {answer.status_code} for {reference}; "
            "check that the image is pushed and the registry credentials"
        )
    blob = answer.content
    if "sha256:" + hashlib.sha256(blob).hexdigest() != digest:
        raise CommandError(
            f"the registry returned a manifest for {reference} that does not hash "
            "to its digest; nothing was written"
        )
    try:
        data: Any = json.loads(blob)
        media_type = data.get("mediaType", IMAGE_MANIFEST_TYPES[1])
        data["config"]["digest"]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise CommandError(
            f"{reference} is not a single-platform image manifest (an index?); "
            "publish the platform's own digest"
        ) from None
    if media_type not in IMAGE_MANIFEST_TYPES:
        raise CommandError(f"{reference} is a {media_type}, not an image manifest")
    return blob


class Command(BaseCommand):
    help = "Write the signed offline bundle (ZIP) of a published release."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("version", help="the published release, e.g. 1.4.2")
        parser.add_argument(
            "--output",
            type=Path,
            help="where to write the ZIP (default: ./clms-VERSION.zip)",
        )
        parser.add_argument(
            "--attach",
            action="store_true",
            help="also store it in VENDOR_BUNDLE_DIR so schools and mirrors can "
            "download it from the API (releases/VERSION/bundle)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        version = options["version"]
        release = Release.objects.filter(version=version).first()
        if release is None:
            raise CommandError(f"no release {version} is published; publish it first")
        manifest_bytes = release.manifest_bytes
        manifest = parse_manifest(manifest_bytes)
        output = options["output"] or Path(f"clms-{version}.zip")
        client = docker.DockerClient(base_url=settings.DOCKER_HOST)
        with tempfile.TemporaryDirectory(prefix="bundle-") as tmp:
            files: dict[str, Path] = {}
            images: list[dict[str, str]] = []
            for image in manifest.images:
                base = f"images/{image.digest.removeprefix('sha256:')[:16]}"
                if f"{base}/manifest.json" not in files:
                    self.stdout.write(f"{image.service}: {image.reference}")
                    files.update(self._image_files(client, image.reference, base, tmp))
                images.append(
                    {
                        "service": image.service,
                        "reference": image.reference,
                        "registry_manifest": f"{base}/manifest.json",
                        "archive": f"{base}/image.tar",
                    }
                )
            listed = [
                {"path": name, "sha256": _sha256(path), "size": path.stat().st_size}
                for name, path in sorted(files.items())
            ]
            contents = canonical_json(
                {
                    "format": 1,
                    "kind": "offline-bundle",
                    "product": manifest.product,
                    "version": manifest.version,
                    "manifest_sha256": hashlib.sha256(manifest_bytes).hexdigest(),
                    "images": images,
                    "files": listed,
                }
            )
            try:
                contents_signature = keys.sign(contents)
                public_key = keys.export_public_key()
            except (SignatureError, keys.SigningKeyError) as e:
                raise CommandError(f"the bundle could not be signed: {e}") from None
            partial = output.with_name(output.name + ".part")
            with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as out:
                out.writestr("manifest.json", manifest_bytes)
                out.writestr("manifest.json.asc", release.manifest_signature)
                out.writestr("bundle.json", contents)
                out.writestr("bundle.json.asc", contents_signature)
                out.writestr("vendor-key.asc", public_key)
                for name, path in sorted(files.items()):
                    out.write(path, name)
            partial.replace(output)
        client.close()
        digest, size = _sha256(output), output.stat().st_size
        self.stdout.write(
            self.style.SUCCESS(f"Wrote {output} ({size} bytes, sha256 {digest})")
        )
        if options["attach"]:
            target = Path(settings.VENDOR_BUNDLE_DIR) / version / output.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(output, target)
            release.bundle_file = f"{version}/{output.name}"
            release.bundle_sha256 = digest
            release.bundle_size = size
            release.save(update_fields=["bundle_file", "bundle_sha256", "bundle_size"])
            self.stdout.write(f"Attached to release {version}: {target}")

    def _image_files(
        self, client: docker.DockerClient, reference: str, base: str, tmp: str
    ) -> dict[str, Path]:
        """Pull one image by digest and write its registry manifest and archive."""
        blob = fetch_registry_manifest(reference)
        config_digest = json.loads(blob)["config"]["digest"]
        repository, digest = reference.split("@", 1)
        try:
            client.api.pull(repository, tag=digest)
            pulled = client.images.get(reference)
        except (docker.errors.APIError, requests.RequestException) as e:
            raise CommandError(f"pulling {reference} failed: {e}") from None
        if pulled.id != config_digest:
            raise CommandError(
                f"the engine holds {pulled.id} for {reference}, not the config "
                f"{config_digest} its manifest names; nothing was written"
            )
        folder = Path(tmp) / base
        folder.mkdir(parents=True)
        (folder / "manifest.json").write_bytes(blob)
        archive = folder / "image.tar"
        with archive.open("wb") as out:
            for chunk in pulled.save(chunk_size=CHUNK, named=False):
                out.write(chunk)
        return {
            f"{base}/manifest.json": folder / "manifest.json",
            f"{base}/image.tar": archive,
        }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()

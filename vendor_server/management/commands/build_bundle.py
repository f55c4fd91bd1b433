"""``manage.py build_bundle VERSION``: write the signed offline bundle of a release.

The layout (format 1) is ``clms_updates.manifest.bundle``'s, the module the
agent reads bundles with. Each image is pulled by digest from its registry
(``vendor_server.registry``); its registry manifest must hash to the signed
digest, and the pulled image's id must be the config digest that manifest
names, so the bundle holds exactly what the signed manifest describes.

A source release's bundle also holds its source folder (``--source DIR``,
which must have the tree digest the manifest signs) and every base image it
builds FROM, pulled and checked the same way.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import docker
import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from clms_updates.files import sha256_and_size
from clms_updates.manifest import ReleaseManifest, SignatureError, parse_manifest
from clms_updates.manifest.bundle import (
    BASE_IMAGES_PREFIX,
    SOURCE_PREFIX,
    ContentsBaseImage,
    ContentsImage,
    contents_document,
    image_folder,
    write_bundle,
)
from vendor_server import keys, registry, roots, sources
from vendor_server.models import Release

CHUNK = 1024 * 1024


def docker_engine() -> docker.DockerClient:
    """The engine images are pulled and saved with, or a clear ``CommandError``."""
    try:
        client = docker.DockerClient(base_url=settings.DOCKER_HOST)
        client.ping()
    except (docker.errors.DockerException, requests.RequestException) as e:
        raise CommandError(
            f"build_bundle needs a Docker engine to pull and save the release's "
            f"images, and the one at DOCKER_HOST={settings.DOCKER_HOST} did not answer "
            f"({e}). Start dockerd, or set DOCKER_HOST to its socket (for example "
            "DOCKER_HOST=unix:///var/run/docker.sock), then run it again."
        ) from None
    return client


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
            "--product",
            default="",
            help="the product of the release (default VENDOR_PRODUCT; the agent's "
            "own is VENDOR_AGENT_PRODUCT)",
        )
        parser.add_argument(
            "--source",
            type=Path,
            help="a source release: the source folder it was published with",
        )
        parser.add_argument(
            "--attach",
            action="store_true",
            help="also store it in VENDOR_BUNDLE_DIR so schools and mirrors can "
            "download it from the API (releases/VERSION/bundle)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        version = options["version"]
        release = (
            Release.objects.of(options["product"] or settings.VENDOR_PRODUCT)
            .filter(version=version)
            .first()
        )
        if release is None:
            raise CommandError(f"no release {version} is published; publish it first")
        manifest_bytes = release.manifest_bytes
        manifest = parse_manifest(manifest_bytes)
        output = options["output"] or Path(f"clms-{version}.zip")
        client = docker_engine()
        with tempfile.TemporaryDirectory(prefix="bundle-") as tmp:
            files: dict[str, Path] = {}
            images: list[ContentsImage] = []
            for image in manifest.images:
                base = image_folder(image.digest)
                if f"{base}/manifest.json" not in files:
                    self.stdout.write(f"{image.service}: {image.reference}")
                    files.update(self._image_files(client, image.reference, base, tmp))
                images.append(
                    ContentsImage(
                        service=image.service,
                        reference=image.reference,
                        registry_manifest=f"{base}/manifest.json",
                        archive=f"{base}/image.tar",
                    )
                )
            bases: list[ContentsBaseImage] = []
            if manifest.source is not None:
                files.update(self._source_files(manifest, options["source"]))
                for shipped in manifest.source.base_images:
                    folder = image_folder(
                        shipped.reference.split("@", 1)[1], prefix=BASE_IMAGES_PREFIX
                    )
                    self.stdout.write(f"base image: {shipped.reference}")
                    files.update(
                        self._image_files(client, shipped.reference, folder, tmp)
                    )
                    bases.append(
                        ContentsBaseImage(
                            reference=shipped.reference,
                            registry_manifest=f"{folder}/manifest.json",
                            archive=f"{folder}/image.tar",
                        )
                    )
            contents = contents_document(
                product=manifest.product,
                version=manifest.version,
                manifest_bytes=manifest_bytes,
                images=images,
                files=files,
                base_images=bases,
            )
            try:
                contents_signature = keys.sign(contents)
                public_key = keys.export_public_key()
            except (SignatureError, keys.SigningKeyError) as e:
                raise CommandError(f"the bundle could not be signed: {e}") from None
            write_bundle(
                output,
                manifest_bytes=manifest_bytes,
                manifest_signature=release.manifest_signature,
                contents=contents,
                contents_signature=contents_signature,
                public_key=public_key,
                files=files,
                roots=roots.chain_document(),
            )
        client.close()
        digest, size = sha256_and_size(output)
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

    def _source_files(
        self, manifest: ReleaseManifest, folder: Path | None
    ) -> dict[str, Path]:
        """The source folder's files under ``source/``, if it is the signed tree."""
        assert manifest.source is not None
        if folder is None:
            raise CommandError(
                f"{manifest.version} is a source release: give its source folder "
                "with --source DIR"
            )
        try:
            count = sources.check_folder(folder, manifest.source.sha256)
        except (ValueError, OSError) as e:
            raise CommandError(f"{e}; nothing was written") from None
        self.stdout.write(f"source: {count} file(s) from {folder}")
        return {
            SOURCE_PREFIX + path.relative_to(folder).as_posix(): path
            for path in sorted(folder.rglob("*"))
            if path.is_file()
        }

    def _image_files(
        self, client: docker.DockerClient, reference: str, base: str, tmp: str
    ) -> dict[str, Path]:
        """Pull one image by digest and write its registry manifest and archive."""
        try:
            blob = registry.fetch_manifest(reference)
        except registry.RegistryError as e:
            raise CommandError(f"{e}; nothing was written") from None
        config_digest = registry.config_digest(blob, reference)
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

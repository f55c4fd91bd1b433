"""Load a verified bundle's images into Docker and prove they are the signed ones.

For each service the chain is checked (see ``format``): the registry manifest
file hashes to the digest the signed manifest names; the config digest it
names is the id Docker gives the loaded image. The loaded image is tagged
``<repository>:offline-<version>`` so that image clean-ups keep it; the
pipeline uses it by id (``local_image_for``), never by that tag.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import docker
import requests

from clms_updates.files import sha256_file
from updates.models import AvailableRelease, OfflineBundle
from updates.offline.errors import BundleNotReady, BundleRefused
from updates.offline.verifying import UnpackedBundle
from updates.runtime import docker_client
from updates.runtime.errors import DockerUnavailable

IMAGE_MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
)


def config_digest(registry_manifest: Path, expected_digest: str, service: str) -> str:
    """The config digest named by a registry manifest whose sha256 is ``expected_digest``."""
    actual = "sha256:" + sha256_file(registry_manifest)
    if actual != expected_digest:
        raise BundleRefused(
            f"the registry manifest of {service} hashes to {actual}, not the signed "
            f"{expected_digest}",
            code="image_mismatch",
        )
    try:
        data: Any = json.loads(registry_manifest.read_bytes())
        media_type = data.get("mediaType", IMAGE_MANIFEST_TYPES[1])
        digest = data["config"]["digest"]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise BundleRefused(
            f"the registry manifest of {service} is not an image manifest",
            code="image_mismatch",
        ) from None
    if media_type not in IMAGE_MANIFEST_TYPES or not str(digest).startswith("sha256:"):
        raise BundleRefused(
            f"the registry manifest of {service} is a {media_type}; bundles must name "
            "single-platform image manifests",
            code="image_mismatch",
        )
    return str(digest)


def load_images(
    unpacked: UnpackedBundle, *, client: docker.DockerClient | None = None
) -> dict[str, str]:
    """Load every image of the bundle; return {signed reference: local image id}."""
    by_service = {image.service: image for image in unpacked.contents.images}
    missing = [
        i.service for i in unpacked.manifest.images if i.service not in by_service
    ]
    if missing:
        raise BundleRefused(
            f"the bundle holds no image for {', '.join(missing)}; it cannot install "
            "the release (build_bundle writes one per service)",
            code="incomplete",
        )
    try:
        client = client or docker_client()
    except DockerUnavailable as e:
        raise BundleNotReady(str(e)) from None
    loaded: dict[str, str] = {}
    for signed in unpacked.manifest.images:
        entry = by_service[signed.service]
        expected_id = config_digest(
            unpacked.root / entry.registry_manifest, signed.digest, signed.service
        )
        load_archive(
            client, unpacked.root / entry.archive, expected_id, what=signed.service
        )
        image = client.images.get(expected_id)
        image.tag(signed.repository, tag=f"offline-{unpacked.manifest.version}")
        loaded[signed.reference] = expected_id
    return loaded


# The archive's own descriptions (``docker save``), read before it is loaded.
ARCHIVE_DOCUMENTS = ("manifest.json", "repositories", "index.json")
ARCHIVE_DOCUMENT_LIMIT = 1024 * 1024
NAME_ANNOTATIONS = ("io.containerd.image.name", "org.opencontainers.image.ref.name")


def inspect_archive(archive: Path, expected_id: str, *, what: str) -> None:
    """Refuse an archive that would load or name anything but the signed image.

    ``docker load`` loads every image an archive lists and applies every tag
    in it, so a signed archive that also carried ``postgres:15`` would retag
    the school's database image. Before anything is loaded: exactly one image,
    the signed one (its config digest), with no name at all.
    """

    def refuse(why: str) -> BundleRefused:
        return BundleRefused(
            f"the image archive of {what} {why}; it was not loaded (a bundle's "
            "archive holds exactly the one signed image, unnamed, as build_bundle "
            "writes it)",
            code="archive_contents",
        )

    documents: dict[str, Any] = {}
    try:
        with tarfile.open(archive, mode="r:") as tar:
            for member in tar:
                if member.name.lstrip("./") not in ARCHIVE_DOCUMENTS:
                    continue
                if not member.isfile() or member.size > ARCHIVE_DOCUMENT_LIMIT:
                    raise refuse(f"has an unusable {member.name}")
                handle = tar.extractfile(member)
                assert handle is not None
                documents[member.name.lstrip("./")] = json.loads(handle.read())
    except (tarfile.TarError, ValueError, EOFError) as e:
        raise refuse(f"is not an image archive Docker wrote ({e})") from None
    listed = documents.get("manifest.json")
    if not isinstance(listed, list) or len(listed) != 1:
        count = len(listed) if isinstance(listed, list) else "no"
        raise refuse(f"lists {count} images")
    entry = listed[0] if isinstance(listed[0], dict) else {}
    config = str(entry.get("Config", "")).rsplit("/", 1)[-1].removesuffix(".json")
    if f"sha256:{config}" != expected_id:
        raise refuse(f"holds the image sha256:{config[:64]}, not the signed one")
    if entry.get("RepoTags"):
        raise refuse(f"would tag images as {', '.join(map(str, entry['RepoTags']))}")
    if documents.get("repositories"):
        raise refuse("names repositories")
    index = documents.get("index.json")
    if index is not None:
        manifests = index.get("manifests") if isinstance(index, dict) else None
        if not isinstance(manifests, list) or len(manifests) > 1:
            raise refuse("lists more than one image in its index")
        for item in manifests:
            names = (item.get("annotations") or {}) if isinstance(item, dict) else {}
            if any(key in names for key in NAME_ANNOTATIONS):
                raise refuse("names its image in its index")


def load_archive(
    client: docker.DockerClient, archive: Path, expected_id: str, *, what: str
) -> None:
    """``docker load`` one archive; refused unless it loads the image ``expected_id``.

    Its contents are inspected first (``inspect_archive``): nothing but the
    signed image ever reaches the engine.
    """
    inspect_archive(archive, expected_id, what=what)
    try:
        with archive.open("rb") as f:
            images = client.images.load(f)
    except docker.errors.APIError as e:
        raise BundleRefused(
            f"Docker could not load the image of {what}: {e.explanation or e}",
            code="image_load",
        ) from None
    except requests.RequestException as e:
        raise BundleNotReady(
            f"the Docker engine stopped answering while loading images: {e}"
        ) from None
    ids = {image.id for image in images}
    if expected_id not in ids:
        raise BundleRefused(
            f"the image archive of {what} loaded as "
            f"{', '.join(sorted(ids)) or 'nothing'}, not the signed image "
            f"{expected_id}",
            code="image_mismatch",
        )


def local_image_for(
    reference: str, *, client: docker.DockerClient | None = None
) -> str | None:
    """The id of a verified, loaded offline image for ``repo@sha256:…``, if present.

    The pipeline uses this id instead of pulling ``reference`` when the
    registry is out of reach (an offline release).
    """
    for bundle in OfflineBundle.objects.filter(
        state__in=(OfflineBundle.State.VERIFIED, OfflineBundle.State.APPLIED)
    ):
        image_id = (bundle.images or {}).get(reference)
        if not image_id:
            continue
        try:
            found = (client or docker_client()).images.get(image_id)
        except (docker.errors.ImageNotFound, DockerUnavailable):
            continue
        except docker.errors.APIError:
            continue
        if found.id == image_id:
            return str(image_id)
    return None


def images_available(
    release: AvailableRelease, *, client: docker.DockerClient | None = None
) -> bool:
    """True when every image of ``release`` is loaded locally from a verified bundle."""
    return all(
        local_image_for(image.reference, client=client) is not None
        for image in release.manifest().images
    )

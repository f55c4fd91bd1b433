"""Source releases: keep the verified source, load its base images, build it offline.

When a source bundle is scanned (``prepare_source``), after its signatures,
file list and tree digest were verified: its Dockerfile is checked (every
FROM a shipped base image, no download), each base image is loaded and
proved to be the signed one (as the images of an image bundle are), and the
source tree is kept in ``UPDATES_OFFLINE_WORK_DIR/sources/`` for the build.

The pipeline's fetch step builds it (``build_source``): the kept tree must
still have the signed digest, the Dockerfile is built from a copy whose FROM
lines name the loaded base images, with no network and nothing pulled, and
the image is labelled with the signed source digest. Its own id is recorded,
not compared: the chain of trust is signed source and signed base images ->
a local build. A failing instruction is named by its line.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import docker
import requests
from django.conf import settings

from clms_updates.manifest import ReleaseManifest
from clms_updates.manifest.bundle import tree_digest, tree_entries
from clms_updates.manifest.dockerfile import (
    instruction_at_step,
    offline_problems,
    rewrite,
)
from updates.models import OfflineBundle
from updates.offline.errors import BundleRefused
from updates.offline.loading import config_digest, load_archive
from updates.offline.verifying import UnpackedBundle

SOURCE_LABEL = "org.clms-updates.source.sha256"
BASE_REPOSITORY = "clms-offline-base"
_STEP = re.compile(r"^Step (\d+)/\d+ :")
NO_NETWORK = (
    "A source build has no network and pulls nothing: the release must carry "
    "everything it needs in its source and base images."
)


class BuildFailed(Exception):
    """The source could not be built; says which line and why (nothing was changed)."""


def kept_folder(manifest: ReleaseManifest) -> Path:
    assert manifest.source is not None
    return (
        Path(settings.UPDATES_OFFLINE_WORK_DIR)
        / "sources"
        / f"{manifest.version}-{manifest.source.sha256[:12]}"
    )


def prepare_source(
    unpacked: UnpackedBundle, client: docker.DockerClient
) -> tuple[str, dict[str, str]]:
    """Check, load and keep a verified source bundle: (kept folder, {base: id})."""
    manifest = unpacked.manifest
    source = manifest.source
    assert source is not None
    tree = unpacked.root / "source"
    text = (tree / source.dockerfile).read_text(errors="replace")
    problems = offline_problems(
        text, [b.reference for b in source.base_images], name=source.dockerfile
    )
    if problems:
        raise BundleRefused("; ".join(problems), code="dockerfile")
    entries = {b.reference: b for b in unpacked.contents.base_images}
    loaded: dict[str, str] = {}
    for base in source.base_images:
        entry = entries[base.reference]
        what = f"base image {base.reference}"
        expected = config_digest(
            unpacked.root / entry.registry_manifest,
            base.reference.split("@", 1)[1],
            what,
        )
        if expected != base.config:
            raise BundleRefused(
                f"the {what} names the config {expected}, not the signed {base.config}",
                code="image_mismatch",
            )
        load_archive(client, unpacked.root / entry.archive, expected, what=what)
        loaded[base.reference] = expected
    kept = kept_folder(manifest)
    shutil.rmtree(kept, ignore_errors=True)
    kept.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    shutil.move(str(tree), str(kept))
    return str(kept), loaded


def _bundle_for(manifest: ReleaseManifest) -> OfflineBundle:
    bundle = (
        OfflineBundle.objects.filter(
            version=manifest.version,
            state__in=(OfflineBundle.State.VERIFIED, OfflineBundle.State.APPLIED),
        )
        .exclude(source_dir="")
        .first()
    )
    if bundle is None:
        raise BuildFailed(
            f"No verified bundle holds the source of CLMS {manifest.version}. Put its "
            "bundle in the offline folder and scan again; nothing was changed."
        )
    return bundle


def _base_names(
    manifest: ReleaseManifest, bundle: OfflineBundle, client: docker.DockerClient
) -> dict[str, str]:
    """Each signed base image -> a local name for the loaded image it was proved to be."""
    assert manifest.source is not None
    names = {}
    for base in manifest.source.base_images:
        try:
            image = client.images.get(str((bundle.images or {}).get(base.reference)))
        except docker.errors.ImageNotFound:
            image = None
        if image is None or image.id != base.config:
            raise BuildFailed(
                f"The base image {base.reference} is no longer in the Docker engine as "
                "its bundle loaded it. Scan the bundle again; nothing was changed."
            )
        tag = base.config.removeprefix("sha256:")[:16]
        image.tag(BASE_REPOSITORY, tag=tag)
        names[base.reference] = f"{BASE_REPOSITORY}:{tag}"
    return names


def build_source(
    manifest: ReleaseManifest,
    client: docker.DockerClient,
    *,
    on_line: Callable[[str], None],
) -> str:
    """Build the release's source offline; the built image's id (``BuildFailed``)."""
    source = manifest.source
    assert source is not None
    bundle = _bundle_for(manifest)
    tree = Path(bundle.source_dir)
    try:
        digest = tree_digest(tree_entries(tree))
    except (ValueError, OSError) as e:
        raise BuildFailed(f"The kept source cannot be read: {e}") from None
    if digest != source.sha256:
        raise BuildFailed(
            f"The kept source in {tree} changed after its bundle was verified (tree "
            f"digest {digest}, signed {source.sha256}). Scan the bundle again; "
            "nothing was changed."
        )
    names = _base_names(manifest, bundle, client)
    text = (tree / source.dockerfile).read_text(errors="replace")
    problems = offline_problems(text, list(names), name=source.dockerfile)
    if problems:
        raise BuildFailed("; ".join(problems) + ". Nothing was changed.")
    with tempfile.TemporaryDirectory(prefix="clms-build-") as scratch:
        dockerfile = Path(scratch) / "Dockerfile"
        dockerfile.write_text(rewrite(text, names))
        _run_build(client, tree, dockerfile, manifest, text, on_line)
    image = client.images.get(source.image)
    if image.labels.get(SOURCE_LABEL) != source.sha256:
        raise BuildFailed(
            f"The built image {source.image} does not carry the signed source digest; "
            "nothing was changed."
        )
    return str(image.id)


def _run_build(
    client: docker.DockerClient,
    tree: Path,
    dockerfile: Path,
    manifest: ReleaseManifest,
    text: str,
    on_line: Callable[[str], None],
) -> None:
    source = manifest.source
    assert source is not None
    step = 0
    try:
        events = client.api.build(
            path=str(tree),
            dockerfile=str(dockerfile),
            tag=source.image,
            network_mode="none",
            pull=False,
            rm=True,
            forcerm=True,
            labels={SOURCE_LABEL: source.sha256},
            decode=True,
        )
        for event in events:
            for line in str(event.get("stream") or "").splitlines():
                if not line.strip():
                    continue
                if found := _STEP.match(line):
                    step = int(found.group(1))
                on_line(line.rstrip())
            if "error" in event:
                detail = (event.get("errorDetail") or {}).get("message") or event[
                    "error"
                ]
                raise BuildFailed(_failure(text, step, str(detail), source.dockerfile))
    except docker.errors.APIError as e:
        raise BuildFailed(
            _failure(text, step, str(e.explanation or e), source.dockerfile)
        ) from None
    except requests.RequestException as e:
        raise BuildFailed(
            f"The Docker engine stopped answering during the build: {e}"
        ) from None


def _failure(text: str, step: int, error: str, name: str) -> str:
    instruction = instruction_at_step(text, step) if step else None
    where = (
        f"{name} line {instruction.line} (`{instruction.text[:100]}`)"
        if instruction
        else name
    )
    return f"{where} failed: {error.strip()}. {NO_NETWORK} Nothing was changed."

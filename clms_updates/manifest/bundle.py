"""The offline bundle format (version 1): written by the vendor, read by the agent.

The vendor's ``build_bundle`` command writes bundles with ``contents_document``
and ``write_bundle``; the agent's ``updates.offline`` reads them with
``parse_contents``. A bundle is a ZIP file holding, at its top level::

    manifest.json        the release manifest's canonical bytes (signed format)
    manifest.json.asc    its detached signature by a pinned vendor key
    bundle.json          the bundle's table of contents (canonical JSON)
    bundle.json.asc      its detached signature by a pinned vendor key
    vendor-key.asc       optional: the vendor's public key, imported only so
                         a never-online agent can check signatures (it is
                         trusted only if its fingerprint is pinned)
    images/<digest prefix>/manifest.json   the registry manifest of an image
    images/<digest prefix>/image.tar       the image as ``docker save`` wrote it

    source/...                     a source release: its source tree
    base-images/<digest prefix>/…  and every image it builds FROM (same two files)

(``<digest prefix>`` is the first 16 hex digits of the image's digest, so two
services of one image share one copy.)

A source release's manifest signs the source tree by ``tree_digest``: the
sha256 of the canonical list of its files (path below ``source/``, sha256,
size). The agent computes it from the signed ``bundle.json`` before it
extracts anything, then checks every file as it extracts it; the base images
follow the same chain as the images above.

``bundle.json`` binds everything: the manifest by sha256, every other entry
by path, sha256 and size, and per service the two image files. The chain
from the signed manifest to a loaded image is: the manifest names the image
as ``repo@sha256:D``; the registry manifest's sha256 is ``D``; it names the
config blob ``sha256:C``; Docker's id of the loaded image is ``sha256:C`` (and
Docker itself checks each layer against the config's ``diff_ids``).
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clms_updates.files import sha256_and_size
from clms_updates.manifest.schema import canonical_json, sha256_hex

BUNDLE_FORMAT = 1
BUNDLE_KIND = "offline-bundle"
MANIFEST_NAME = "manifest.json"
MANIFEST_SIGNATURE_NAME = "manifest.json.asc"
CONTENTS_NAME = "bundle.json"
CONTENTS_SIGNATURE_NAME = "bundle.json.asc"
SIGNED_NAMES = (
    MANIFEST_NAME,
    MANIFEST_SIGNATURE_NAME,
    CONTENTS_NAME,
    CONTENTS_SIGNATURE_NAME,
)
KEY_NAME = "vendor-key.asc"
# The vendor's published roots (``roles``), so an offline school follows key
# rotations too: {"roots": [{"root": text, "signature": text}, ...]}.
ROOTS_NAME = "roots.json"
# The signed documents are small; more than this is refused before reading.
MAX_SIGNED_DOCUMENT_BYTES = 1024 * 1024

SOURCE_PREFIX = "source/"
BASE_IMAGES_PREFIX = "base-images/"

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class ContentsError(ValueError):
    """``bundle.json`` is not a valid table of contents."""


@dataclass(frozen=True)
class ContentsFile:
    """One entry of the bundle other than the signed documents."""

    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class ContentsImage:
    """Where one service's image is inside the bundle."""

    service: str
    reference: str
    registry_manifest: str
    archive: str


@dataclass(frozen=True)
class ContentsBaseImage:
    """Where an image a source release builds FROM is inside the bundle."""

    reference: str
    registry_manifest: str
    archive: str


@dataclass(frozen=True)
class BundleContents:
    """The parsed, signed table of contents of a bundle."""

    product: str
    version: str
    manifest_sha256: str
    files: tuple[ContentsFile, ...]
    images: tuple[ContentsImage, ...]
    base_images: tuple[ContentsBaseImage, ...] = ()

    def file(self, path: str) -> ContentsFile:
        return next(f for f in self.files if f.path == path)

    def source_digest(self) -> str:
        """The ``tree_digest`` of the source files the bundle lists (empty: none)."""
        entries = [
            (f.path.removeprefix(SOURCE_PREFIX), f.sha256, f.size)
            for f in self.files
            if f.path.startswith(SOURCE_PREFIX)
        ]
        return tree_digest(entries) if entries else ""


def tree_digest(entries: Iterable[tuple[str, str, int]]) -> str:
    """The digest a manifest signs a source tree by: (path, sha256, size) of each file."""
    listing = sorted([path, digest, size] for path, digest, size in entries)
    return sha256_hex(canonical_json({"files": listing}))


def tree_entries(root: Path) -> list[tuple[str, str, int]]:
    """(path relative to ``root``, sha256, size) of every file below ``root``.

    Only regular files and folders may be in a source tree: a link or a
    device raises ``ValueError`` naming it.
    """
    entries = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            raise ValueError(
                f"{relative} in the source is a link or a special file; a source "
                "release holds only regular files"
            )
        if path.is_file():
            digest, size = sha256_and_size(path)
            entries.append((relative, digest, size))
    return entries


def parse_contents(data: bytes) -> BundleContents:
    """Parse ``bundle.json``; raise ``ContentsError`` saying what is wrong."""
    try:
        raw: Any = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ContentsError(f"bundle.json is not JSON ({e})") from None
    if not isinstance(raw, dict):
        raise ContentsError("bundle.json must be a JSON object")
    if raw.get("format") != BUNDLE_FORMAT or raw.get("kind") != BUNDLE_KIND:
        raise ContentsError(
            f"bundle.json is not an offline bundle of format {BUNDLE_FORMAT}; this "
            "agent may be too old for the bundle"
        )
    for name in ("product", "version", "manifest_sha256"):
        if not isinstance(raw.get(name), str) or not raw[name]:
            raise ContentsError(f"bundle.json: {name} must be a non-empty string")
    if not _SHA256.match(raw["manifest_sha256"]):
        raise ContentsError("bundle.json: manifest_sha256 must be 64 hex characters")
    files: list[ContentsFile] = []
    for i, item in enumerate(raw.get("files") or []):
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("path"), str)
            or not isinstance(item.get("sha256"), str)
            or not _SHA256.match(item["sha256"])
            or not isinstance(item.get("size"), int)
            or isinstance(item.get("size"), bool)
            or item["size"] < 0
        ):
            raise ContentsError(f"bundle.json: files[{i}] needs path, sha256 and size")
        files.append(ContentsFile(item["path"], item["sha256"], item["size"]))
    paths = [f.path for f in files]
    if len(set(paths)) != len(paths):
        raise ContentsError("bundle.json lists a file twice")
    images: list[ContentsImage] = []
    for i, item in enumerate(raw.get("images") or []):
        keys = ("service", "reference", "registry_manifest", "archive")
        if not isinstance(item, dict) or not all(
            isinstance(item.get(k), str) and item[k] for k in keys
        ):
            raise ContentsError(f"bundle.json: images[{i}] needs {', '.join(keys)}")
        for key in ("registry_manifest", "archive"):
            if item[key] not in paths:
                raise ContentsError(
                    f"bundle.json: images[{i}].{key} names {item[key]!r}, which is not "
                    "in its files"
                )
        images.append(ContentsImage(*(item[k] for k in keys)))
    bases: list[ContentsBaseImage] = []
    for i, item in enumerate(raw.get("base_images") or []):
        needed = ("reference", "registry_manifest", "archive")
        if not isinstance(item, dict) or not all(
            isinstance(item.get(k), str) and item[k] for k in needed
        ):
            raise ContentsError(
                f"bundle.json: base_images[{i}] needs {', '.join(needed)}"
            )
        for key in ("registry_manifest", "archive"):
            if item[key] not in paths:
                raise ContentsError(
                    f"bundle.json: base_images[{i}].{key} names {item[key]!r}, which "
                    "is not in its files"
                )
        bases.append(ContentsBaseImage(*(item[k] for k in needed)))
    return BundleContents(
        product=raw["product"],
        version=raw["version"],
        manifest_sha256=raw["manifest_sha256"],
        files=tuple(files),
        images=tuple(images),
        base_images=tuple(bases),
    )


# ---------------------------------------------------------------------------
# Writing (the vendor's build_bundle)
# ---------------------------------------------------------------------------


def image_folder(digest: str, *, prefix: str = "images/") -> str:
    """Where an image's two files go in the bundle: ``images/<16 hex digits>``."""
    return f"{prefix}{digest.removeprefix('sha256:')[:16]}"


def contents_document(
    *,
    product: str,
    version: str,
    manifest_bytes: bytes,
    images: Sequence[ContentsImage],
    files: Mapping[str, Path],
    base_images: Sequence[ContentsBaseImage] = (),
) -> bytes:
    """The canonical bytes of ``bundle.json`` for these files (each hashed here)."""
    listed = []
    for name, path in sorted(files.items()):
        digest, size = sha256_and_size(path)
        listed.append({"path": name, "sha256": digest, "size": size})
    return canonical_json(
        {
            "format": BUNDLE_FORMAT,
            "kind": BUNDLE_KIND,
            "product": product,
            "version": version,
            "manifest_sha256": sha256_hex(manifest_bytes),
            "images": [
                {
                    "service": image.service,
                    "reference": image.reference,
                    "registry_manifest": image.registry_manifest,
                    "archive": image.archive,
                }
                for image in images
            ],
            "base_images": [
                {
                    "reference": base.reference,
                    "registry_manifest": base.registry_manifest,
                    "archive": base.archive,
                }
                for base in base_images
            ],
            "files": listed,
        }
    )


def write_bundle(
    output: Path,
    *,
    manifest_bytes: bytes,
    manifest_signature: str,
    contents: bytes,
    contents_signature: str,
    public_key: str,
    files: Mapping[str, Path],
    roots: bytes = b"",
) -> None:
    """Write the ZIP to ``output`` (a partial file renamed into place when whole)."""
    partial = output.with_name(output.name + ".part")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as out:
        out.writestr(MANIFEST_NAME, manifest_bytes)
        out.writestr(MANIFEST_SIGNATURE_NAME, manifest_signature)
        out.writestr(CONTENTS_NAME, contents)
        out.writestr(CONTENTS_SIGNATURE_NAME, contents_signature)
        out.writestr(KEY_NAME, public_key)
        if roots:
            out.writestr(ROOTS_NAME, roots)
        for name, path in sorted(files.items()):
            out.write(path, name)
    partial.replace(output)

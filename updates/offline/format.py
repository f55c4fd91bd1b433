"""The offline bundle format (version 1), as ``build_bundle`` writes it.

A bundle is a ZIP file holding, at its top level::

    manifest.json        the release manifest's canonical bytes (signed format)
    manifest.json.asc    its detached signature by a pinned vendor key
    bundle.json          the bundle's table of contents (canonical JSON)
    bundle.json.asc      its detached signature by a pinned vendor key
    vendor-key.asc       optional: the vendor's public key, imported only so
                         a never-online agent can check signatures (it is
                         trusted only if its fingerprint is pinned)
    images/<service>/manifest.json   the registry manifest of the image
    images/<service>/image.tar       the image as ``docker save`` wrote it

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
from dataclasses import dataclass
from typing import Any

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
# The signed documents are small; more than this is refused before reading.
MAX_SIGNED_DOCUMENT_BYTES = 1024 * 1024

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
class BundleContents:
    """The parsed, signed table of contents of a bundle."""

    product: str
    version: str
    manifest_sha256: str
    files: tuple[ContentsFile, ...]
    images: tuple[ContentsImage, ...]

    def file(self, path: str) -> ContentsFile:
        return next(f for f in self.files if f.path == path)


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
    return BundleContents(
        product=raw["product"],
        version=raw["version"],
        manifest_sha256=raw["manifest_sha256"],
        files=tuple(files),
        images=tuple(images),
    )

"""Verify an offline bundle, then unpack it: signatures first, nothing written before.

``unpack_bundle`` runs these steps in order and stops at the first refusal:

1. open the ZIP's central directory (a truncated file is refused);
2. check every entry: count, names (``..``, absolute), links, duplicates,
   total size, compression ratio;
3. read ``bundle.json`` and ``manifest.json`` with their signatures into
   memory and verify both against the pinned vendor keys;
4. check the manifest: its sha256 is the one ``bundle.json`` names, same
   version and product, the school's channel, above the installed version,
   reachable from it (``min_version``), inside the offline expiry rule;
5. check that the ZIP holds exactly the files ``bundle.json`` lists, and for
   a source release that their tree digest is the signed one and every base
   image it builds FROM is there;
6. only then stream each file into a fresh work folder, checking its size
   and sha256 against the signed list.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings

from clms_updates.manifest import (
    ExpiredError,
    ManifestError,
    ReleaseManifest,
    check_offline_manifest_fresh,
    parse_manifest,
    parse_version,
    sha256_hex,
)
from clms_updates.manifest.bundle import (
    CONTENTS_NAME,
    CONTENTS_SIGNATURE_NAME,
    KEY_NAME,
    MANIFEST_NAME,
    MANIFEST_SIGNATURE_NAME,
    MAX_SIGNED_DOCUMENT_BYTES,
    ROOTS_NAME,
    SIGNED_NAMES,
    SOURCE_PREFIX,
    BundleContents,
    ContentsError,
    parse_contents,
)
from updates.models import AgentState
from updates.offline import extraction
from updates.offline.errors import BundleRefused
from updates.releases import channels_for
from updates.sources import SignedDocument, Source, SourceRefused
from updates.trust import (
    INDEX,
    RELEASE,
    CheckRefused,
    ensure_vendor_keys,
    follow_roots,
    verify,
)


@dataclass(frozen=True)
class UnpackedBundle:
    """A verified bundle unpacked into ``root`` (the caller removes ``root``)."""

    manifest: ReleaseManifest
    manifest_bytes: bytes
    manifest_signature: str
    signer: str
    contents: BundleContents
    root: Path


class _BundleKeys(Source):
    """The bundle's optional ``vendor-key.asc`` and ``roots.json`` as a trust source."""

    name = "offline bundle"

    def __init__(self, archive: zipfile.ZipFile) -> None:
        self.archive = archive

    def fetch_index(self) -> SignedDocument:  # pragma: no cover - never called
        raise SourceRefused("a bundle has no index")

    def fetch_manifest(self, version: str) -> SignedDocument:  # pragma: no cover
        raise SourceRefused("a bundle's manifest is read directly")

    def fetch_keys(self) -> str:
        try:
            self.archive.getinfo(KEY_NAME)
        except KeyError:
            raise SourceRefused(
                "the vendor key is not in this agent's keyring and the bundle does "
                f"not carry {KEY_NAME}; set UPDATES_VENDOR_PUBLIC_KEY_FILE"
            ) from None
        data = extraction.read_small(self.archive, KEY_NAME, MAX_SIGNED_DOCUMENT_BYTES)
        return data.decode("ascii", "replace")

    def fetch_roots(self, after: int) -> list[SignedDocument]:
        try:
            self.archive.getinfo(ROOTS_NAME)
        except KeyError:
            return []
        data = extraction.read_small(
            self.archive, ROOTS_NAME, MAX_SIGNED_DOCUMENT_BYTES
        )
        try:
            items = json.loads(data.decode("utf-8"))["roots"]
            return [
                SignedDocument(item["root"].encode("utf-8"), str(item["signature"]))
                for item in items
            ]
        except (ValueError, KeyError, TypeError, AttributeError):
            raise SourceRefused(
                f"the bundle's {ROOTS_NAME} is malformed: expected "
                '{"roots": [{"root": …, "signature": …}]}'
            ) from None


def _ensure_keys(archive: zipfile.ZipFile) -> None:
    source = _BundleKeys(archive)
    try:
        ensure_vendor_keys(source)
    except (CheckRefused, SourceRefused) as e:
        raise BundleRefused(str(e), code="no_vendor_key") from None
    try:
        follow_roots(source)
    except (CheckRefused, SourceRefused) as e:
        raise BundleRefused(str(e), code="bad_root") from None


def limits_from_settings() -> extraction.Limits:
    return extraction.Limits(
        max_entries=settings.UPDATES_BUNDLE_MAX_ENTRIES,
        max_total_bytes=settings.UPDATES_BUNDLE_MAX_MB * 1024 * 1024,
        max_ratio=settings.UPDATES_BUNDLE_MAX_RATIO,
    )


def _verify_signed(data: bytes, signature: bytes, what: str, *, role: str) -> str:
    try:
        return verify(data, signature.decode("ascii", "replace"), what, role=role)
    except CheckRefused as e:
        text = str(e)
        code = "wrong_key" if "not a pinned" in text else "bad_signature"
        if "missing" in text:
            code = "unsigned"
        if "needs valid signatures" in text:
            code = "too_few_signatures"
        raise BundleRefused(text, code=code) from None


def check_release_rules(manifest: ReleaseManifest, *, now: datetime) -> None:
    """Step 4's version rules: channel, newer than installed, reachable, not expired."""
    installed_text = AgentState.load().installed_version
    installed = parse_version(installed_text, field_name="installed version")
    if manifest.product != settings.UPDATES_PRODUCT:
        raise BundleRefused(
            f"the bundle is a release of {manifest.product!r}, not of "
            f"{settings.UPDATES_PRODUCT!r} (UPDATES_PRODUCT), which this agent "
            "installs; documents of another product are never installed",
            code="product",
        )
    if manifest.channel not in channels_for(settings.UPDATES_CHANNEL):
        raise BundleRefused(
            f"the bundle is for the {manifest.channel} channel; this installation "
            f"follows {settings.UPDATES_CHANNEL} (UPDATES_CHANNEL)",
            code="channel",
        )
    if manifest.semver < installed:
        raise BundleRefused(
            f"the bundle holds CLMS {manifest.version}, lower than the installed "
            f"{installed_text}; the agent never moves to a lower version through an "
            "update (use an audited rollback instead)",
            code="lower_version",
        )
    if manifest.semver == installed:
        raise BundleRefused(
            f"the bundle holds CLMS {manifest.version}, which is already installed",
            code="already_installed",
        )
    if manifest.min_version and installed < parse_version(manifest.min_version):
        raise BundleRefused(
            f"CLMS {manifest.version} needs at least {manifest.min_version} installed "
            f"(this is {installed_text}); apply the bundle of an intermediate "
            "release first",
            code="min_version",
        )
    try:
        check_offline_manifest_fresh(
            manifest,
            now=now,
            grace=timedelta(days=settings.UPDATES_OFFLINE_GRACE_DAYS),
        )
    except ExpiredError as e:
        raise BundleRefused(str(e), code="expired") from None


def _check_source(
    manifest: ReleaseManifest, contents: BundleContents, listed: Mapping[str, object]
) -> None:
    """A source release's bundle holds exactly the signed tree and every base image."""
    source = manifest.source
    if source is None:
        if contents.source_digest() or contents.base_images:
            raise BundleRefused(
                "the bundle carries source or base images, but its signed manifest "
                "is not a source release",
                code="mismatch",
            )
        return
    if contents.source_digest() != source.sha256:
        raise BundleRefused(
            "the source in the bundle is not the source tree the release signed "
            f"(tree digest {contents.source_digest() or 'none'}, signed "
            f"{source.sha256}): it was changed after signing",
            code="tampered",
        )
    if SOURCE_PREFIX + source.dockerfile not in listed:
        raise BundleRefused(
            f"the source has no {source.dockerfile}, which the release builds from",
            code="incomplete",
        )
    shipped = {b.reference for b in contents.base_images}
    missing = sorted({b.reference for b in source.base_images} - shipped)
    if missing:
        raise BundleRefused(
            f"the bundle lacks the base image(s) {', '.join(missing)} the release "
            "builds FROM; a source build has no registry to fetch them from",
            code="incomplete",
        )
    extra = sorted(shipped - {b.reference for b in source.base_images})
    if extra:
        raise BundleRefused(
            f"the bundle carries base image(s) {', '.join(extra)} the release does not "
            "name",
            code="mismatch",
        )


def unpack_bundle(path: Path, *, now: datetime, work_dir: Path) -> UnpackedBundle:
    """Steps 1-6 of the module docstring; raise ``BundleRefused`` saying why."""
    with extraction.open_bundle(path) as archive:
        files = extraction.check_entries(archive, limits_from_settings())
        _ensure_keys(archive)
        read = {
            name: extraction.read_small(archive, name, MAX_SIGNED_DOCUMENT_BYTES)
            for name in SIGNED_NAMES
        }
        _verify_signed(
            read[CONTENTS_NAME],
            read[CONTENTS_SIGNATURE_NAME],
            "bundle contents",
            role=INDEX,
        )
        signer = _verify_signed(
            read[MANIFEST_NAME],
            read[MANIFEST_SIGNATURE_NAME],
            "bundle manifest",
            role=RELEASE,
        )
        try:
            contents = parse_contents(read[CONTENTS_NAME])
            manifest = parse_manifest(read[MANIFEST_NAME])
        except (ContentsError, ManifestError) as e:
            raise BundleRefused(
                f"the signed documents are malformed: {e}", code="malformed"
            ) from None
        if sha256_hex(read[MANIFEST_NAME]) != contents.manifest_sha256:
            raise BundleRefused(
                "bundle.json names another manifest than the one in the bundle: "
                "parts of two bundles were mixed",
                code="mismatch",
            )
        if (contents.version, contents.product) != (manifest.version, manifest.product):
            raise BundleRefused(
                f"bundle.json is for {contents.product} {contents.version} but the "
                f"manifest for {manifest.product} {manifest.version}",
                code="mismatch",
            )
        try:
            check_release_rules(manifest, now=now)
            listed = {f.path: f for f in contents.files}
            present = {info.filename: info for info in files}
            unlisted = sorted(
                set(present) - set(listed) - {*SIGNED_NAMES, KEY_NAME, ROOTS_NAME}
            )
            missing = sorted(set(listed) - set(present) - set(SIGNED_NAMES))
            if unlisted or missing:
                raise BundleRefused(
                    "the bundle does not hold exactly the signed list of files"
                    + (f"; not listed: {', '.join(unlisted[:5])}" if unlisted else "")
                    + (f"; missing: {', '.join(missing[:5])}" if missing else "")
                    + " (a file was added or removed after signing)",
                    code="tampered",
                )
            _check_source(manifest, contents, listed)
            for image in contents.images:
                signed = {i.service: i.reference for i in manifest.images}
                if signed.get(image.service) != image.reference:
                    raise BundleRefused(
                        f"bundle.json's image for {image.service} ({image.reference}) is "
                        "not the one the signed manifest names",
                        code="mismatch",
                    )
        except BundleRefused as e:
            e.version = manifest.version
            raise
        work_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        root = Path(tempfile.mkdtemp(prefix="bundle-", dir=work_dir))
        try:
            for name, entry in listed.items():
                if name in SIGNED_NAMES:
                    continue
                extraction.extract_file(
                    archive,
                    present[name],
                    root,
                    sha256=entry.sha256,
                    size=entry.size,
                )
        except BaseException as e:
            shutil.rmtree(root, ignore_errors=True)
            if isinstance(e, BundleRefused):
                e.version = manifest.version
            raise
    return UnpackedBundle(
        manifest=manifest,
        manifest_bytes=read[MANIFEST_NAME],
        manifest_signature=read[MANIFEST_SIGNATURE_NAME].decode("ascii", "replace"),
        signer=signer,
        contents=contents,
        root=root,
    )

"""Serving as a LAN mirror: what this agent holds, and a bounded, checksummed cache.

A mirror serves other agents the same signed documents it trusts itself:

- the index: the last copy fetched from upstream (the next source after the
  mirror in ``UPDATES_SOURCES``, normally the vendor), refreshed when older
  than ``UPDATES_MIRROR_INDEX_MAX_AGE_SECONDS``; if upstream is unreachable,
  the cached copy is served (clients still refuse it once it expires);
- manifests: from the releases this agent verified, else fetched upstream;
- bundles: the verified bundles in the offline folder, or downloads cached in
  ``UPDATES_CACHE_DIR`` with their sha256 checked against the signed manifest.

Everything is verified against the pinned keys before it is cached, so a
mirror never spreads what it would not install. The cache is bounded by
``UPDATES_CACHE_MAX_MB``: the least recently used files go first.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import requests
import urllib3
from django.conf import settings

from clms_updates import deadlines
from clms_updates.manifest import (
    ManifestError,
    parse_index,
    parse_manifest,
    sha256_hex,
)
from clms_updates.manifest.signing import gpg_for
from updates.models import AvailableRelease, OfflineBundle, TrustedRoot
from updates.sources import (
    SignedDocument,
    Source,
    SourceError,
    SourceRefused,
    configured_sources,
)
from updates.sources.vendor import check_url_allowed
from updates.trust import (
    INDEX,
    RELEASE,
    CheckRefused,
    ensure_vendor_keys,
    follow_roots,
    pinned_fingerprints,
    verify,
)

logger = logging.getLogger(__name__)


class MirrorUnavailable(Exception):
    """The mirror holds nothing for this request and upstream cannot supply it."""


@dataclass(frozen=True)
class CachedFile:
    """A cached download and its checksum."""

    path: Path
    sha256: str
    size: int


def cache_dir() -> Path:
    folder = Path(settings.UPDATES_CACHE_DIR)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder


def _upstream_sources() -> list[Source]:
    """The configured sources other than the mirror itself (and the offline folder)."""
    return [s for s in configured_sources() if s.name not in ("mirror", "offline")]


def _write_document(stem: str, document: SignedDocument) -> None:
    folder = cache_dir() / "metadata"
    folder.mkdir(exist_ok=True)
    record = {
        "data": document.data.decode("utf-8"),
        "signature": document.signature,
        "sha256": sha256_hex(document.data),
        "fetched_at": time.time(),
    }
    tmp = folder / f".{stem}.tmp"
    tmp.write_text(json.dumps(record))
    os.replace(tmp, folder / f"{stem}.json")


def _read_document(stem: str) -> tuple[SignedDocument, float] | None:
    path = cache_dir() / "metadata" / f"{stem}.json"
    try:
        record = json.loads(path.read_text())
        data = record["data"].encode("utf-8")
    except (OSError, ValueError, KeyError, AttributeError):
        return None
    if sha256_hex(data) != record.get("sha256"):
        logger.warning("Mirror cache entry %s fails its checksum; dropped", stem)
        path.unlink(missing_ok=True)
        return None
    return SignedDocument(data, record["signature"]), float(record["fetched_at"])


def mirrored_index() -> SignedDocument:
    """The signed index to serve: fresh from upstream, else the cached copy."""
    cached = _read_document("index")
    max_age = settings.UPDATES_MIRROR_INDEX_MAX_AGE_SECONDS
    if cached is not None and time.time() - cached[1] < max_age:
        return cached[0]
    problems: list[str] = []
    for source in _upstream_sources():
        try:
            ensure_vendor_keys(source)
            follow_roots(source)
            document = source.fetch_index()
            verify(document.data, document.signature, "index", role=INDEX)
            # Clients check replay, expiry and equivocation; a mirror spreads
            # nothing of another product.
            if parse_index(document.data).product != settings.UPDATES_PRODUCT:
                raise CheckRefused(
                    "upstream's index is for another product than UPDATES_PRODUCT"
                )
        except (SourceError, CheckRefused, ManifestError) as e:
            problems.append(f"{source.name}: {e}")
            continue
        _write_document("index", document)
        return document
    if cached is not None:
        return cached[0]
    raise MirrorUnavailable(
        "this mirror holds no index yet and its upstream could not supply one ("
        + ("; ".join(problems) or "no upstream source is configured")
        + ")"
    )


def mirrored_manifest(version: str) -> SignedDocument:
    """The signed manifest of ``version``: a verified release here, else upstream."""
    release = AvailableRelease.objects.filter(version=version).first()
    if release is not None:
        return SignedDocument(release.manifest_bytes, release.signature)
    stem = f"manifest-{version}"
    cached = _read_document(stem)
    if cached is not None:
        return cached[0]
    for source in _upstream_sources():
        try:
            document = source.fetch_manifest(version)
            verify(
                document.data,
                document.signature,
                f"manifest {version}",
                role=RELEASE,
            )
            if parse_manifest(document.data).version != version:
                continue
        except (SourceError, CheckRefused, ManifestError):
            continue
        _write_document(stem, document)
        return document
    raise MirrorUnavailable(f"this mirror holds no manifest for CLMS {version}")


def mirrored_roots(after: int) -> list[tuple[int, str, str]]:
    """The roots this agent trusts after version ``after``, upstream followed first.

    Refreshing the index follows upstream's roots, so a client that asks for
    roots and then the index gets a chain the index verifies against.
    """
    # Without upstream, serve what is held; the client checks every root anyway.
    with contextlib.suppress(MirrorUnavailable):
        mirrored_index()
    return list(
        TrustedRoot.objects.filter(version__gt=after)
        .order_by("version")
        .values_list("version", "root_json", "signature")
    )


def mirrored_keys() -> str:
    """The pinned vendor public key(s), imported from upstream first if missing here."""
    home = settings.UPDATES_GNUPG_HOME
    armored = str(gpg_for(home).export_keys(pinned_fingerprints()) or "")
    if armored:
        return armored
    for source in _upstream_sources():
        try:
            ensure_vendor_keys(source)
        except (SourceError, CheckRefused):
            continue
        armored = str(gpg_for(home).export_keys(pinned_fingerprints()) or "")
        if armored:
            return armored
    raise MirrorUnavailable("this mirror holds no pinned vendor key yet")


def mirrored_bundle(version: str) -> CachedFile:
    """A bundle of ``version`` to serve: a verified offline bundle, else the cache.

    A cached download is fetched from upstream once (``fetch_bundle_upstream``)
    and checked against the bundle sha256 and size in the signed manifest.
    """
    for bundle in OfflineBundle.objects.filter(
        version=version,
        state__in=(OfflineBundle.State.VERIFIED, OfflineBundle.State.APPLIED),
    ):
        path = Path(bundle.path)
        if path.is_file() and path.stat().st_size == bundle.size:
            return CachedFile(path, bundle.sha256, bundle.size)
    path = cache_dir() / "bundles" / f"clms-{version}.zip"
    manifest = parse_manifest(mirrored_manifest(version).data)
    if manifest.bundle is None:
        raise MirrorUnavailable(f"CLMS {version} has no offline bundle")
    if path.is_file() and path.stat().st_size == manifest.bundle.size:
        os.utime(path)  # most recently used
        return CachedFile(path, manifest.bundle.sha256, manifest.bundle.size)
    fetch_bundle_upstream(version, manifest.bundle.sha256, manifest.bundle.size, path)
    return CachedFile(path, manifest.bundle.sha256, manifest.bundle.size)


def fetch_bundle_upstream(version: str, sha256: str, size: int, target: Path) -> None:
    """Download the bundle from the vendor into the cache, checking size and sha256."""
    if size > settings.UPDATES_CACHE_MAX_MB * 1024 * 1024:
        raise MirrorUnavailable(
            f"the bundle of {version} ({size} bytes) is larger than the whole cache "
            "(UPDATES_CACHE_MAX_MB)"
        )
    url = (
        f"{settings.UPDATES_VENDOR_URL.rstrip('/')}/vendor/api/v1/releases/"
        f"{version}/bundle"
    )
    check_url_allowed(url)
    target.parent.mkdir(parents=True, exist_ok=True)
    prune_cache(reserve=size)
    partial = target.with_suffix(".part")
    written, digest = _download(
        url,
        partial,
        token=settings.UPDATES_VENDOR_API_KEY,
        limit=size,
        who="the vendor",
        too_large=f"the vendor sent more than the signed {size} bytes for the "
        f"bundle of {version}; refused",
        version=version,
    )
    if written != size or digest != sha256:
        partial.unlink(missing_ok=True)
        raise MirrorUnavailable(
            f"the downloaded bundle of {version} does not match the signed checksum; "
            "it was discarded"
        )
    os.replace(partial, target)


def cache_usage() -> int:
    """Bytes held in the cache."""
    return sum(p.stat().st_size for p in cache_dir().rglob("*") if p.is_file())


def prune_cache(*, reserve: int = 0) -> list[Path]:
    """Delete the least recently used bundles until the cache (plus ``reserve``) fits.

    Metadata files are tiny and kept; only bundles are evicted.
    """
    limit = settings.UPDATES_CACHE_MAX_MB * 1024 * 1024
    bundles = sorted(
        (p for p in (cache_dir() / "bundles").glob("*.zip") if p.is_file()),
        key=lambda p: p.stat().st_mtime,
    )
    used = cache_usage()
    removed: list[Path] = []
    for path in bundles:
        if used + reserve <= limit:
            break
        size = path.stat().st_size
        path.unlink(missing_ok=True)
        used -= size
        removed.append(path)
        logger.info("Mirror cache: evicted %s (%s bytes)", path.name, size)
    return removed


def download_bundle(version: str) -> Path:
    """Fetch the bundle of ``version`` from the configured mirror into the offline folder.

    For an agent whose registry is out of reach: the bundle then goes through
    the same checks as one from a USB stick (the next scan picks it up). The
    download is capped at ``UPDATES_BUNDLE_MAX_MB`` and, when this agent knows
    the release's signed manifest, checked against its bundle sha256 and size.
    """
    if not settings.UPDATES_MIRROR_URL:
        raise MirrorUnavailable("no mirror is configured (UPDATES_MIRROR_URL)")
    url = (
        f"{settings.UPDATES_MIRROR_URL.rstrip('/')}/api/updates/mirror/vendor/api/v1/"
        f"releases/{version}/bundle"
    )
    check_url_allowed(url)
    expected = None
    release = AvailableRelease.objects.filter(version=version).first()
    if release is not None:
        expected = release.manifest().bundle
    folder = Path(settings.UPDATES_OFFLINE_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"clms-{version}.zip"
    partial = folder / f".clms-{version}.zip.part"
    limit = settings.UPDATES_BUNDLE_MAX_MB * 1024 * 1024
    written, digest = _download(
        url,
        partial,
        token=settings.UPDATES_MIRROR_TOKEN,
        limit=limit,
        who="the mirror",
        too_large=f"the bundle of {version} is larger than UPDATES_BUNDLE_MAX_MB; "
        "the download was stopped",
        version=version,
    )
    if expected is not None and (written != expected.size or digest != expected.sha256):
        partial.unlink(missing_ok=True)
        raise MirrorUnavailable(
            f"the bundle of {version} from the mirror does not match the signed "
            "checksum; it was discarded"
        )
    os.replace(partial, target)
    return target


REDIRECTS = (301, 302, 303, 307, 308)


def _get_following_one_redirect(
    fetcher: requests.Session, url: str, token: str, budget: float, who: str
) -> requests.Response:
    """GET ``url`` with the token; follow one redirect (a vendor serving bundles
    from object storage by presigned URL) only to an allowed URL, without the token.

    Every byte is checked against the signed size and sha256 afterwards, so the
    storage behind the redirect is trusted with nothing.
    """
    response = fetcher.get(
        url,
        headers={"Authorization": f"Bearer {token}"},
        stream=True,
        timeout=budget,
        allow_redirects=False,
    )
    if response.status_code not in REDIRECTS:
        return response
    location = urljoin(url, response.headers.get("Location", ""))
    response.close()
    try:
        check_url_allowed(location)
    except SourceRefused as e:
        raise MirrorUnavailable(
            f"{who} redirected the download elsewhere: {e}"
        ) from None
    return fetcher.get(location, stream=True, timeout=budget, allow_redirects=False)


def _download(
    url: str,
    partial: Path,
    *,
    token: str,
    limit: int,
    who: str,
    too_large: str,
    version: str,
) -> tuple[int, str]:
    """Stream ``url`` into ``partial``, hashing it; stop past ``limit`` bytes.

    Returns (bytes written, sha256 hex). On any failure the partial file is
    removed and ``MirrorUnavailable`` says what went wrong.
    """
    digest = hashlib.sha256()
    written = 0
    budget = settings.UPDATES_SOURCE_TIMEOUT_SECONDS
    min_rate = settings.UPDATES_DOWNLOAD_MIN_KIB_PER_SECOND * 1024
    fetcher = deadlines.session()
    try:
        with (
            deadlines.watch(budget, min_rate=min_rate) as deadline,
            _get_following_one_redirect(fetcher, url, token, budget, who) as response,
        ):
            if response.status_code != 200:
                raise MirrorUnavailable(
                    f"{who} answered {response.status_code} for the bundle of {version}"
                )
            with partial.open("wb") as out:
                while chunk := response.raw.read1(1024 * 1024):
                    written += len(chunk)
                    deadline.received(len(chunk))
                    if written > limit:
                        raise MirrorUnavailable(too_large)
                    digest.update(chunk)
                    out.write(chunk)
            if deadline.why:
                raise MirrorUnavailable(
                    f"the bundle of {version} from {who} was cut off: {deadline.why}"
                )
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as e:
        partial.unlink(missing_ok=True)
        if deadline.why:
            raise MirrorUnavailable(
                f"the bundle of {version} from {who} was cut off: {deadline.why}; "
                "try again when the connection is better"
            ) from None
        raise MirrorUnavailable(f"{who} could not be reached: {e}") from None
    except MirrorUnavailable:
        partial.unlink(missing_ok=True)
        raise
    finally:
        fetcher.close()
    return written, digest.hexdigest()

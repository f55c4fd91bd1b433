"""Watch the offline folder: each new bundle is verified, loaded and offered, or quarantined.

``scan_offline_folder`` runs from beat (``UPDATES_OFFLINE_SCAN_MINUTES``) and
on every update check that reaches the offline source. A bundle is processed
once per content (by sha256): verified and unpacked (``verifying``), its
images loaded and matched (``loading``), and its release stored as an
``AvailableRelease`` with source ``offline``, so the same pipeline as an
online update installs it. A refused bundle moves to
``UPDATES_QUARANTINE_DIR`` beside a ``.reason.txt`` file; a transient problem
(Docker down) leaves it in place to be retried.
"""

from __future__ import annotations

import logging
import os
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from clms_updates import audit
from clms_updates.files import sha256_file
from clms_updates.manifest import parse_version
from updates.models import AgentState, AvailableRelease, OfflineBundle
from updates.offline.building import prepare_source
from updates.offline.errors import BundleNotReady, BundleRefused
from updates.offline.loading import load_images
from updates.offline.verifying import UnpackedBundle, unpack_bundle
from updates.releases import notify_admins_once
from updates.runtime import docker_client
from updates.runtime.errors import DockerUnavailable

logger = logging.getLogger(__name__)

BUNDLE_SUFFIX = ".zip"
# A scan that claimed a bundle this long ago and never finished (its worker
# died) gives the bundle back to the next scan.
STALE_CLAIM = timedelta(hours=1)


def bundle_files(folder: Path | None = None) -> list[Path]:
    """Regular ``*.zip`` files at the top of the offline folder (links are ignored)."""
    folder = Path(folder or settings.UPDATES_OFFLINE_DIR)
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if p.suffix.lower() == BUNDLE_SUFFIX and p.is_file() and not p.is_symlink()
    )


def quarantine(path: Path, reason: str, *, now: datetime) -> Path:
    """Move a refused bundle to the quarantine folder with a file stating why."""
    folder = Path(settings.UPDATES_QUARANTINE_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{now:%Y%m%dT%H%M%S}-{path.name}"
    shutil.move(str(path), target)
    target.with_name(target.name + ".reason.txt").write_text(
        f"{path.name} was refused at {now:%Y-%m-%d %H:%M:%S} UTC and nothing from it "
        f"was applied.\n\nReason: {reason}\n\nWhat to do: ask the vendor for a new "
        "bundle (or copy it again if the copy was incomplete); delete this folder's "
        "files when no longer needed.\n"
    )
    return target


def refresh_applied() -> int:
    """Mark verified bundles whose version is installed (or passed) as applied.

    The kept source of a source bundle goes once a later version is installed
    (a rollback runs the images it built, which stay in the engine).
    """
    installed = parse_version(AgentState.load().installed_version)
    count = 0
    for bundle in OfflineBundle.objects.filter(state=OfflineBundle.State.VERIFIED):
        if bundle.version and parse_version(bundle.version) <= installed:
            count += OfflineBundle.objects.filter(
                pk=bundle.pk, state=OfflineBundle.State.VERIFIED
            ).update(state=OfflineBundle.State.APPLIED)
    for bundle in OfflineBundle.objects.exclude(source_dir="").filter(
        state=OfflineBundle.State.APPLIED
    ):
        if bundle.version and parse_version(bundle.version) < installed:
            shutil.rmtree(bundle.source_dir, ignore_errors=True)
            OfflineBundle.objects.filter(pk=bundle.pk).update(source_dir="")
    return count


def _clear_stale_work(now: datetime) -> None:
    """Remove unpack folders a killed scan left behind (older than ``STALE_CLAIM``)."""
    work = Path(settings.UPDATES_OFFLINE_WORK_DIR)
    if not work.is_dir():
        return
    for folder in work.glob("bundle-*"):
        try:
            if now.timestamp() - folder.stat().st_mtime > STALE_CLAIM.total_seconds():
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            continue


def _settled(path: Path, now: datetime, settle_seconds: int) -> bool:
    """False while the file may still be being copied (changed very recently)."""
    return now.timestamp() - path.stat().st_mtime >= settle_seconds


def _known(path: Path, size: int) -> bool:
    """A bundle already verified or applied from this very file: no need to hash it again."""
    return (
        OfflineBundle.objects.filter(file_name=path.name, size=size, path=str(path))
        .exclude(state=OfflineBundle.State.FOUND)
        .exists()
    )


def scan_offline_folder(
    *, now: datetime | None = None, settle: bool = True, create: bool = False
) -> list[OfflineBundle]:
    """Process every new bundle in the offline folder; return the rows touched.

    With ``settle`` (periodic and check-time scans), a file changed in the last
    ``UPDATES_OFFLINE_SETTLE_SECONDS`` is left for the next scan: it may still
    be being copied from the USB stick. An admin's "scan now" and a finished
    download do not wait. A file
    already processed is recognised by name, size and place without hashing
    it again; a claim older than ``STALE_CLAIM`` (a worker died mid-way) is
    released so the bundle is tried again.
    """
    now = now or timezone.now()
    if create:
        # An admin's "scan now" makes the folder, so a USB stick's files can be
        # copied there without anyone typing mkdir.
        Path(settings.UPDATES_OFFLINE_DIR).mkdir(parents=True, exist_ok=True)
    refresh_applied()
    _clear_stale_work(now)
    OfflineBundle.objects.filter(
        state=OfflineBundle.State.FOUND, processed_at__lt=now - STALE_CLAIM
    ).update(processed_at=None)
    touched: list[OfflineBundle] = []
    limit = settings.UPDATES_BUNDLE_MAX_MB * 1024 * 1024
    for path in bundle_files():
        try:
            size = path.stat().st_size
            settle_seconds = settings.UPDATES_OFFLINE_SETTLE_SECONDS if settle else 0
            if not _settled(path, now, settle_seconds) or _known(path, size):
                continue
            if size > limit:
                # Bounded work before the signature: a huge (or sparse) file is
                # refused by its size, never read.
                touched.append(_refuse_unread(path, size, limit, now=now))
                continue
            digest = sha256_file(path)
        except OSError as e:
            logger.warning("Offline bundle %s cannot be read: %s", path, e)
            continue
        bundle, created = OfflineBundle.objects.get_or_create(
            sha256=digest,
            file_name=path.name,
            defaults={"size": size, "path": str(path), "found_at": now},
        )
        if not created and bundle.state != OfflineBundle.State.FOUND:
            continue
        touched.append(process_bundle(bundle, path, now=now))
    return touched


def process_bundle(
    bundle: OfflineBundle, path: Path, *, now: datetime | None = None
) -> OfflineBundle:
    """Verify, unpack, load and offer one bundle; quarantine it if refused."""
    now = now or timezone.now()
    # One scanner at a time per bundle: claim the row while it is "found".
    claimed = OfflineBundle.objects.filter(
        pk=bundle.pk, state=OfflineBundle.State.FOUND, processed_at__isnull=True
    ).update(processed_at=now)
    if not claimed:
        bundle.refresh_from_db()
        return bundle
    unpacked: UnpackedBundle | None = None
    try:
        unpacked = unpack_bundle(
            path, now=now, work_dir=Path(settings.UPDATES_OFFLINE_WORK_DIR)
        )
        images = load_images(unpacked)
        if unpacked.manifest.source is not None:
            try:
                client = docker_client()
            except DockerUnavailable as e:
                raise BundleNotReady(str(e)) from None
            bundle.source_dir, bases = prepare_source(unpacked, client)
            images.update(bases)
        release = _offer_release(unpacked, now=now)
        bundle.state = OfflineBundle.State.VERIFIED
        bundle.version = release.version
        bundle.images = images
        built = (
            " and its source kept for an offline build"
            if unpacked.manifest.source is not None
            else ""
        )
        bundle.reason = (
            f"Signature by {unpacked.signer} verified; {len(images)} image(s) loaded "
            f"and matched{built}. CLMS {release.version} is ready to apply."
        )
        bundle.path = str(path)
    except BundleRefused as e:
        _refuse(bundle, path, e, now=now)
    except (BundleNotReady, OSError) as e:
        bundle.reason = f"Not processed yet: {e}. It is retried on the next scan."
        bundle.processed_at = None
        logger.warning("Offline bundle %s not processed: %s", path.name, e)
    except Exception as e:
        # Whatever else a hostile or damaged file makes the readers raise (a
        # broken deflate stream, an entry name that is not UTF-8, ...): the
        # bundle ends refused with the reason, never a crashed scan or a claim
        # left behind.
        logger.exception("Offline bundle %s could not be read", path.name)
        _refuse(
            bundle,
            path,
            BundleRefused(
                f"{path.name} could not be read as a bundle ({type(e).__name__}: "
                f"{str(e)[:300]}); it is damaged or not a bundle the vendor made",
                code="unreadable",
            ),
            now=now,
        )
    finally:
        if unpacked is not None:
            shutil.rmtree(unpacked.root, ignore_errors=True)
    bundle.save()
    return bundle


def _refuse(
    bundle: OfflineBundle, path: Path, e: BundleRefused, *, now: datetime
) -> None:
    """Mark ``bundle`` refused with why, move its file to quarantine, audit it."""
    bundle.state = OfflineBundle.State.REFUSED
    bundle.reason = f"{e} [{e.code}]"
    bundle.version = e.version
    try:
        bundle.path = str(quarantine(path, bundle.reason, now=now))
    except OSError as move_error:
        bundle.reason += f" (it could not be moved to quarantine: {move_error})"
    logger.warning("Offline bundle %s refused: %s", path.name, bundle.reason)
    audit.record(
        "updates.bundle.refused",
        target=path.name,
        code=e.code,
        reason=str(e)[:500],
    )


def _refuse_unread(
    path: Path, size: int, limit: int, *, now: datetime
) -> OfflineBundle:
    """A file too large to be a bundle: refused by its size, without reading it."""
    bundle, _ = OfflineBundle.objects.update_or_create(
        sha256="",
        file_name=path.name,
        defaults={
            "size": size,
            "path": str(path),
            "found_at": now,
            "processed_at": now,
        },
    )
    _refuse(
        bundle,
        path,
        BundleRefused(
            f"{path.name} has {size} bytes, more than a bundle may have "
            f"(UPDATES_BUNDLE_MAX_MB = {limit // (1024 * 1024)}); it was not read",
            code="too_large",
        ),
        now=now,
    )
    bundle.save()
    return bundle


def _offer_release(unpacked: UnpackedBundle, *, now: datetime) -> AvailableRelease:
    """Store the bundle's release as available (source offline), like a checked one."""
    manifest = unpacked.manifest
    existing = AvailableRelease.objects.filter(version=manifest.version).first()
    if existing is not None:
        # Verified already (online or another bundle): its images are the same,
        # since a manifest binds them; keep the row the admin already saw.
        return existing
    fields: dict[str, Any] = {
        "channel": manifest.channel,
        "critical": manifest.critical,
        "force_after": manifest.force_after,
        "min_version": manifest.min_version or "",
        "changelog": manifest.changelog,
        "released_at": manifest.released_at,
        "manifest_text": unpacked.manifest_bytes.decode("utf-8"),
        "signature": unpacked.manifest_signature,
        "signer_fingerprint": unpacked.signer,
        "source": "offline",
        "index_sequence": AgentState.load().highest_sequence,
        "verified_at": now,
    }
    try:
        with transaction.atomic():
            release = AvailableRelease.objects.create(
                version=manifest.version, **fields
            )
    except IntegrityError:
        return AvailableRelease.objects.get(version=manifest.version)
    notify_admins_once(release)
    return release


def offline_overview() -> dict[str, Any]:
    """What the offline page shows: why offline and since when, folders, bundles."""
    state = AgentState.load()
    folder = Path(settings.UPDATES_OFFLINE_DIR)
    return {
        "agent": state,
        "offline_dir": folder,
        "offline_dir_exists": folder.is_dir(),
        "offline_dir_writable": folder.is_dir() and os.access(folder, os.W_OK),
        "quarantine_dir": Path(settings.UPDATES_QUARANTINE_DIR),
        "bundles": list(OfflineBundle.objects.all()[:50]),
        "waiting_files": [
            p.name
            for p in bundle_files()
            if not OfflineBundle.objects.filter(file_name=p.name)
            .exclude(state=OfflineBundle.State.FOUND)
            .exists()
        ],
        "grace_days": settings.UPDATES_OFFLINE_GRACE_DAYS,
    }

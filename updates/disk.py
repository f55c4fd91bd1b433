"""How much disk CLMS takes on this server: images, backups, bundles, and what is left.

Shown on the update manager so an admin sees the disk fill up before an update
fails for it. Images are those of the releases this agent verified (the one
running and those kept for a rollback; older ones are removed after each
committed update, ``updates.runtime.cleanup``), each counted once. The figures
are kept for a minute: the engine and the folders are not asked on every view.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Sum
from docker.errors import DockerException

from backups.models import Backup
from clms_updates.files import free_bytes
from clms_updates.manifest import ManifestError
from updates import runtime
from updates.models import AvailableRelease

logger = logging.getLogger(__name__)

CACHE_KEY = "updates:disk-use"
CACHE_SECONDS = 60
# Walking the offline folder stops after this many files (a hostile folder).
MAX_FILES = 10_000


@dataclass(frozen=True)
class DiskUse:
    images_bytes: int | None  # None: the Docker engine could not be asked
    image_count: int
    images_note: str
    backups_bytes: int
    backup_count: int
    bundles_bytes: int
    free_bytes: int | None


def disk_use() -> DiskUse:
    """The figures, from the cache when they are fresh."""
    try:
        cached = cache.get(CACHE_KEY)
    except Exception:  # the cache is down: measure, do not keep
        cached = None
    if isinstance(cached, DiskUse):
        return cached
    images_bytes, image_count, note = _images()
    backups = Backup.objects.exclude(status=Backup.Status.FAILED).aggregate(
        total=Sum("size"), count=Count("id")
    )
    use = DiskUse(
        images_bytes=images_bytes,
        image_count=image_count,
        images_note=note,
        backups_bytes=int(backups["total"] or 0),
        backup_count=int(backups["count"] or 0),
        bundles_bytes=_folder_bytes(settings.UPDATES_OFFLINE_DIR)
        + _folder_bytes(settings.UPDATES_CACHE_DIR),
        free_bytes=_free(Path(settings.BACKUP_DIR)),
    )
    try:
        cache.set(CACHE_KEY, use, CACHE_SECONDS)
    except Exception:
        logger.warning("Could not keep the disk figures in the cache")
    return use


def _images() -> tuple[int | None, int, str]:
    references: set[str] = set()
    for release in AvailableRelease.objects.all():
        try:
            references.update(image.reference for image in release.manifest().images)
        except ManifestError:
            continue
    try:
        client = runtime.docker_client()
    except runtime.DockerUnavailable:
        return None, 0, "the Docker engine does not answer"
    sizes: dict[str, int] = {}
    try:
        for reference in sorted(references):
            try:
                image = client.images.get(reference)
            except DockerException:
                continue  # not pulled here (yet), or removed
            sizes[image.id] = int(image.attrs.get("Size") or 0)
    except Exception as e:  # the engine went away midway
        return None, 0, f"the Docker engine stopped answering ({type(e).__name__})"
    return sum(sizes.values()), len(sizes), ""


def _folder_bytes(folder: Path) -> int:
    total, seen = 0, 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            seen += 1
            if seen > MAX_FILES:
                return total
            try:
                total += (Path(root) / name).lstat().st_size
            except OSError:
                continue
    return total


def _free(place: Path) -> int | None:
    try:
        return free_bytes(place)
    except OSError:
        return None

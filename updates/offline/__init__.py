"""Offline updates from signed bundles: scan, verify, unpack safely, load, offer.

Public entry points:

- ``scan_offline_folder()``: process new bundles in ``UPDATES_OFFLINE_DIR``
  (applying a verified bundle is the action ``updates.actions.apply_bundle``);
- ``images_available(release)`` / ``local_image_for(reference)``: for the
  pipeline's fetch step, which uses loaded images instead of pulling;
- ``build_source(manifest, client, on_line=…)``: for a source release, the
  fetch step's offline build from the kept, verified source (``building``);
- ``offline_overview()``: what the offline page shows.

The feature's page is ``views``, its API ``api``, its beat task ``tasks``.
"""

from updates.offline.building import SOURCE_LABEL, BuildFailed, build_source
from updates.offline.errors import BundleError, BundleNotReady, BundleRefused
from updates.offline.loading import images_available, local_image_for
from updates.offline.scanning import (
    offline_overview,
    process_bundle,
    scan_offline_folder,
)
from updates.offline.source import OfflineSource
from updates.sources import register_source


def register_offline_source() -> None:
    """Make ``offline`` usable in ``UPDATES_SOURCES`` (called by the app at start)."""
    register_source("offline", OfflineSource.from_settings)


__all__ = [
    "SOURCE_LABEL",
    "BuildFailed",
    "BundleError",
    "BundleNotReady",
    "BundleRefused",
    "OfflineSource",
    "build_source",
    "images_available",
    "local_image_for",
    "offline_overview",
    "process_bundle",
    "register_offline_source",
    "scan_offline_folder",
]

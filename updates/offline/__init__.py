"""Offline updates from signed bundles: scan, verify, unpack safely, load, offer.

Public entry points:

- ``scan_offline_folder()``: process new bundles in ``UPDATES_OFFLINE_DIR``;
- ``schedule_bundle(bundle, user=…)``: apply a verified bundle's release;
- ``images_available(release)`` / ``local_image_for(reference)``: for the
  pipeline's fetch step, which uses loaded images instead of pulling;
- ``offline_overview()``: what the offline page shows.
"""

from updates.offline.errors import BundleError, BundleNotReady, BundleRefused
from updates.offline.loading import images_available, local_image_for
from updates.offline.scanning import (
    offline_overview,
    process_bundle,
    scan_offline_folder,
    schedule_bundle,
)

__all__ = [
    "BundleError",
    "BundleNotReady",
    "BundleRefused",
    "images_available",
    "local_image_for",
    "offline_overview",
    "process_bundle",
    "scan_offline_folder",
    "schedule_bundle",
]

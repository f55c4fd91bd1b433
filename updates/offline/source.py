"""The offline folder as an update source: scanning it on every check.

Bundles carry a signed manifest but no signed index, so this source cannot
answer ``fetch_index`` the way the vendor does. Instead, when a check reaches
it, it scans the folder (verifying, loading and offering any new bundle as an
``AvailableRelease`` with source ``offline``) and then reports itself
unavailable with a summary, so the check records what the folder held and
moves on to the next source. The offline package registers it as the source
named ``offline`` (``updates.offline``), so ``updates.sources`` never imports
the offline feature.
"""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

from django.conf import settings

from updates.models import OfflineBundle
from updates.offline.scanning import scan_offline_folder
from updates.sources.base import (
    SignedDocument,
    Source,
    SourceNotConfigured,
    SourceUnavailable,
)


class OfflineSource(Source):
    """``UPDATES_OFFLINE_DIR``: signed bundles copied in by hand (a USB stick)."""

    name = "offline"

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @classmethod
    def from_settings(cls) -> OfflineSource:
        """The offline source, or ``SourceNotConfigured`` when the folder is missing."""
        folder = Path(settings.UPDATES_OFFLINE_DIR)
        if not folder.is_dir():
            raise SourceNotConfigured(
                f"the offline folder {folder} does not exist (UPDATES_OFFLINE_DIR); "
                "create it or mount the USB stick there"
            )
        return cls(folder)

    def fetch_keys(self) -> str:
        # Asked first by the check (for the vendor key); a bundle brings and
        # checks its own key, so this is where the folder is scanned.
        self._scan_and_report()

    def fetch_index(self) -> SignedDocument:
        self._scan_and_report()

    def _scan_and_report(self) -> NoReturn:
        """Scan the folder, then report this source as unavailable with a summary."""
        touched = scan_offline_folder()
        ready = OfflineBundle.objects.filter(state=OfflineBundle.State.VERIFIED)
        parts = [f"{b.file_name}: {b.get_state_display().lower()}" for b in touched]
        summary = "; ".join(parts) if parts else "no new bundle"
        versions = ", ".join(sorted({b.version for b in ready}))
        offer = f"; ready to apply: CLMS {versions}" if versions else ""
        raise SourceUnavailable(
            f"offline folder {self.folder} holds no index ({summary}{offer})"
        )

    def fetch_manifest(self, version: str) -> SignedDocument:
        raise SourceUnavailable("the offline folder serves bundles, not manifests")

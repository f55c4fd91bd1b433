"""Another school agent on the LAN serving as a mirror (same contract as the vendor).

The mirror agent serves ``/api/updates/mirror/vendor/api/v1/…`` with the vendor
API's shapes, so this source is the vendor client pointed elsewhere with the
mirror's token. What it returns is verified exactly like the vendor's answer.
"""

from __future__ import annotations

from django.conf import settings

from updates.sources.base import SourceNotConfigured
from updates.sources.vendor import VendorSource

MIRROR_PREFIX = "/api/updates/mirror"


class MirrorSource(VendorSource):
    """A LAN mirror (``UPDATES_MIRROR_URL``) authenticated by ``UPDATES_MIRROR_TOKEN``."""

    name = "mirror"

    @classmethod
    def from_settings(cls, *, product: str = "") -> MirrorSource:
        """The mirror source as configured, or ``SourceNotConfigured``."""
        from updates.models import AgentState

        if not settings.UPDATES_MIRROR_URL:
            raise SourceNotConfigured("UPDATES_MIRROR_URL is empty")
        if not settings.UPDATES_MIRROR_TOKEN:
            raise SourceNotConfigured(
                "UPDATES_MIRROR_TOKEN is empty; ask the mirror's admin for a token"
            )
        return cls(
            settings.UPDATES_MIRROR_URL.rstrip("/") + MIRROR_PREFIX,
            settings.UPDATES_MIRROR_TOKEN,
            AgentState.load().installed_version,
            product=product,
        )

"""Where the agent fetches signed metadata from, tried in the configured order.

Every source hands back bytes and a detached signature; nothing here trusts
them. ``checking`` verifies whatever a source returns with the same rules, so a
mirror or an offline folder is exactly as trusted as the vendor server: not at
all until the signature checks out against the pinned keys. The offline
folder's source lives with its feature (``updates.offline.source``) and
registers itself there.
"""

from updates.sources.base import (
    SignedDocument,
    Source,
    SourceError,
    SourceNotConfigured,
    SourceNotFound,
    SourceRateLimited,
    SourceRefused,
    SourceUnavailable,
    configured_sources,
    register_source,
    registered_source_names,
)
from updates.sources.mirror import MirrorSource
from updates.sources.vendor import VendorSource

register_source("vendor", VendorSource.from_settings)
register_source("mirror", MirrorSource.from_settings)

__all__ = [
    "MirrorSource",
    "SignedDocument",
    "Source",
    "SourceError",
    "SourceNotConfigured",
    "SourceNotFound",
    "SourceRateLimited",
    "SourceRefused",
    "SourceUnavailable",
    "VendorSource",
    "configured_sources",
    "register_source",
    "registered_source_names",
]

"""Trust: the agent's keyring and signature checks against the pinned vendor keys.

python-gnupg calls a signature valid whatever the key's trust level, so the
only thing that makes a signature count here is its signer's fingerprint being
in ``UPDATES_VENDOR_KEY_FINGERPRINTS`` (``clms_updates.manifest`` checks that).
Keys may be imported from a file or from a source; importing never adds trust.
"""

from __future__ import annotations

import logging
from pathlib import Path

from django.conf import settings

from clms_updates.manifest import (
    ReleaseManifest,
    SignatureError,
    import_public_keys,
    parse_manifest,
    verify_detached,
)
from clms_updates.manifest.signing import gpg_for, normalise_fingerprint
from updates.models import AvailableRelease
from updates.sources import Source

logger = logging.getLogger(__name__)


class CheckRefused(Exception):
    """Something a source delivered breaks the trust model; nothing is stored."""


def pinned_fingerprints() -> list[str]:
    return [normalise_fingerprint(f) for f in settings.UPDATES_VENDOR_KEY_FINGERPRINTS]


_keys_seen: dict[str, set[str]] = {}


def ensure_vendor_keys(source: Source) -> None:
    """Make sure a pinned key is in the agent's keyring, importing it if not.

    Keys come from ``UPDATES_VENDOR_PUBLIC_KEY_FILE`` or else the source; an
    imported key that is not pinned does no harm, since only pinned
    fingerprints are accepted when verifying.
    """
    pinned = set(pinned_fingerprints())
    if not pinned:
        raise CheckRefused(
            "no vendor key is pinned, so nothing can be trusted; set "
            "UPDATES_VENDOR_KEY_FINGERPRINTS to the fingerprint(s) the vendor published"
        )
    home = Path(settings.UPDATES_GNUPG_HOME)
    # Keys are only ever added to the keyring, so a pinned key seen once stays:
    # remembering that saves a gpg process on every check.
    if pinned & _keys_seen.get(str(home), set()):
        return
    known = {normalise_fingerprint(k["fingerprint"]) for k in gpg_for(home).list_keys()}
    _keys_seen[str(home)] = known
    if pinned & known:
        return
    if settings.UPDATES_VENDOR_PUBLIC_KEY_FILE:
        try:
            armored = Path(settings.UPDATES_VENDOR_PUBLIC_KEY_FILE).read_text()
        except OSError as e:
            raise CheckRefused(
                f"UPDATES_VENDOR_PUBLIC_KEY_FILE cannot be read ({e}); fix the path"
            ) from None
    else:
        armored = source.fetch_keys()
    try:
        imported = import_public_keys(home, armored)
    except SignatureError as e:
        raise CheckRefused(
            f"the vendor public key could not be imported: {e}"
        ) from None
    _keys_seen.setdefault(str(home), set()).update(imported)
    if not pinned & set(imported):
        logger.warning(
            "Imported vendor key(s) %s, none of them pinned", ", ".join(imported)
        )


def verify(data: bytes, signature: str, what: str) -> str:
    """Verify a detached signature against the pinned keys; return the signer."""
    try:
        return verify_detached(
            data,
            signature,
            gnupghome=settings.UPDATES_GNUPG_HOME,
            pinned=pinned_fingerprints(),
            what=what,
        )
    except SignatureError as e:
        raise CheckRefused(str(e)) from None


def verify_release(release: AvailableRelease) -> ReleaseManifest:
    """Verify a stored release's manifest again (pinned keys, expiry ignored) and parse it.

    For the pipeline's verify step: what was stored at check time is checked
    once more right before use, so a row changed in the database is refused.
    """
    verify(release.manifest_bytes, release.signature, f"manifest {release.version}")
    manifest = parse_manifest(release.manifest_bytes)
    if manifest.version != release.version:
        raise CheckRefused(
            f"the stored manifest is for {manifest.version}, not {release.version}"
        )
    return manifest

"""Trust: the agent's root of trust, its keyring, and signature checks by role.

python-gnupg calls a signature valid whatever the key's trust level, so what
makes a signature count here is its signer's fingerprint being listed for the
role the document needs in the current root (``clms_updates.manifest.roles``):
the index needs the ``index`` role, a release manifest the ``release`` role,
each with its threshold. ``UPDATES_VENDOR_KEY_FINGERPRINTS`` pins the first
root; later roots are followed from the sources (``follow_roots``) and kept in
``TrustedRoot``, walked again from the pins before use. Keys may be imported
from a file, a source or a root; importing never adds trust.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction

from clms_updates import audit
from clms_updates.manifest import (
    ManifestError,
    ReleaseManifest,
    RootDocument,
    SignatureError,
    check_next_root,
    implicit_root,
    import_public_keys,
    parse_manifest,
    parse_root,
    verify_threshold,
)
from clms_updates.manifest.signing import gpg_for, normalise_fingerprint
from updates.models import AvailableRelease, TrustedRoot
from updates.sources import Source

# The roles documents need (``clms_updates.manifest.roles``).
INDEX = "index"
RELEASE = "release"
# A check follows at most this many root versions; the next check goes on.
MAX_ROOTS_PER_CHECK = 20

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


_roots: dict[tuple[tuple[str, ...], str], RootDocument] = {}


def current_root() -> RootDocument:
    """The newest trusted root, its chain walked again from the pinned keys.

    Walking costs two gpg checks per stored root, so the result is kept per
    process for the same pins and the same stored chain.
    """
    pins = pinned_fingerprints()
    try:
        root = implicit_root(pins)
    except SignatureError as e:
        raise CheckRefused(str(e)) from None
    chain = list(TrustedRoot.objects.values_list("version", "root_json", "signature"))
    key = (tuple(pins), hashlib.sha256(repr(chain).encode()).hexdigest())
    found = _roots.get(key)
    if found is not None:
        return found
    home = str(settings.UPDATES_GNUPG_HOME)
    for version, text, signature in chain:
        try:
            root = check_next_root(
                root, text.encode("utf-8"), signature, gnupghome=home
            )
        except (SignatureError, ManifestError) as e:
            raise CheckRefused(
                f"the stored root {version} no longer verifies from the pinned vendor "
                f"keys ({e}); if UPDATES_VENDOR_KEY_FINGERPRINTS was changed, set it "
                "back to the first root's keys, otherwise the agent's database was "
                "altered: nothing is trusted until this is fixed"
            ) from None
    _roots.clear()
    _roots[key] = root
    return root


def follow_roots(source: Source) -> RootDocument:
    """Accept the roots ``source`` offers after the current one, one version at a time.

    Each must be signed by a threshold of the previous root's root keys and of
    its own; the first refused one stops the check, keeping what was accepted.
    """
    root = current_root()
    home = str(settings.UPDATES_GNUPG_HOME)
    for document in source.fetch_roots(root.version)[:MAX_ROOTS_PER_CHECK]:
        try:
            offered = parse_root(document.data)
            if offered.version <= root.version:
                continue  # already trusted (a source may send more than asked)
            new = check_next_root(
                root, document.data, document.signature, gnupghome=home
            )
        except (SignatureError, ManifestError) as e:
            raise CheckRefused(
                f"a new root from {source.name} was refused: {e}; the agent keeps "
                f"root {root.version}"
            ) from None
        try:
            with transaction.atomic():
                TrustedRoot.objects.create(
                    version=new.version,
                    root_json=document.data.decode("utf-8"),
                    signature=document.signature,
                    source=source.name,
                )
                audit.record(
                    "updates.root.accepted",
                    target=f"root {new.version}",
                    source=source.name,
                    roles={
                        name: {"keys": list(r.keys), "threshold": r.threshold}
                        for name, r in new.roles.items()
                    },
                )
        except IntegrityError:
            return current_root()  # another check stored it first
        logger.warning(
            "Now trusting root %s of the vendor (from %s): release needs %s of %s "
            "keys, index %s of %s",
            new.version,
            source.name,
            new.role(RELEASE).threshold,
            len(new.role(RELEASE).keys),
            new.role(INDEX).threshold,
            len(new.role(INDEX).keys),
        )
        root = new
    return root


def verify(data: bytes, signature: str, what: str, *, role: str) -> str:
    """Verify ``data`` against the current root's ``role``; return the first signer.

    The signature text may hold several signatures; the role's threshold of
    distinct listed keys must have signed.
    """
    root = current_root()
    try:
        return verify_threshold(
            data,
            signature,
            role=root.role(role),
            role_name=role,
            gnupghome=str(settings.UPDATES_GNUPG_HOME),
            what=what,
        )[0]
    except SignatureError as e:
        raise CheckRefused(str(e)) from None


def verify_release(release: AvailableRelease) -> ReleaseManifest:
    """Verify a stored release's manifest again (pinned keys, expiry ignored) and parse it.

    For the pipeline's verify step: what was stored at check time is checked
    once more right before use, so a row changed in the database is refused.
    """
    verify(
        release.manifest_bytes,
        release.signature,
        f"manifest {release.version}",
        role=RELEASE,
    )
    manifest = parse_manifest(release.manifest_bytes)
    if manifest.version != release.version:
        raise CheckRefused(
            f"the stored manifest is for {manifest.version}, not {release.version}"
        )
    return manifest

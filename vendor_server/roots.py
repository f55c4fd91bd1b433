"""The vendor's root of trust: which keys sign what, and whether a release is signed enough.

The root document (``clms_updates.manifest.roles``) is written and signed where
the root keys live (``manage.py vendor_root``), never on this server; the
server only checks that it follows the current root and stores it
(``actions.publish_root``), and serves the chain to agents. Before any root
is published the server's own signing key holds every role (root version 0),
which is what schools pin.

A release is listed only when the signatures over its manifest meet the
current root's ``release`` threshold (``Release.release_signed``); with
release managers' keys off the server, that means after ``sign_release``.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.db.models import QuerySet
from django.utils import timezone

from clms_updates.manifest import (
    ManifestError,
    Role,
    RootDocument,
    SignatureError,
    check_next_root,
    implicit_root,
    parse_root,
    role_signers,
    split_signatures,
)
from clms_updates.manifest.roles import ROLES
from vendor_server import keys
from vendor_server.models import Release, RootVersion


class RootRefused(ValueError):
    """A root or a release signature that cannot be accepted; says why."""


def current_root() -> RootDocument:
    """The newest published root, else root 0 (the signing key holds every role)."""
    row = RootVersion.objects.order_by("-version").first()
    if row is None:
        return implicit_root([keys.signing_fingerprint()])
    return parse_root(row.root_json.encode("utf-8"))


def published_roots(after: int, limit: int = 50) -> QuerySet[RootVersion]:
    return RootVersion.objects.filter(version__gt=after).order_by("version")[:limit]


def chain_document() -> bytes:
    """Every published root as a bundle's ``roots.json`` (empty when there is none)."""
    rows = list(published_roots(0, limit=10_000))
    if not rows:
        return b""
    return json.dumps(
        {
            "roots": [
                {"version": r.version, "root": r.root_json, "signature": r.signature}
                for r in rows
            ]
        }
    ).encode()


def draft_root(version: int, roles: dict[str, Role], *, home: Path) -> RootDocument:
    """Root ``version`` with ``roles`` and the public keys of every key they list.

    Run where the public keys are (no database needed); the result is checked
    as an agent would parse it, so a bad threshold or key is refused here.
    """
    listed: list[str] = []
    for name in ROLES:
        listed.extend(f for f in roles[name].keys if f not in listed)
    root = RootDocument(
        version=version,
        created_at=timezone.now().replace(microsecond=0),
        roles={name: roles[name] for name in ROLES},
        public_keys=keys.export_public_key(listed, home=home),
    )
    return RootDocument.from_dict(root.to_dict())


def check_publishable(data: bytes, signature: str) -> RootDocument:
    """The root ``data`` if it may follow the current one here; else ``RootRefused``."""
    try:
        new = check_next_root(
            current_root(), data, signature, gnupghome=str(keys.gnupg_home())
        )
    except (SignatureError, ManifestError) as e:
        raise RootRefused(str(e)) from None
    online = keys.signing_fingerprint()
    if online not in new.role("index").keys:
        raise RootRefused(
            f"root {new.version} does not list this server's signing key {online} "
            "for the index role, so every school would refuse the next index; list "
            "it, or set VENDOR_SIGNING_KEY to one of the index keys first"
        )
    return new


def release_signers(
    release: Release, root: RootDocument | None = None
) -> tuple[list[str], int]:
    """The release keys whose signatures over the manifest verify, and how many are needed."""
    role = (root or current_root()).role("release")
    signers, _ = role_signers(
        release.manifest_json.encode("utf-8"),
        release.manifest_signature,
        role=role,
        gnupghome=keys.gnupg_home(),
        what=f"manifest of {release}",
    )
    return signers, role.threshold


def signed_enough(release: Release, root: RootDocument | None = None) -> bool:
    signers, needed = release_signers(release, root)
    return len(signers) >= needed


def check_release_signature(release: Release, signature: str) -> list[str]:
    """The release keys that made ``signature`` over the stored manifest; else refuse."""
    role = current_root().role("release")
    blocks = split_signatures(signature)
    if not blocks:
        raise RootRefused(
            "no armored PGP signature was given; pass the .asc file `sign_release "
            "sign` wrote"
        )
    signers, problems = role_signers(
        release.manifest_json.encode("utf-8"),
        signature,
        role=role,
        gnupghome=keys.gnupg_home(),
        what=f"the signature over {release}",
    )
    if problems:
        raise RootRefused(
            f"{problems[0]}. Sign the manifest the server holds now (`sign_release "
            "export`) with a key the current root lists for releases"
        )
    return signers

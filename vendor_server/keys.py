"""The vendor signing key: create it, find it, export it, sign with it."""

from __future__ import annotations

import subprocess
from pathlib import Path

from django.conf import settings

from clms_updates.manifest import sign_detached
from clms_updates.manifest.signing import gpg_for, normalise_fingerprint


class SigningKeyError(RuntimeError):
    """The vendor signing key is missing or ambiguous; says what to do."""


def gnupg_home() -> Path:
    return Path(settings.VENDOR_GNUPG_HOME)


def secret_fingerprints(home: Path | None = None) -> list[str]:
    """Primary fingerprints of the secret keys in the vendor GnuPG home."""
    home = home or gnupg_home()
    if not home.exists():
        return []
    return [
        normalise_fingerprint(k["fingerprint"]) for k in gpg_for(home).list_keys(True)
    ]


def signing_fingerprint() -> str:
    """The fingerprint to sign with: VENDOR_SIGNING_KEY, else the only secret key."""
    if settings.VENDOR_SIGNING_KEY:
        return str(settings.VENDOR_SIGNING_KEY)
    found = secret_fingerprints()
    if not found:
        raise SigningKeyError(
            f"there is no vendor signing key in {gnupg_home()}; create one with "
            "`manage.py vendor_keygen` (or set VENDOR_GNUPG_HOME to the home holding it)"
        )
    if len(found) > 1:
        raise SigningKeyError(
            f"{gnupg_home()} holds {len(found)} secret keys; set VENDOR_SIGNING_KEY to "
            "the fingerprint of the one to sign with"
        )
    return found[0]


def sign(data: bytes) -> str:
    """Sign ``data`` with the vendor key; return the armored detached signature."""
    return sign_detached(
        data,
        gnupghome=gnupg_home(),
        fingerprint=signing_fingerprint(),
        passphrase=settings.VENDOR_KEY_PASSPHRASE or None,
    )


def export_public_key(fingerprint: str | None = None) -> str:
    """The armored public key(s): the signing key, or every key in the home."""
    fingerprints = [fingerprint] if fingerprint else secret_fingerprints()
    if not fingerprints:
        raise SigningKeyError(
            f"there is no vendor key in {gnupg_home()}; run `manage.py vendor_keygen`"
        )
    armored = str(gpg_for(gnupg_home()).export_keys(fingerprints))
    if "BEGIN PGP PUBLIC KEY BLOCK" not in armored:
        raise SigningKeyError(f"the public key {fingerprints} could not be exported")
    return armored


def generate_key(
    name: str, email: str, *, passphrase: str = "", home: Path | None = None
) -> str:
    """Create an ed25519 signing key in the vendor home; return its fingerprint."""
    home = home or gnupg_home()
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    before = set(secret_fingerprints(home))
    result = subprocess.run(
        [
            "gpg",
            "--homedir",
            str(home),
            "--batch",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            passphrase,
            "--quick-gen-key",
            f"{name} <{email}>",
            "ed25519",
            "sign",
            "never",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    created = sorted(set(secret_fingerprints(home)) - before)
    if result.returncode != 0 or not created:
        raise SigningKeyError(
            f"gpg could not create the key in {home}: {result.stderr.strip()[-500:]}"
        )
    return created[0]

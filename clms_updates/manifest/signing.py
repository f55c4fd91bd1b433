"""Detached GPG signatures over canonical bytes, verified against pinned keys.

python-gnupg calls a signature "valid" even when the key's trust is undefined,
so trust here is not GnuPG's web of trust: a signature counts only when it is
cryptographically good *and* the signing key's primary fingerprint is in the
pinned set the caller passes (several for key rotation).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import gnupg


class SignatureError(ValueError):
    """A signature is missing, broken, or made by a key that is not pinned."""


def normalise_fingerprint(fingerprint: str) -> str:
    return fingerprint.replace(" ", "").upper()


def gpg_for(gnupghome: str | os.PathLike[str]) -> gnupg.GPG:
    """A GnuPG handle on ``gnupghome`` (created 0700 when missing)."""
    home = Path(gnupghome)
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    return gnupg.GPG(gnupghome=str(home))


def import_public_keys(gnupghome: str | os.PathLike[str], armored: str) -> list[str]:
    """Import armored public key(s); return the primary fingerprints imported."""
    result = gpg_for(gnupghome).import_keys(armored)
    fingerprints = [normalise_fingerprint(f) for f in result.fingerprints if f]
    if not fingerprints:
        raise SignatureError("no public key could be imported from the given text")
    return sorted(set(fingerprints))


def sign_detached(
    data: bytes,
    *,
    gnupghome: str | os.PathLike[str],
    fingerprint: str,
    passphrase: str | None = None,
) -> str:
    """Sign ``data`` with the key ``fingerprint``; return the armored detached signature."""
    signature = gpg_for(gnupghome).sign(
        data, keyid=fingerprint, passphrase=passphrase, detach=True, binary=False
    )
    text = str(signature)
    if not text.startswith("-----BEGIN PGP SIGNATURE-----"):
        raise SignatureError(
            f"signing with key {fingerprint} failed ({signature.status or 'no status'}); "
            "check that the key exists in the vendor GnuPG home and the passphrase is right"
        )
    return text


def verify_detached(
    data: bytes,
    signature: str | bytes,
    *,
    gnupghome: str | os.PathLike[str],
    pinned: Iterable[str],
    what: str = "metadata",
) -> str:
    """Verify ``signature`` over ``data``; return the signer's primary fingerprint.

    Raises ``SignatureError`` saying why when the signature is missing, does not
    match the data, or was made by a key that is not pinned.
    """
    pinned_set = {normalise_fingerprint(f) for f in pinned if f.strip()}
    if not pinned_set:
        raise SignatureError(
            f"{what}: no vendor key is pinned, so nothing can be trusted; set "
            "UPDATES_VENDOR_KEY_FINGERPRINTS to the fingerprint(s) the vendor published"
        )
    raw = (
        signature.encode("ascii", "replace")
        if isinstance(signature, str)
        else signature
    )
    if b"BEGIN PGP SIGNATURE" not in raw:
        raise SignatureError(
            f"{what}: the signature is missing or is not an armored PGP signature"
        )
    with tempfile.NamedTemporaryFile(prefix="sig-", suffix=".asc") as sig_file:
        sig_file.write(raw)
        sig_file.flush()
        result = gpg_for(gnupghome).verify_data(sig_file.name, data)
    signer = normalise_fingerprint(
        result.pubkey_fingerprint or result.fingerprint or ""
    )
    if not result.valid:
        if result.status == "no public key":
            raise SignatureError(
                f"{what}: signed by key {result.key_id or 'unknown'}, which is not a pinned "
                "vendor key (its public key is not known here); nothing was applied"
            )
        raise SignatureError(
            f"{what}: the signature does not verify ({result.status or 'bad signature'}); "
            "the data was changed after signing or the signature belongs to other data"
        )
    if signer not in pinned_set:
        raise SignatureError(
            f"{what}: signature made by key {signer}, which is not a pinned vendor key; "
            "nothing was applied"
        )
    return signer

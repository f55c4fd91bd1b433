"""The vendor's keys: create, find, export, sign with the online key or an offline one."""

from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path

from django.conf import settings

from clms_updates.manifest import join_signatures, sign_detached, split_signatures
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


def sign_file(
    path: Path, *, fingerprint: str, gnupghome: Path, passphrase: str = ""
) -> tuple[Path, int]:
    """Sign the file's exact bytes with a key in ``gnupghome``; add it to ``<file>.asc``.

    For the keys kept off the server (root keys, release managers): the
    signature is appended, so several holders sign one after another. Returns
    the signature file and how many signatures it now holds.
    """
    try:
        data = path.read_bytes()
    except OSError as e:
        raise SigningKeyError(f"{path} cannot be read ({e.strerror})") from None
    signature = sign_detached(
        data,
        gnupghome=gnupghome,
        fingerprint=normalise_fingerprint(fingerprint),
        passphrase=passphrase or None,
    )
    target = path.with_name(path.name + ".asc")
    existing = target.read_text() if target.exists() else ""
    joined = join_signatures([existing, signature])
    target.write_text(joined)
    return target, len(split_signatures(joined))


def export_public_key(
    fingerprint: str | list[str] | None = None, *, home: Path | None = None
) -> str:
    """The armored public key(s): the ones named, or every secret key's in the home."""
    home = home or gnupg_home()
    if isinstance(fingerprint, str):
        fingerprints = [fingerprint]
    else:
        fingerprints = list(fingerprint or secret_fingerprints(home))
    if not fingerprints:
        raise SigningKeyError(
            f"there is no vendor key in {home}; run `manage.py vendor_keygen`"
        )
    armored = str(gpg_for(home).export_keys(fingerprints))
    if "BEGIN PGP PUBLIC KEY BLOCK" not in armored:
        raise SigningKeyError(f"the public key {fingerprints} could not be exported")
    return armored


def archive_home(target: Path, home: Path | None = None) -> int:
    """Write the GnuPG home (the online secret key included) to ``target`` (0600).

    Sockets and lock files of a running gpg-agent are left out. Returns how
    many files went in.
    """
    home = home or gnupg_home()
    if not home.is_dir():
        raise SigningKeyError(f"there is no vendor GnuPG home at {home}")
    count = 0
    partial = target.with_name(target.name + ".part")
    with partial.open("wb") as raw:
        os.chmod(partial, 0o600)
        with tarfile.open(fileobj=raw, mode="w:gz") as archive:
            for path in sorted(home.rglob("*")):
                if not path.is_file() or path.is_symlink():
                    continue  # sockets, links, folders (their files go in)
                if path.name.endswith(".lock") or path.name.startswith(".#"):
                    continue
                archive.add(path, arcname=str(path.relative_to(home)), recursive=False)
                count += 1
    partial.replace(target)
    return count


def restore_home(archive: Path, home: Path | None = None) -> int:
    """Unpack an ``archive_home`` archive into an empty GnuPG home; files unpacked.

    A home that already holds a secret key is left alone (refused): two online
    keys would make signing ambiguous.
    """
    home = home or gnupg_home()
    if secret_fingerprints(home):
        raise SigningKeyError(
            f"{home} already holds a secret key; restore into an empty "
            "VENDOR_GNUPG_HOME"
        )
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.isfile()]
        tar.extractall(home, members=members, filter="data")
    for path in home.rglob("*"):
        path.chmod(0o700 if path.is_dir() else 0o600)
    return len(members)


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

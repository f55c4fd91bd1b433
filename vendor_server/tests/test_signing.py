"""The vendor key, and signatures schools verify with plain gpg."""

from __future__ import annotations

import subprocess
import tempfile
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from clms_updates.manifest import (
    SignatureError,
    import_public_keys,
    parse_manifest,
    verify_detached,
)
from vendor_server import keys
from vendor_server.tests.conftest import FAKE_IMAGE
from vendor_server.tests.factories import make_release

pytestmark = [pytest.mark.django_db, pytest.mark.services]


def test_vendor_keygen_creates_a_passphrase_protected_key(
    gnupg_home: Path, settings
) -> None:
    settings.VENDOR_GNUPG_HOME = gnupg_home
    settings.VENDOR_SIGNING_KEY = ""
    settings.VENDOR_KEY_PASSPHRASE = "correct horse battery staple"
    out = StringIO()
    call_command("vendor_keygen", stdout=out)
    [fingerprint] = keys.secret_fingerprints()
    assert fingerprint in out.getvalue()
    signature = keys.sign(b"hello")
    verify_detached(b"hello", signature, gnupghome=gnupg_home, pinned=[fingerprint])
    settings.VENDOR_KEY_PASSPHRASE = "wrong"
    subprocess.run(["gpgconf", "--homedir", str(gnupg_home), "--reload", "gpg-agent"])
    with pytest.raises(SignatureError):
        keys.sign(b"hello again")


def test_vendor_keygen_if_missing_keeps_the_existing_key(vendor_key, settings) -> None:
    call_command("vendor_keygen", "--if-missing", stdout=StringIO())
    assert keys.secret_fingerprints() == [vendor_key]


def test_signing_without_a_key_says_how_to_make_one(gnupg_home, settings) -> None:
    settings.VENDOR_GNUPG_HOME = gnupg_home
    settings.VENDOR_SIGNING_KEY = ""
    with pytest.raises(CommandError, match="vendor_keygen"):
        call_command("export_vendor_key", stdout=StringIO())


def test_manifest_verifies_with_the_exported_key_and_fails_after_one_byte_changes(
    offline: str, tmp_path: Path
) -> None:
    out = StringIO()
    key_file = tmp_path / "vendor.asc"
    call_command("export_vendor_key", "--output", str(key_file), stdout=out)
    assert f"Fingerprint to pin: {offline}" in out.getvalue()
    release = make_release("1.0.0", FAKE_IMAGE)

    school_home = Path(tempfile.mkdtemp(prefix="gpg-", dir="/tmp"))
    try:
        assert import_public_keys(school_home, key_file.read_text()) == [offline]
        data = release.manifest_bytes
        signer = verify_detached(
            data, release.manifest_signature, gnupghome=school_home, pinned=[offline]
        )
        assert signer == offline
        assert parse_manifest(data).version == "1.0.0"
        tampered = bytearray(data)
        tampered[len(tampered) // 2] ^= 0x01
        with pytest.raises(SignatureError, match="does not verify"):
            verify_detached(
                bytes(tampered),
                release.manifest_signature,
                gnupghome=school_home,
                pinned=[offline],
            )
        # And plain gpg agrees, as a person checking by hand would see.
        (tmp_path / "manifest.json").write_bytes(data)
        (tmp_path / "manifest.json.asc").write_text(release.manifest_signature)
        result = subprocess.run(
            [
                "gpg",
                "--homedir",
                str(school_home),
                "--verify",
                "manifest.json.asc",
                "manifest.json",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
    finally:
        subprocess.run(["gpgconf", "--homedir", str(school_home), "--kill", "all"])

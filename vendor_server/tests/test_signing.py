"""The vendor key, and signatures schools verify with plain gpg."""

from __future__ import annotations

import subprocess
import tempfile
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

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


@pytest.mark.django_db(transaction=True)
def test_the_vendor_backup_holds_a_verified_dump_and_the_gnupg_home(
    vendor_key, tmp_path
) -> None:
    import json
    import tarfile

    from django.core.management import call_command

    from conftest import database_url_for_subprocess
    from vendor_server.tests.factories import make_school

    make_school()
    out = StringIO()
    call_command(
        "vendor_backup",
        "--output",
        str(tmp_path / "backup"),
        "--database-url",
        database_url_for_subprocess(),
        stdout=out,
    )
    assert "restored into a scratch database to prove it" in out.getvalue()
    (manifest_file,) = (tmp_path / "backup").glob("*.manifest.json")
    manifest = json.loads(manifest_file.read_text())
    assert manifest["row_counts"]["public.vendor_server_school"] == 1
    dump = tmp_path / "backup" / manifest["file"]
    assert dump.stat().st_size == manifest["size"]
    assert oct(dump.stat().st_mode & 0o777) == "0o600"
    (archive,) = (tmp_path / "backup").glob("*-gnupg.tar.gz")
    assert oct(archive.stat().st_mode & 0o777) == "0o600"
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert "pubring.kbx" in names
    assert any(name.startswith("private-keys-v1.d/") for name in names)

    # Into a new, empty database on the same server, and an empty GnuPG home.
    import psycopg

    from conftest import require_service

    admin = require_service("postgres", "CLMS_TEST_PG_URL")
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute("DROP DATABASE IF EXISTS vendor_restored")
        connection.execute("CREATE DATABASE vendor_restored")
    target = admin.rsplit("/", 1)[0] + "/vendor_restored"
    new_home = Path(tempfile.mkdtemp(prefix="gpg-", dir="/tmp"))
    try:
        restored = StringIO()
        with override_settings(VENDOR_GNUPG_HOME=new_home):
            call_command(
                "vendor_restore",
                str(dump),
                "--database-url",
                target,
                "--gnupg",
                str(archive),
                stdout=restored,
            )
            assert keys.secret_fingerprints(new_home) == [vendor_key]
        assert "Restored" in restored.getvalue()
        with psycopg.connect(target) as connection:
            (schools,) = connection.execute(
                "SELECT count(*) FROM vendor_server_school"
            ).fetchone()
        assert schools == 1
        dump.write_bytes(dump.read_bytes()[:-10] + b"0123456789")  # damaged
        with pytest.raises(CommandError, match="not the file its manifest describes"):
            call_command("vendor_restore", str(dump), "--database-url", target)
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute("DROP DATABASE IF EXISTS vendor_restored")
        subprocess.run(
            ["gpgconf", "--homedir", str(new_home), "--kill", "all"],
            check=False,
            capture_output=True,
        )

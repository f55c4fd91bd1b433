"""The shared signed format: canonical bytes, parsing, signatures, freshness."""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from clms_updates import manifest as m
from conftest import generate_signing_key

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
DIGEST = "sha256:" + "ab" * 32


def make_manifest(**overrides) -> m.ReleaseManifest:
    values = dict(
        product="clms",
        version="1.0.1",
        channel="stable",
        released_at=NOW,
        expires=NOW + timedelta(days=30),
        images=(m.Image("app", f"127.0.0.1:5000/clms/app@{DIGEST}"),),
        health=m.HealthCheck(path="/health", body_field="status", body_value="ok"),
        changelog="## Fixed\n- Loans",
        migration=m.Migration("app", ("migrate",)),
    )
    values.update(overrides)
    return m.ReleaseManifest(**values)


def test_canonical_json_is_sorted_compact_utf8() -> None:
    assert m.canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'.encode()


def test_floats_are_refused_in_signed_metadata() -> None:
    with pytest.raises(m.ManifestError, match="floats are not allowed"):
        m.canonical_json({"a": {"b": 1.5}})


def test_manifest_round_trips_through_its_canonical_bytes() -> None:
    manifest = make_manifest(
        critical=True, force_after=NOW + timedelta(days=3), min_version="1.0.0"
    )
    parsed = m.parse_manifest(manifest.to_bytes())
    assert parsed == manifest
    assert parsed.to_bytes() == manifest.to_bytes()


def test_an_image_given_by_tag_is_refused() -> None:
    data = make_manifest().to_dict()
    data["images"][0]["reference"] = "127.0.0.1:5000/clms/app:1.0.1"
    with pytest.raises(m.ManifestError, match="names the image by tag"):
        m.ReleaseManifest.from_dict(data)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": "1.0"}, "is not a SemVer 2.0 version"),
        ({"channel": "nightly"}, "channel: 'nightly' is not one of"),
        ({"critical": True}, "a critical release needs a deadline"),
        (
            {"force_after": "2026-12-01T00:00:00Z"},
            "only a critical release has a deadline",
        ),
        ({"min_version": "1.0.1"}, "must be lower than the version"),
        ({"format": 99}, "format 99 is not supported"),
        ({"surprise": 1}, "unknown field(s) surprise"),
        ({"released_at": "2026-11-27 12:00"}, "expected a UTC time"),
    ],
)
def test_bad_manifests_are_refused_naming_the_field(change: dict, message: str) -> None:
    data = make_manifest().to_dict()
    data.update(change)
    with pytest.raises(m.ManifestError) as error:
        m.ReleaseManifest.from_dict(data)
    assert message in str(error.value)


def test_malformed_json_is_refused_clearly() -> None:
    with pytest.raises(m.ManifestError, match="malformed JSON"):
        m.parse_manifest(b'{"format": 1,')


def test_semver_precedence_follows_the_spec_examples() -> None:
    ordered = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "2.0.0",
        "2.1.0",
        "2.1.1",
    ]
    parsed = [m.parse_version(v) for v in ordered]
    assert parsed == sorted(parsed)
    assert m.parse_version("1.0.0+build.1") == m.parse_version("1.0.0+build.2")


def test_index_entry_binds_the_manifest_by_checksum() -> None:
    manifest = make_manifest()
    entry = m.IndexEntry.for_manifest(manifest)
    entry.check_matches(manifest, manifest.to_bytes())
    other = make_manifest(changelog="something else")
    with pytest.raises(m.ManifestError, match="is not the release the index lists"):
        entry.check_matches(other, other.to_bytes())


def make_index(
    sequence: int = 5, expires: datetime = NOW + timedelta(days=7)
) -> m.ReleaseIndex:
    return m.ReleaseIndex(
        product="clms",
        sequence=sequence,
        generated_at=NOW,
        expires=expires,
        releases=(m.IndexEntry.for_manifest(make_manifest()),),
    )


def test_index_round_trips() -> None:
    index = make_index()
    assert m.parse_index(index.to_bytes()) == index


def test_a_replayed_index_is_refused_and_the_same_sequence_accepted() -> None:
    m.check_index_freshness(make_index(5), highest_sequence_seen=5, now=NOW)
    with pytest.raises(m.ReplayError, match="sequence 4 is lower than 5"):
        m.check_index_freshness(make_index(4), highest_sequence_seen=5, now=NOW)


def test_an_expired_index_is_refused() -> None:
    with pytest.raises(m.ExpiredError, match="index expired at 2026-11-27T13:00:00Z"):
        m.check_index_freshness(
            make_index(expires=NOW + timedelta(hours=1)),
            highest_sequence_seen=0,
            now=NOW + timedelta(hours=2),
        )


def test_offline_bundles_get_a_grace_period_after_expiry() -> None:
    manifest = make_manifest()
    m.check_offline_manifest_fresh(
        manifest, now=manifest.expires + timedelta(days=10), grace=timedelta(days=90)
    )
    with pytest.raises(m.ExpiredError, match="offline grace ended"):
        m.check_offline_manifest_fresh(
            manifest,
            now=manifest.expires + timedelta(days=91),
            grace=timedelta(days=90),
        )


def test_signature_verifies_with_the_pinned_key_and_plain_gpg(signing_key) -> None:
    home, fingerprint = signing_key
    data = make_manifest().to_bytes()
    signature = m.sign_detached(data, gnupghome=home, fingerprint=fingerprint)
    assert (
        m.verify_detached(data, signature, gnupghome=home, pinned=[fingerprint])
        == fingerprint
    )

    workdir = Path(tempfile.mkdtemp())
    (workdir / "manifest.json").write_bytes(data)
    (workdir / "manifest.json.asc").write_text(signature)
    result = subprocess.run(
        [
            "gpg",
            "--homedir",
            str(home),
            "--verify",
            "manifest.json.asc",
            "manifest.json",
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Good signature" in result.stderr


def test_one_changed_byte_breaks_the_signature(signing_key) -> None:
    home, fingerprint = signing_key
    data = make_manifest().to_bytes()
    signature = m.sign_detached(data, gnupghome=home, fingerprint=fingerprint)
    tampered = data.replace(b"1.0.1", b"1.0.2", 1)
    with pytest.raises(m.SignatureError, match="does not verify"):
        m.verify_detached(tampered, signature, gnupghome=home, pinned=[fingerprint])


def test_a_signature_by_a_key_that_is_not_pinned_is_refused(signing_key) -> None:
    home, fingerprint = signing_key
    other = generate_signing_key(home, name="Someone Else")
    data = make_manifest().to_bytes()
    signature = m.sign_detached(data, gnupghome=home, fingerprint=other)
    with pytest.raises(m.SignatureError) as error:
        m.verify_detached(data, signature, gnupghome=home, pinned=[fingerprint])
    assert f"signature made by key {other}, which is not a pinned vendor key" in str(
        error.value
    )


def test_a_key_unknown_to_the_agent_is_refused(signing_key, tmp_path) -> None:
    home, fingerprint = signing_key
    agent_home = Path(tempfile.mkdtemp(prefix="gpg-agent-"))
    data = make_manifest().to_bytes()
    signature = m.sign_detached(data, gnupghome=home, fingerprint=fingerprint)
    with pytest.raises(m.SignatureError, match="not a pinned vendor key"):
        m.verify_detached(data, signature, gnupghome=agent_home, pinned=["0" * 40])


def test_a_missing_signature_or_no_pinned_key_is_refused(signing_key) -> None:
    home, fingerprint = signing_key
    with pytest.raises(
        m.SignatureError, match="missing or is not an armored PGP signature"
    ):
        m.verify_detached(b"{}", "", gnupghome=home, pinned=[fingerprint])
    with pytest.raises(m.SignatureError, match="no vendor key is pinned"):
        m.verify_detached(b"{}", "x", gnupghome=home, pinned=[])


def test_exported_public_key_imports_into_an_agent_home(signing_key) -> None:
    home, fingerprint = signing_key
    armored = subprocess.run(
        ["gpg", "--homedir", str(home), "--armor", "--export", fingerprint],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    agent_home = Path(tempfile.mkdtemp(prefix="gpg-agent-"))
    assert m.import_public_keys(agent_home, armored) == [fingerprint]
    data = b'{"a":1}'
    signature = m.sign_detached(data, gnupghome=home, fingerprint=fingerprint)
    assert (
        m.verify_detached(data, signature, gnupghome=agent_home, pinned=[fingerprint])
        == fingerprint
    )


def test_replace_keeps_validation() -> None:
    with pytest.raises(m.ManifestError, match="at least one image"):
        replace(make_manifest(), images=())

"""Offline bundles that must be refused: each with its reason, quarantined, nothing applied.

These need GnuPG only (no Docker): every refusal happens before images load.
"""

from __future__ import annotations

import stat
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from clms_updates import manifest as m
from updates import offline
from updates.models import (
    AgentState,
    AvailableRelease,
    OfflineBundle,
    TrustedRoot,
    UpdateRun,
)
from updates.offline import extraction
from updates.offline.errors import BundleRefused
from updates.offline.verifying import unpack_bundle
from updates.tests.bundles import (  # noqa: F401  (fixture)
    BundleSpec,
    agent_fixture,
    fake_image,
    manifest_for,
    write_bundle,
)

pytestmark = pytest.mark.django_db


def spec(vendor_key, **changes) -> BundleSpec:  # type: ignore[no-untyped-def]
    image = fake_image()
    values = dict(
        manifest=manifest_for([image]),
        images=[image],
        key_home=vendor_key[0],
        fingerprint=vendor_key[1],
    )
    values.update(changes)
    return BundleSpec(**values)  # type: ignore[arg-type]


def drop(agent: Path, bundle_spec: BundleSpec, name: str = "clms-1.0.2.zip") -> Path:
    return write_bundle(bundle_spec, agent / "offline" / name)


def assert_refused(
    agent: Path, code: str, words: str, *, installed: str = "1.0.0"
) -> OfflineBundle:
    """Scan; the one bundle is refused with ``code``, quarantined, nothing applied."""
    before = {p for p in agent.rglob("*")}
    rows = offline.scan_offline_folder()
    assert len(rows) == 1
    bundle = rows[0]
    assert bundle.state == OfflineBundle.State.REFUSED
    assert f"[{code}]" in bundle.reason if code else bundle.reason.endswith("]")
    assert words.lower() in bundle.reason.lower()
    # Moved to quarantine beside a file saying why.
    assert not list((agent / "offline").glob("*.zip"))
    quarantined = list((agent / "quarantine").glob("*.zip"))
    assert len(quarantined) == 1
    reason_file = quarantined[0].with_name(quarantined[0].name + ".reason.txt")
    assert words.lower() in reason_file.read_text().lower()
    # Nothing applied, nothing offered, nothing left unpacked.
    assert not AvailableRelease.objects.exists()
    assert not UpdateRun.objects.exists()
    assert AgentState.load().installed_version == installed
    work = agent / "work"
    assert not work.exists() or not any(work.rglob("*"))
    # Nothing appeared outside the folders the agent owns.
    after = {p for p in agent.rglob("*")}
    new = {
        p for p in after - before if not str(p).startswith(str(agent / "quarantine"))
    }
    assert all(str(p).startswith(str(work)) for p in new), new
    return bundle


def test_a_good_bundle_verifies_and_unpacks_inside_the_work_folder(agent, vendor_key):
    path = drop(agent, spec(vendor_key))
    unpacked = unpack_bundle(path, now=timezone.now(), work_dir=agent / "work")
    assert unpacked.manifest.version == "1.0.2"
    assert (unpacked.root / "images/app/image.tar").read_bytes() == b"not really a tar"
    assert unpacked.root.parent == agent / "work"


def test_an_unsigned_bundle_is_refused(agent, vendor_key):
    drop(agent, spec(vendor_key, unsigned=True))
    assert_refused(agent, "unsigned", "not a signed CLMS bundle")


def test_a_bundle_signed_with_another_key_is_refused(agent, vendor_key, rogue_key):
    drop(agent, spec(vendor_key, contents_signer=rogue_key, manifest_signer=rogue_key))
    assert_refused(agent, "wrong_key", "not a pinned vendor key")


def test_a_tampered_file_inside_is_refused(agent, vendor_key):
    drop(agent, spec(vendor_key, tamper={"images/app/image.tar": b"evil layer!!!!!!"}))
    assert_refused(agent, "tampered", "changed after signing")


def test_a_file_added_after_signing_is_refused(agent, vendor_key):
    drop(agent, spec(vendor_key, extra={"images/app/extra.sh": b"#!/bin/sh\nrm -rf /"}))
    assert_refused(agent, "tampered", "not listed")


def test_a_changed_manifest_is_refused(agent, vendor_key):
    good = spec(vendor_key)
    evil = manifest_for(good.images, critical=False, changelog="evil")
    good.tamper = {"manifest.json": evil.to_bytes()}
    drop(agent, good)
    assert_refused(agent, "bad_signature", "does not verify")


def test_a_bundle_for_a_lower_version_than_installed_is_refused(agent, vendor_key):
    AgentState.record_installed("1.1.0")
    drop(agent, spec(vendor_key))
    bundle = assert_refused(
        agent, "lower_version", "never moves to a lower version", installed="1.1.0"
    )
    assert bundle.version == "1.0.2"


def test_a_bundle_past_the_offline_grace_is_refused(agent, vendor_key):
    long_ago = datetime.now(UTC).replace(microsecond=0) - timedelta(days=200)
    image = fake_image()
    old = manifest_for(
        [image], released_at=long_ago, expires=long_ago + timedelta(days=30)
    )
    drop(agent, spec(vendor_key, manifest=old, images=[image]))
    assert_refused(agent, "expired", "offline grace ended")


def test_an_expired_bundle_inside_the_grace_is_accepted(agent, vendor_key):
    recently = datetime.now(UTC).replace(microsecond=0) - timedelta(days=40)
    image = fake_image()
    old = manifest_for(
        [image], released_at=recently, expires=recently + timedelta(days=30)
    )
    path = drop(agent, spec(vendor_key, manifest=old, images=[image]))
    unpacked = unpack_bundle(path, now=timezone.now(), work_dir=agent / "work")
    assert unpacked.manifest.expires < timezone.now()


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("../evil.sh", "zip-slip"),
        ("images/../../evil.sh", "zip-slip"),
        ("/etc/cron.d/evil", "absolute path"),
        ("C:/evil.bat", "absolute path"),
        ("a\\..\\b", "backslash"),
    ],
)
def test_zip_slip_names_are_refused(agent, vendor_key, name, words):
    drop(agent, spec(vendor_key, extra={name: b"#!/bin/sh\necho owned"}))
    assert_refused(agent, "unsafe_name", words)
    assert not (agent.parent / "evil.sh").exists()


def test_a_symbolic_link_entry_is_refused(agent, vendor_key):
    drop(
        agent,
        spec(
            vendor_key,
            extra={"images/app/link": b"/etc/passwd"},
            modes={"images/app/link": stat.S_IFLNK | 0o777},
        ),
    )
    assert_refused(agent, "link", "symbolic link")


def test_duplicate_names_are_refused(agent, vendor_key):
    path = drop(agent, spec(vendor_key))
    with (
        zipfile.ZipFile(path, "a") as archive,
        pytest.warns(UserWarning, match="Duplicate name"),
    ):
        archive.writestr("images/app/image.tar", b"second copy")
    assert_refused(agent, "duplicate_name", "appears twice")


def test_names_differing_only_in_case_are_refused(agent, vendor_key):
    drop(agent, spec(vendor_key, extra={"Images/App/Image.tar": b"shadow"}))
    assert_refused(agent, "duplicate_name", "differs only in case")


def test_too_many_entries_are_refused(agent, vendor_key, settings):
    settings.UPDATES_BUNDLE_MAX_ENTRIES = 8
    drop(agent, spec(vendor_key, extra={f"pad/{i}.txt": b"x" for i in range(10)}))
    assert_refused(agent, "too_many_entries", "UPDATES_BUNDLE_MAX_ENTRIES")


def test_a_zip_bomb_is_refused_before_anything_is_written(agent, vendor_key):
    drop(agent, spec(vendor_key, extra={"bomb.bin": b"\0" * (20 * 1024 * 1024)}))
    assert_refused(agent, "zip_bomb", "zip bomb")


def test_a_bundle_too_large_in_total_is_refused(agent, vendor_key, settings):
    settings.UPDATES_BUNDLE_MAX_MB = 1
    settings.UPDATES_BUNDLE_MAX_RATIO = 10_000
    drop(
        agent,
        spec(
            vendor_key,
            extra={"big.bin": b"\0" * (2 * 1024 * 1024)},
            compression=zipfile.ZIP_STORED,
        ),
    )
    assert_refused(agent, "too_large", "UPDATES_BUNDLE_MAX_MB")


def test_a_truncated_bundle_is_refused(agent, vendor_key):
    path = drop(agent, spec(vendor_key))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert_refused(agent, "corrupt", "truncated")


def test_a_bundle_for_another_channel_is_refused(agent, vendor_key):
    image = fake_image()
    drop(
        agent,
        spec(
            vendor_key, manifest=manifest_for([image], channel="beta"), images=[image]
        ),
    )
    assert_refused(agent, "channel", "beta channel")


def test_a_bundle_of_another_product_is_refused(agent, vendor_key):
    image = fake_image()
    drop(
        agent,
        spec(
            vendor_key,
            manifest=manifest_for([image], product="clms-analytics"),
            images=[image],
        ),
    )
    assert_refused(agent, "product", "'clms-analytics'")


def _root_one(release_key: tuple[Path, str], signers: list[tuple[Path, str]]) -> bytes:
    """roots.json holding root 1 (the release role moved to ``release_key``)."""
    import json

    import gnupg

    home, fingerprint = release_key
    role = m.Role((fingerprint,), 1)
    root = m.RootDocument(
        version=1,
        created_at=datetime.now(UTC).replace(microsecond=0),
        roles={"root": role, "release": role, "index": role},
        public_keys=str(gnupg.GPG(gnupghome=str(home)).export_keys(fingerprint)),
    )
    data = root.to_bytes()
    signature = m.join_signatures(
        m.sign_detached(data, gnupghome=h, fingerprint=f) for h, f in signers
    )
    return json.dumps(
        {"roots": [{"version": 1, "root": data.decode(), "signature": signature}]}
    ).encode()


def test_a_bundle_carries_the_vendors_roots_and_the_agent_follows_them(
    agent, vendor_key
):
    roots = _root_one(vendor_key, [vendor_key])
    drop(agent, spec(vendor_key, extra={"roots.json": roots}))
    offline.scan_offline_folder()
    assert TrustedRoot.objects.get().source == "offline bundle"


def test_a_bundle_whose_root_the_previous_keys_did_not_sign_is_refused(
    agent, vendor_key, rogue_key
):
    roots = _root_one(rogue_key, [rogue_key])  # a rogue "rotation" to its own key
    drop(agent, spec(vendor_key, extra={"roots.json": roots}))
    assert_refused(agent, "bad_root", "previous root")
    assert not TrustedRoot.objects.exists()


def test_a_refused_bundle_is_processed_once(agent, vendor_key):
    drop(agent, spec(vendor_key, unsigned=True))
    offline.scan_offline_folder()
    assert offline.scan_offline_folder() == []
    assert OfflineBundle.objects.count() == 1


def test_safe_target_refuses_a_path_that_resolves_outside(tmp_path):
    root = tmp_path / "work"
    root.mkdir()
    (root / "escape").symlink_to(tmp_path)
    with pytest.raises(BundleRefused, match="outside the work folder"):
        extraction.safe_target(root, "escape/evil.sh")


def test_the_offline_page_lists_refused_bundles_with_their_reason(
    agent, vendor_key, school_admin, client
):
    drop(agent, spec(vendor_key, unsigned=True))
    offline.scan_offline_folder()
    client.force_login(school_admin)
    page = client.get("/updates/offline/")
    assert page.status_code == 200
    assert b"clms-1.0.2.zip" in page.content
    assert b"Refused" in page.content
    assert b"not a signed CLMS bundle" in page.content


def test_the_bundles_api_lists_states(agent, vendor_key, admin_api):
    drop(agent, spec(vendor_key, unsigned=True))
    scanned = admin_api.post("/api/updates/bundles/scan")
    assert scanned.status_code == 200
    assert scanned.json()[0]["state"] == "refused"
    listed = admin_api.get("/api/updates/bundles").json()
    assert listed[0]["file_name"] == "clms-1.0.2.zip"
    refused_apply = admin_api.post(f"/api/updates/bundles/{listed[0]['id']}/apply")
    assert refused_apply.status_code == 409
    assert "only a verified bundle" in refused_apply.json()["detail"]


def test_entries_with_permissions_but_no_file_type_are_accepted(agent, vendor_key):
    path = drop(agent, spec(vendor_key, modes={"images/app/image.tar": 0o600}))
    unpacked = unpack_bundle(path, now=timezone.now(), work_dir=agent / "work")
    assert (unpacked.root / "images/app/image.tar").exists()


def test_a_device_file_entry_is_refused(agent, vendor_key):
    drop(
        agent,
        spec(
            vendor_key,
            extra={"images/app/dev": b""},
            modes={"images/app/dev": stat.S_IFCHR | 0o600},
        ),
    )
    assert_refused(agent, "special_file", "not a regular file")


def test_a_bundle_still_being_copied_is_left_for_the_next_scan(
    agent, vendor_key, settings
):
    settings.UPDATES_OFFLINE_SETTLE_SECONDS = 300
    path = drop(agent, spec(vendor_key, unsigned=True))
    assert offline.scan_offline_folder() == []
    assert path.exists()
    assert not OfflineBundle.objects.exists()


def _break_deflate_of(path: Path, member: str) -> None:
    """Overwrite ``member``'s compressed bytes in place: the zip's directory and
    sizes stay valid, its deflate stream is garbage."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
    data = bytearray(path.read_bytes())
    offset = info.header_offset
    name_length = int.from_bytes(data[offset + 26 : offset + 28], "little")
    extra_length = int.from_bytes(data[offset + 28 : offset + 30], "little")
    start = offset + 30 + name_length + extra_length
    data[start : start + info.compress_size] = b"\xff" * info.compress_size
    path.write_bytes(bytes(data))


def test_a_broken_deflate_stream_is_refused_not_a_crashed_scan(agent, vendor_key):
    path = drop(agent, spec(vendor_key))
    _break_deflate_of(path, "manifest.json")  # the first thing read
    assert_refused(agent, "unreadable", "could not be read")
    assert offline.scan_offline_folder() == []  # ended, not left claimed


def test_an_entry_name_that_is_not_utf8_is_refused(agent, vendor_key):
    path = drop(agent, spec(vendor_key, extra={"caf\u20ac.txt": b"x"}))
    euro = "\u20ac".encode()
    data = path.read_bytes()
    assert data.count(euro) == 2  # the local header and the central directory
    path.write_bytes(data.replace(euro, b"\xff\xfe\xfd"))
    bundle = assert_refused(agent, "", "")
    assert "Traceback" not in bundle.reason


def test_a_huge_sparse_file_is_refused_by_its_size_without_being_read(agent, settings):
    path = agent / "offline" / "clms-9.9.9.zip"
    with path.open("wb") as f:
        f.truncate(settings.UPDATES_BUNDLE_MAX_MB * 1024 * 1024 + 1)  # no blocks
    bundle = assert_refused(agent, "too_large", "it was not read")
    assert bundle.sha256 == ""  # never hashed
